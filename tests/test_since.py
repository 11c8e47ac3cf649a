"""``--since REF`` in a real, temporary git repository: only what the branch touched is converted."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from migrator.since import changed_files
from tests.test_cli import GUIDE, run

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=false", *args],
        cwd=repo, check=True, capture_output=True, text=True,
    ).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """main has old.py and gone.py; the branch commits new.py, and then the working tree adds
    a staged, an unstaged, an untracked and an ignored script, deletes one, and edits a text file."""
    git(tmp_path, "init", "-q", "-b", "main")
    (tmp_path / ".gitignore").write_text("ignored/\n")
    for name in ("old.py", "gone.py", "staged.py", "edited.py", "sub/deep.py"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(GUIDE, tmp_path / name)
    (tmp_path / "notes.txt").write_text("x\n")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-q", "-m", "base")
    git(tmp_path, "checkout", "-q", "-b", "feature")
    shutil.copy(GUIDE, tmp_path / "new.py")
    (tmp_path / "sub" / "deep.py").write_text(GUIDE.read_text() + "\n# touched\n")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-q", "-m", "branch work")
    # The ref moves on after the branch point: what changed there is not the branch's work.
    git(tmp_path, "checkout", "-q", "main")
    (tmp_path / "on_main.py").write_text("x = 1\n")
    (tmp_path / "old.py").write_text("x = 2\n")
    git(tmp_path, "add", "on_main.py", "old.py")
    git(tmp_path, "commit", "-q", "-m", "main moves on")
    git(tmp_path, "checkout", "-q", "feature")
    (tmp_path / "staged.py").write_text(GUIDE.read_text() + "\n# staged\n")
    git(tmp_path, "add", "staged.py")
    (tmp_path / "edited.py").write_text(GUIDE.read_text() + "\n# unstaged\n")
    shutil.copy(GUIDE, tmp_path / "untracked.py")
    (tmp_path / "ignored").mkdir()
    shutil.copy(GUIDE, tmp_path / "ignored" / "skip.py")
    (tmp_path / "gone.py").unlink()
    (tmp_path / "notes.txt").write_text("y\n")
    return tmp_path


EXPECTED = {"new.py", "sub/deep.py", "staged.py", "edited.py", "untracked.py"}


def test_changed_files_since_the_merge_base(repo: Path) -> None:
    changed = changed_files("main", [repo])
    assert {p.relative_to(repo.resolve()).as_posix() for p in changed} == EXPECTED


def test_notebooks_are_asked_for_too(repo: Path) -> None:
    (repo / "analysis.ipynb").write_text("{}")
    assert repo.resolve() / "analysis.ipynb" in changed_files("main", [repo])


def test_convert_since_checks_only_the_branch_files(repo: Path) -> None:
    result = run("convert", "--check", "--since", "main", ".", cwd=repo)
    assert result.exit_code == 1
    checked = {line.removeprefix("would convert ") for line in result.stderr.splitlines() if line.startswith("would convert")}
    assert checked == EXPECTED
    assert "5 files would be converted, 0 unchanged, 0 failed" in result.stderr


def test_since_within_a_subfolder_and_from_elsewhere(repo: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    result = run("convert", "--check", "--since", "main", str(repo / "sub"), cwd=elsewhere)
    assert result.exit_code == 1
    assert f"would convert {repo / 'sub' / 'deep.py'}" in result.stderr
    assert "1 file would be converted" in result.stderr


def test_nothing_changed_converts_nothing(repo: Path) -> None:
    result = run("convert", "--check", "--since", "HEAD", "old.py", cwd=repo)
    assert result.exit_code == 0 and "0 files would be converted, 0 unchanged" in result.stderr


@pytest.mark.parametrize("ref", ["no-such-branch"])
def test_an_unknown_ref_is_a_usage_error(repo: Path, ref: str) -> None:
    result = run("convert", "--check", "--since", ref, ".", cwd=repo)
    assert result.exit_code == 2 and "--since" in result.stderr and "Traceback" not in result.stderr


def test_outside_a_repository_is_a_usage_error(tmp_path: Path) -> None:
    shutil.copy(GUIDE, tmp_path / "train.py")
    result = run("convert", "--check", "--since", "main", "train.py", cwd=tmp_path)
    assert result.exit_code == 2 and "--since" in result.stderr
