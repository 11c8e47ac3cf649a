"""``[tool.migrate]`` in pyproject.toml: found above the files, overridden by the command line,
and strict about what it accepts."""

from __future__ import annotations

import shutil
from pathlib import Path

import click
import pytest

from migrator.cli import convert
from migrator.config import configurable_options, find_pyproject
from tests.test_cli import GUIDE, run


def _project(root: Path, settings: str, *, script_dir: str = "scripts") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / ".git").mkdir()  # the walk stops here, as it would at a repository's root
    (root / "pyproject.toml").write_text(f"[project]\nname = 'x'\n\n[tool.migrate]\n{settings}")
    target = root / script_dir / "train.py"
    target.parent.mkdir(parents=True)
    shutil.copy(GUIDE, target)
    return target


def test_settings_found_above_the_files_shape_the_output(tmp_path: Path) -> None:
    target = _project(tmp_path, 'num-workers = 4\nuse-gpu = false\nstorage-path = "s3://bucket/runs"\n')
    out = run("convert", str(target), "-o", "-").stdout
    assert "ScalingConfig(num_workers=4, use_gpu=False)" in out
    assert 'RunConfig(storage_path="s3://bucket/runs")' in out


def test_the_command_line_wins(tmp_path: Path) -> None:
    target = _project(tmp_path, "num-workers = 4\nuse-gpu = false\n")
    out = run("convert", str(target), "-o", "-", "--num-workers", "3", "--use-gpu").stdout
    assert "ScalingConfig(num_workers=3, use_gpu=True)" in out


def test_exclude_only_and_skip_from_the_file(tmp_path: Path) -> None:
    target = _project(tmp_path, 'exclude = ["legacy"]\nskip = ["transformers_trainer"]\n')
    legacy = tmp_path / "legacy" / "old.py"
    legacy.parent.mkdir()
    shutil.copy(GUIDE, legacy)
    result = run("convert", "--check", str(tmp_path))
    assert "old.py" not in result.stderr, "exclude from the file applies"
    # transformers_trainer is skipped: what is left is at most the keyword renames.
    out = run("convert", str(target), "-o", "-").stdout
    assert "TorchTrainer" not in out
    only = _project(tmp_path / "other", 'only = ["transformers_trainer"]\n')
    assert "TorchTrainer" in run("convert", str(only), "-o", "-").stdout


def test_underscored_keys_are_accepted(tmp_path: Path) -> None:
    target = _project(tmp_path, "num_workers = 5\n")
    assert "num_workers=5" in run("convert", str(target), "-o", "-").stdout


def test_the_walk_stops_at_the_repository_root(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.migrate]\nnum-workers = 7\n")
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / ".git").mkdir()
    (repo / "train.py").write_text("x = 1\n")
    assert find_pyproject([repo / "train.py"]) is None
    # Without the .git folder the walk goes on up and finds the outer file.
    (repo / ".git").rmdir()
    found = find_pyproject([repo / "train.py"])
    assert found is not None and found[0] == tmp_path / "pyproject.toml" and found[1] == {"num-workers": 7}


def test_a_pyproject_without_the_table_is_passed_over(tmp_path: Path) -> None:
    target = _project(tmp_path, "num-workers = 6\n")
    (target.parent / "pyproject.toml").write_text("[tool.black]\nline-length = 100\n")
    assert "num_workers=6" in run("convert", str(target), "-o", "-").stdout


@pytest.mark.parametrize(
    "settings,words",
    [
        ("num-worker = 4\n", ["unknown key 'num-worker'", "known keys:", "num-workers"]),
        ('num-workers = "4"\n', ["num-workers", "must be an integer", "str '4'"]),
        ("use-gpu = 1\n", ["use-gpu", "must be true or false"]),
        ('exclude = "legacy"\n', ["exclude", "must be a list of strings"]),
        ('lightning-package = "lightnin"\n', ["lightning-package", "'lightnin' is not one of"]),
        ("num-workers = 0\n", ["num-workers", "0 is not in the range x>=1"]),
        ('output = "x.py"\n', ["unknown key 'output'"]),
        ("num-workers = [\n", ["cannot read"]),
    ],
)
def test_bad_settings_are_usage_errors_naming_key_and_file(tmp_path: Path, settings: str, words: list[str]) -> None:
    target = _project(tmp_path, settings)
    before = target.read_bytes()
    result = run("convert", str(target))
    assert result.exit_code == 2, result.output
    message = " ".join(result.stderr.split())  # click wraps long lines
    for word in [*words, str(tmp_path / "pyproject.toml")]:
        assert word in message, (word, message)
    assert "Traceback" not in result.stderr
    assert target.read_bytes() == before


def test_every_option_but_the_per_run_ones_is_configurable() -> None:
    keys = set(configurable_options(convert))
    assert {"num-workers", "use-gpu", "storage-path", "lightning-package", "exclude", "only", "skip"} <= keys
    assert not keys & {"output", "since", "help"}
    # New options join automatically: every long option of the command is either a key or deliberately left out.
    long_names = {
        opt[2:] for p in convert.params if isinstance(p, click.Option) for opt in p.opts[:1] if opt.startswith("--")
    }
    assert long_names - keys <= {"output", "since", "help"}
