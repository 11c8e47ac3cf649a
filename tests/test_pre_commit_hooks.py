"""The hooks in .pre-commit-hooks.yaml, run by pre-commit itself as a new user would: a temporary
repository whose .pre-commit-config.yaml points at a clone of this repository at HEAD.

Slow on purpose (pre-commit builds the hook's virtual environment and pip installs the project
from PyPI: about a minute), so both hook ids share one test and one environment. It tests the
committed HEAD, not uncommitted edits.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_cli import GUIDE, GUIDE_EXPECTED, ROOT

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")

GIT_ENV = {
    "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com",
}


def _run(args: list[str], cwd: Path, env: dict[str, str], timeout: int = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def test_check_hook_fails_and_rewrite_hook_rewrites(tmp_path: Path) -> None:
    env = {**os.environ, **GIT_ENV, "PRE_COMMIT_HOME": str(tmp_path / "cache"), "PRE_COMMIT_COLOR": "never"}
    env.pop("PYTHONPATH", None)  # the hook must run the code pre-commit installed, not this checkout
    sha = _run(["git", "rev-parse", "HEAD"], ROOT, env).stdout.strip()
    assert len(sha) == 40, "the tests run from a git checkout"
    hooks = tmp_path / "hooks"
    assert _run(["git", "clone", "-q", str(ROOT), str(hooks)], tmp_path, env).returncode == 0

    user = tmp_path / "user"
    user.mkdir()
    _run(["git", "init", "-q"], user, env)
    (user / ".pre-commit-config.yaml").write_text(
        "repos:\n"
        f"  - repo: {hooks}\n"
        f"    rev: {sha}\n"
        "    hooks:\n"
        "      - id: migrate-ray-train-check\n"
        "      - id: migrate-ray-train\n"
    )
    shutil.copy(GUIDE, user / "train.py")
    (user / "plain.py").write_text("print('already fine')\n")
    _run(["git", "add", "-A"], user, env)
    pre_commit = [sys.executable, "-m", "pre_commit", "run"]

    check = _run([*pre_commit, "migrate-ray-train-check"], user, env)
    assert check.returncode == 1, check.stdout + check.stderr
    assert "would convert train.py" in check.stdout and "Failed" in check.stdout
    assert (user / "train.py").read_bytes() == GUIDE.read_bytes(), "the check hook writes nothing"

    rewrite = _run([*pre_commit, "migrate-ray-train"], user, env)
    assert rewrite.returncode == 1, rewrite.stdout + rewrite.stderr  # pre-commit fails a hook that modified files
    assert "files were modified by this hook" in rewrite.stdout
    assert (user / "train.py").read_text() == GUIDE_EXPECTED.read_text()
    assert (user / "plain.py").read_text() == "print('already fine')\n"

    _run(["git", "add", "-A"], user, env)
    again = _run([*pre_commit, "migrate-ray-train-check"], user, env)
    assert again.returncode == 0 and "Passed" in again.stdout, again.stdout + again.stderr
