"""convert never rewrites over a user's unstaged work, nor follows links out of the tree."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from migrator import vcs
from tests.test_cli import GUIDE, GUIDE_EXPECTED, run


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), "-c", "user.email=t@t", "-c", "user.name=t", *args],
                   check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "pkg").mkdir(parents=True)
    git(root, "init", "-q")
    for name in ("unstaged.py", "staged.py", "clean.py"):
        shutil.copy(GUIDE, root / "pkg" / name)
    git(root, "add", ".")
    git(root, "commit", "-qm", "scripts")
    for name in ("unstaged.py", "staged.py"):
        with (root / "pkg" / name).open("a") as f:
            f.write("# the user's own edit\n")
    git(root, "add", "pkg/staged.py")
    shutil.copy(GUIDE, root / "pkg" / "untracked.py")
    return root


def test_unstaged_changes_are_refused_the_rest_is_converted(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = vcs.unstaged_files
    monkeypatch.setattr(vcs, "unstaged_files", lambda root: calls.append(root) or real(root))
    unstaged = repo / "pkg" / "unstaged.py"
    before = unstaged.read_bytes()
    result = run("convert", str(repo / "pkg"))
    assert result.exit_code == 123
    assert unstaged.read_bytes() == before
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: cannot convert {unstaged}: it has unstaged changes in git; "
                      "commit or stage them first, or pass --force to rewrite it anyway"]
    for name in ("clean.py", "untracked.py"):
        assert (repo / "pkg" / name).read_text() == GUIDE_EXPECTED.read_text()
    assert "def train_func(" in (repo / "pkg" / "staged.py").read_text()  # staged only: fine
    assert calls == [repo]  # one git status for the whole repository
    assert result.stderr.strip().splitlines()[-1] == "3 files converted, 0 unchanged, 1 failed."


def test_diff_check_and_output_need_no_force_and_force_rewrites(repo: Path, tmp_path: Path) -> None:
    unstaged = repo / "pkg" / "unstaged.py"
    before = unstaged.read_bytes()
    assert run("convert", "--diff", str(unstaged)).exit_code == 0
    assert run("convert", "--check", str(unstaged)).exit_code == 1
    assert run("convert", str(unstaged), "-o", str(tmp_path / "out.py")).exit_code == 0
    assert unstaged.read_bytes() == before and "def train_func(" in (tmp_path / "out.py").read_text()
    assert run("convert", "--force", str(unstaged)).exit_code == 0
    assert "def train_func(" in unstaged.read_text() and "# the user's own edit" in unstaged.read_text()


def test_symlinks_out_of_the_tree_are_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.copy(GUIDE, outside / "theirs.py")
    (outside / "pkg").mkdir()
    shutil.copy(GUIDE, outside / "pkg" / "deep.py")
    tree = tmp_path / "tree"
    tree.mkdir()
    shutil.copy(GUIDE, tree / "mine.py")
    (tree / "link.py").symlink_to(outside / "theirs.py")
    (tree / "linked_dir").symlink_to(outside / "pkg", target_is_directory=True)
    (tree / "inner.py").symlink_to(tree / "mine.py")  # inside the tree: the same file, once
    result = run("convert", str(tree))
    assert result.exit_code == 0, result.stderr
    assert (outside / "theirs.py").read_bytes() == GUIDE.read_bytes()
    assert (outside / "pkg" / "deep.py").read_bytes() == GUIDE.read_bytes()
    assert (tree / "mine.py").read_text() == GUIDE_EXPECTED.read_text()


def test_unreadable_files_and_folders_are_reported_not_raised(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copy(GUIDE, tmp_path / "ok.py")
    secret = tmp_path / "secret.py"
    shutil.copy(GUIDE, secret)
    (tmp_path / "locked").mkdir()
    shutil.copy(GUIDE, tmp_path / "locked" / "inside.py")
    if os.geteuid() == 0:  # root reads whatever the mode bits say: make the OS answer as it would a user
        real_read, real_scandir = Path.read_bytes, os.scandir

        def read_bytes(self: Path) -> bytes:
            if self.name == "secret.py":
                raise PermissionError(13, "Permission denied", str(self))
            return real_read(self)

        def scandir(path="."):
            if str(path).endswith("locked"):
                raise PermissionError(13, "Permission denied", str(path))
            return real_scandir(path)

        monkeypatch.setattr(Path, "read_bytes", read_bytes)
        monkeypatch.setattr(os, "scandir", scandir)
        monkeypatch.setattr(os, "listdir", lambda path=".": scandir(path) and [])
    else:
        secret.chmod(0)
        (tmp_path / "locked").chmod(0)
    try:
        result = run("convert", str(tmp_path))
    finally:
        secret.chmod(0o644)
        (tmp_path / "locked").chmod(0o755)
    assert result.exit_code == 123
    assert "Traceback" not in result.stderr
    assert f"error: cannot convert {secret}: cannot read: Permission denied" in result.stderr
    assert f"error: cannot convert {tmp_path / 'locked'}: cannot read: Permission denied" in result.stderr
    assert (tmp_path / "ok.py").read_text() == GUIDE_EXPECTED.read_text()
