"""The CLI's options and exit codes, on real files in a temporary folder."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from migrator.cli import main

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT / "fixtures" / "transformers_trainer" / "guide_module_level.input.py"
GUIDE_EXPECTED = GUIDE.with_name("guide_module_level.expected.py")
# A file nothing converts (a backward pass with no optimizer: a utility, not a training).
PLAIN = ROOT / "fixtures" / "pytorch_loop" / "no_training.input.py"


def run(*args: str, cwd: Path | None = None):
    runner = CliRunner()
    old = os.getcwd()
    if cwd:
        os.chdir(cwd)
    try:
        return runner.invoke(main, list(args), catch_exceptions=False)
    finally:
        os.chdir(old)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    shutil.copy(GUIDE, tmp_path / "train.py")
    shutil.copy(PLAIN, tmp_path / "loop.py")
    (tmp_path / "broken.py").write_text("from transformers import Trainer\ndef f(:\n    pass\n")
    return tmp_path


def test_converts_in_place_and_reports_per_file(project: Path) -> None:
    broken_before = (project / "broken.py").read_bytes()
    result = run("convert", str(project))
    assert result.exit_code == 123
    assert (project / "train.py").read_text() == GUIDE_EXPECTED.read_text()
    assert (project / "loop.py").read_bytes() == PLAIN.read_bytes()
    assert (project / "broken.py").read_bytes() == broken_before
    err = result.stderr
    assert f"converted {project / 'train.py'}" in err
    assert f"error: cannot convert {project / 'broken.py'}:2: syntax error" in err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == "1 file converted, 1 unchanged, 1 failed."


def test_success_exit_zero_and_idempotent(tmp_path: Path) -> None:
    target = tmp_path / "train.py"
    shutil.copy(GUIDE, target)
    assert run("convert", str(target)).exit_code == 0
    once = target.read_bytes()
    again = run("convert", str(target))
    assert again.exit_code == 0
    assert target.read_bytes() == once
    assert "0 files converted, 1 unchanged, 0 failed." in again.stderr


def test_check_writes_nothing_and_exits_one(tmp_path: Path) -> None:
    target = tmp_path / "train.py"
    shutil.copy(GUIDE, target)
    result = run("convert", "--check", str(target))
    assert result.exit_code == 1
    assert target.read_bytes() == GUIDE.read_bytes()
    assert "would convert" in result.stderr
    clean = tmp_path / "loop.py"
    shutil.copy(PLAIN, clean)
    assert run("convert", "--check", str(clean)).exit_code == 0


@pytest.mark.parametrize("tool", ["git", "patch"])
def test_diff_applies_with_p0(tmp_path: Path, tool: str) -> None:
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed")
    shutil.copy(GUIDE, tmp_path / "train.py")
    result = run("convert", "--diff", "train.py", cwd=tmp_path)
    assert result.exit_code == 0
    assert (tmp_path / "train.py").read_bytes() == GUIDE.read_bytes(), "--diff must not write"
    assert "\x1b[" not in result.stdout, "no colour when stdout is not a terminal"
    assert "1 file would be converted" in result.stderr
    (tmp_path / "change.diff").write_text(result.stdout)
    if tool == "git":
        cmd = ["git", "apply", "-p0", "change.diff"]
    else:
        cmd = ["patch", "-p0", "-i", "change.diff"]
    subprocess.run(cmd, cwd=tmp_path, check=True, capture_output=True)
    assert (tmp_path / "train.py").read_text() == GUIDE_EXPECTED.read_text()


def test_diff_colour_can_be_forced(tmp_path: Path) -> None:
    shutil.copy(GUIDE, tmp_path / "train.py")
    coloured = run("convert", "--diff", "--color", str(tmp_path / "train.py"))
    assert "\x1b[32m+" in coloured.stdout
    plain = run("convert", "--diff", "--no-color", str(tmp_path / "train.py"))
    assert "\x1b[" not in plain.stdout


def test_output_to_file_and_stdout(tmp_path: Path) -> None:
    source = tmp_path / "train.py"
    shutil.copy(GUIDE, source)
    out = tmp_path / "converted.py"
    assert run("convert", str(source), "-o", str(out)).exit_code == 0
    assert out.read_text() == GUIDE_EXPECTED.read_text()
    assert source.read_bytes() == GUIDE.read_bytes()
    to_stdout = run("convert", str(source), "-o", "-")
    assert to_stdout.stdout == GUIDE_EXPECTED.read_text()


@pytest.mark.parametrize(
    "args",
    [
        ["-o", "x.py", "a.py", "b.py"],
        ["-o", "x.py", "--diff", "a.py"],
        ["--only", "no_such_codemod", "a.py"],
        ["--num-workers", "0", "a.py"],
        ["missing.py"],
    ],
)
def test_usage_errors_exit_two(tmp_path: Path, args: list[str]) -> None:
    (tmp_path / "a.py").write_text("x = 1\n")
    (tmp_path / "b.py").write_text("x = 1\n")
    assert run("convert", *args, cwd=tmp_path).exit_code == 2


def test_scaling_options_reach_the_generated_code(tmp_path: Path) -> None:
    source = tmp_path / "train.py"
    shutil.copy(GUIDE, source)
    result = run(
        "convert", str(source), "-o", "-", "--num-workers", "4", "--no-use-gpu", "--storage-path", "s3://bucket/x"
    )
    assert "ScalingConfig(num_workers=4, use_gpu=False)" in result.stdout
    assert 'run_config=RunConfig(storage_path="s3://bucket/x")' in result.stdout
    assert "from ray.train import RunConfig, ScalingConfig" in result.stdout


def test_only_and_skip(tmp_path: Path) -> None:
    source = tmp_path / "train.py"
    shutil.copy(GUIDE, source)
    skipped = run("convert", "--check", "--skip", "transformers_trainer", "--skip", "transformers_renamed_arguments", str(source)) if "transformers_renamed_arguments" in run("list").stdout else run("convert", "--check", "--skip", "transformers_trainer", str(source))
    assert skipped.exit_code == 0
    only = run("convert", "--check", "--only", "transformers_trainer", str(source))
    assert only.exit_code == 1


def test_report_dash_is_standard_output(project: Path) -> None:
    result = run("convert", "--check", str(project / "train.py"), "--report", "-", cwd=project)
    assert result.exit_code == 1
    assert not (project / "-").exists()
    assert f"{project / 'train.py'}: converted" in result.stdout
    assert "[transformers_trainer]" in result.stdout and result.stdout.endswith("\n")


@pytest.mark.parametrize("suffix", [".json", ".md", ".txt"])
def test_report_formats(project: Path, suffix: str) -> None:
    (project / "two.py").write_text(
        (ROOT / "fixtures" / "transformers_trainer" / "trainers_in_a_list.input.py").read_text()
    )
    report = project / f"report{suffix}"
    run("convert", "--check", str(project), "--report", str(report))
    text = report.read_text()
    if suffix == ".json":
        data = json.loads(text)
        assert data["summary"] == {"converted": 1, "unchanged": 2, "failed": 1}
        files = {Path(f["file"]).name: f for f in data["files"]}
        assert files["broken.py"]["error_line"] == 2
        assert any(c["codemod"] == "transformers_trainer" and c["line"] > 0 for c in files["train.py"]["changes"])
        follow = files["two.py"]["follow_ups"]
        assert follow and all(f["kind"] == "follow-up" and f["file"].endswith("two.py") for f in follow)
        assert not files["two.py"]["changes"]
    elif suffix == ".md":
        assert "```diff" in text and "- [ ] line 3:" in text and "### Changes" in text
    else:
        assert "follow-up" in text and "two.py:3" in text


def test_discovery_skips_hidden_venv_build_and_excluded(tmp_path: Path) -> None:
    for folder in (".git", "venv", ".venv", "build", "lib/site-packages", "keep", "skipme"):
        (tmp_path / folder).mkdir(parents=True)
        shutil.copy(GUIDE, tmp_path / folder / "train.py")
    result = run("convert", "--check", str(tmp_path), "--exclude", "skipme")
    assert result.exit_code == 1
    assert result.stderr.count("would convert") == 1
    assert "keep/train.py" in result.stderr


def test_permissions_and_symlinks_are_kept(tmp_path: Path) -> None:
    real = tmp_path / "real.py"
    shutil.copy(GUIDE, real)
    real.chmod(0o750)
    link = tmp_path / "link.py"
    link.symlink_to(real)
    assert run("convert", str(link)).exit_code == 0
    assert link.is_symlink()
    assert stat.S_IMODE(real.stat().st_mode) == 0o750
    assert real.read_text() == GUIDE_EXPECTED.read_text()
    assert not [p for p in tmp_path.iterdir() if "migrate-tmp" in p.name]


@pytest.mark.parametrize(
    "name,data,reason",
    [
        ("binary.py", b"\x00\x01from transformers import Trainer\x02", "binary file"),
        ("latin.py", b"# -*- coding: bogus -*-\nfrom transformers import Trainer\n", "cannot decode"),
        ("py2.py", b"from transformers import Trainer\nprint 'hello'\n", "Python 2"),
    ],
)
def test_bad_input_fails_cleanly(tmp_path: Path, name: str, data: bytes, reason: str) -> None:
    target = tmp_path / name
    target.write_bytes(data)
    result = run("convert", str(target))
    assert result.exit_code == 123
    assert reason in result.stderr and "Traceback" not in result.stderr
    assert target.read_bytes() == data


def test_empty_file_is_unchanged(tmp_path: Path) -> None:
    (tmp_path / "empty.py").write_bytes(b"")
    assert run("convert", str(tmp_path / "empty.py")).exit_code == 0


def test_crlf_and_encoding_are_kept(tmp_path: Path) -> None:
    text = "# -*- coding: latin-1 -*-\n# caf\xe9\n" + GUIDE.read_text()
    target = tmp_path / "crlf.py"
    target.write_bytes(text.replace("\n", "\r\n").encode("latin-1"))
    assert run("convert", str(target)).exit_code == 0
    data = target.read_bytes()
    assert b"caf\xe9" in data
    assert data.count(b"\r\n") == data.count(b"\n"), "every line ending stays CRLF"
    assert b"def train_func(config):\r\n" in data


def test_list_names_every_codemod() -> None:
    from migrator.registry import all_codemods

    out = run("list").stdout
    for cls in all_codemods():
        assert cls.id() in out and cls.DESCRIPTION in out


def test_convert_imports_no_heavy_framework(tmp_path: Path) -> None:
    shutil.copy(GUIDE, tmp_path / "train.py")
    code = (
        "import sys\n"
        "from migrator.cli import main\n"
        "try:\n"
        f"    main(['convert', '--check', {str(tmp_path / 'train.py')!r}])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = sorted(m for m in ('torch', 'transformers', 'ray', 'lightning', 'accelerate') if m in sys.modules)\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_files_with_nothing_to_migrate_never_import_libcst(tmp_path: Path) -> None:
    shutil.copy(ROOT / "benchmarks" / "convert_speed.py", tmp_path / "plain.py")
    (tmp_path / "plain.py").write_text("import json\nprint(json.dumps({}))\n")
    code = (
        "import sys\n"
        "from migrator.cli import main\n"
        "try:\n"
        f"    main(['convert', '--check', {str(tmp_path / 'plain.py')!r}])\n"
        "except SystemExit as exc:\n"
        "    assert exc.code == 0, exc.code\n"
        "print('libcst' in sys.modules, 'migrator.runtime.commands' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False"  # nor the runtime's commands, loaded when asked for


def test_the_runtime_commands_are_listed_and_run_when_asked_for() -> None:
    runner = CliRunner()
    listed = runner.invoke(main, ["--help"])
    assert listed.exit_code == 0 and "run " in listed.output and "validate " in listed.output
    assert runner.invoke(main, ["validate", "--help"]).output.startswith("Usage: main validate [OPTIONS] ORIGINAL")
    assert runner.invoke(main, ["run", "--help"]).exit_code == 0


def test_light_index_agrees_with_the_imported_classes() -> None:
    from migrator.registry import all_codemods, index

    assert [(i.id, i.DESCRIPTION, i.TRIGGERS, i.ORDER, i.MODULES) for i in index()] == [
        (c.id(), c.DESCRIPTION, c.TRIGGERS, c.ORDER, c.MODULES) for c in all_codemods()
    ]


def test_the_index_reads_constants_after_a_method_from_the_whole_module() -> None:
    from migrator.registry import _class_constants

    source = (
        'class Late(MigrationCodemod):\n    """Doc."""\n    DESCRIPTION = "early"\n\n'
        '    def leave_Call(self, node, updated):\n        return updated\n\n    TRIGGERS = (b"late",)\n'
    )
    info = _class_constants(source, "late")
    assert (info.DESCRIPTION, info.TRIGGERS) == ("early", (b"late",))
    helper_first = 'class Helper:\n    def f(self):\n        pass\n\n\nclass Real(MigrationCodemod):\n    TRIGGERS = (b"x",)\n'
    assert _class_constants(helper_first, "real").TRIGGERS == (b"x",)


def test_pre_commit_hooks_file() -> None:
    text = (ROOT / ".pre-commit-hooks.yaml").read_text()
    assert "entry: migrate convert" in text and "types: [python]" in text


def _read_fifo(path: Path, into: list[bytes]) -> "threading.Thread":
    import threading

    def read() -> None:
        with open(path, "rb") as handle:
            into.append(handle.read())

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("flag", ["-o", "--report"])
def test_output_to_a_device_or_pipe_writes_to_it_and_leaves_it_in_place(flag: str, project: Path) -> None:
    """`-o /dev/null` once replaced /dev/null with a plain file (run as root): the atomic rename
    is for regular files only. A named pipe stands for the device here."""
    fifo = project / "out.fifo"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = _read_fifo(fifo, received)
    args = ["convert", "train.py", "-o", str(fifo)] if flag == "-o" else ["convert", "train.py", "--check", "--report", f"{fifo}"]
    result = run(*args, cwd=project)
    reader.join(timeout=30)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)  # still the pipe, not a file put in its place
    assert result.exit_code in (0, 1), result.output
    expected = GUIDE_EXPECTED.read_bytes() if flag == "-o" else None
    assert received and (received[0] == expected if expected is not None else b"train.py" in received[0])
    assert not list(project.glob(".out.fifo.*"))  # no temporary file left beside it
