"""``migrate convert -j``: the same results in the same order for any -j, a clean Ctrl-C, quiet pipes."""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from click.testing import CliRunner

from migrator import parallel
from migrator.cli import main
from migrator.options import ConvertOptions
from migrator.parallel import EXIT_INTERRUPTED, Progress, convert_paths
from migrator.registry import select
from migrator.runtime.cluster import session_members

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "fixtures" / "samples"
ORDINARY = b"import os\n\n\ndef cwd():\n    return os.getcwd()\n"
#: What the scripts run in a process of their own start with.
PROBE_IMPORTS = (
    "import sys\n"
    "from pathlib import Path\n"
    "from migrator.options import ConvertOptions\n"
    "from migrator.parallel import convert_paths\n"
    "from migrator.registry import select\n"
)


def _tree(tmp_path: Path, copies: int = 2) -> list[Path]:
    """Training scripts interleaved with ordinary modules, in folders that sort differently."""
    files = []
    for i in range(copies):
        for sample in ("transformers/argparse_args.py", "lightning/gpu_ddp.py", "accelerate/regression_module_level.py"):
            target = tmp_path / f"pkg{i}" / f"{i}_{Path(sample).name}"
            target.parent.mkdir(exist_ok=True)
            shutil.copy(SAMPLES / sample, target)
            files.append(target)
            plain = tmp_path / f"pkg{i}" / f"z_{i}_{Path(sample).stem}_util.py"
            plain.write_bytes(ORDINARY)
            files.append(plain)
    return files


def _results(files: list[Path], jobs: int) -> list:
    seen = []
    assert convert_paths(files, select(), ConvertOptions(use_gpu=False), seen.append, jobs=jobs)
    return seen


def test_results_come_in_input_order_and_do_not_depend_on_jobs(tmp_path: Path) -> None:
    files = _tree(tmp_path)
    files.reverse()  # not the order of discovery: the caller's order is what counts
    serial, pooled = _results(files, 1), _results(files, 3)
    assert [r.path for r in serial] == [str(f) for f in files]
    assert pooled == serial
    assert {r.status for r in serial} == {"converted", "unchanged"}


def test_cli_output_is_the_same_with_one_job_and_several(tmp_path: Path) -> None:
    _tree(tmp_path)
    runner = CliRunner()
    one = runner.invoke(main, ["convert", "--check", "--no-use-gpu", "-j", "1", str(tmp_path)])
    several = runner.invoke(main, ["convert", "--check", "--no-use-gpu", "-j", "2", str(tmp_path)])
    assert one.exit_code == several.exit_code == 1
    assert one.output == several.output
    assert "6 files would be converted, 6 unchanged, 0 failed" in one.output


def test_no_progress_output_when_piped(tmp_path: Path) -> None:
    _tree(tmp_path, copies=1)
    done = subprocess.run(
        [sys.executable, "-m", "migrator.cli", "convert", "--check", "-j", "2", str(tmp_path)],
        capture_output=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=300,
    )
    assert done.returncode == 1, done.stderr
    assert b"\r" not in done.stderr and b"files, " not in done.stderr
    assert not Progress.wanted(quiet=False, stream=io.StringIO())


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_draws_on_a_terminal_and_clears_before_messages() -> None:
    stream = _Terminal()
    assert Progress.wanted(quiet=False, stream=stream) == (os.environ.get("TERM") != "dumb")
    assert not Progress.wanted(quiet=True, stream=stream)
    bar = Progress(3, stream=stream, delay_s=0)
    bar.advance()
    assert "1/3 files" in stream.getvalue()
    bar.clear()
    assert stream.getvalue().endswith("\r\033[K")


def test_ctrl_c_stops_cleanly_with_no_half_written_file(tmp_path: Path) -> None:
    files = _tree(tmp_path, copies=12)
    originals = {f: f.read_bytes() for f in files}
    process = subprocess.Popen(
        [sys.executable, "-m", "migrator.cli", "convert", "--no-use-gpu", "-j", "2", str(tmp_path)],
        stderr=subprocess.PIPE, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, start_new_session=True,
        # A pytest-xdist worker ignores SIGINT, and an ignored signal stays ignored across exec
        # (Python then installs no KeyboardInterrupt handler): the CLI gets Ctrl-C as a terminal sends it.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert process.stderr is not None
    first = process.stderr.readline()  # the first "converted ..." line: the pool is busy now
    assert first.startswith(b"converted "), first
    process.send_signal(signal.SIGINT)
    rest = process.stderr.read()
    assert process.wait(timeout=120) == EXIT_INTERRUPTED
    assert b"interrupted:" in rest and b"Traceback" not in rest
    converted = 0
    for path, before in originals.items():
        after = path.read_bytes()
        if after != before:
            converted += 1
            compile(after, str(path), "exec")  # whole, valid files only
    assert 1 <= converted < 36
    assert not list(tmp_path.rglob("*.migrate-tmp"))
    time.sleep(0.5)
    # No process the run started outlives it: its workers, and the converting process and its
    # workers, which have a process group of their own (in the run's session all the same).
    assert session_members(process.pid) == []


def test_a_run_killed_outright_leaves_no_process_behind(tmp_path: Path) -> None:
    """SIGKILL (a CI job's timeout) gives the run no chance to end its converting process and
    workers: they die with it (the kernel's parent-death signal). Killed here while it reads a
    file that never comes (a FIFO), the converting process would otherwise wait for more files
    forever, and its workers with it."""
    files = _tree(tmp_path)[:3]  # two training scripts first: the converting process is started
    fifo = tmp_path / "zz_never_written.py"
    os.mkfifo(fifo)
    probe = (
        PROBE_IMPORTS +
        "convert_paths([Path(n) for n in sys.argv[1:]], select(), ConvertOptions(use_gpu=False), print, jobs=2)\n"
    )
    process = subprocess.Popen([sys.executable, "-c", probe, *map(str, files), str(fifo)], cwd=ROOT,
                               start_new_session=True)
    deadline = time.monotonic() + 60
    while len(session_members(process.pid)) < 4 and time.monotonic() < deadline:  # the run, the converting
        time.sleep(0.1)  # process and its two workers
    assert len(session_members(process.pid)) == 4
    process.kill()
    process.wait(timeout=60)
    deadline = time.monotonic() + 10
    while session_members(process.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert session_members(process.pid) == []


def test_a_converting_process_freezes_its_imports_out_of_the_collector_and_collects_less(tmp_path: Path) -> None:
    """In a process of its own (the collector's settings are the process's): only a process that
    converts something changes them, once."""
    script = tmp_path / "train.py"
    shutil.copyfile(SAMPLES / "transformers" / "argparse_args.py", script)
    plain = tmp_path / "plain.py"
    plain.write_bytes(ORDINARY)
    probe = (
        "import gc, sys\n"
        "from pathlib import Path\n"
        "from migrator.options import ConvertOptions\n"
        "from migrator.parallel import GC_THRESHOLD, convert_paths\n"
        "from migrator.registry import select\n"
        "for name in sys.argv[1:]:\n"
        "    convert_paths([Path(name)], select((), ()), ConvertOptions(), lambda r: None)\n"
        "    print(name.endswith('train.py'), gc.get_freeze_count() > 10000, gc.get_threshold()[0] == GC_THRESHOLD,"
        " 'libcst' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe, str(plain), str(script), str(script)], capture_output=True,
                          text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:3] == [
        "False False False False",  # settled by the pre-filter: nothing imported, nothing changed
        "True True True True",
        "True True True True",
    ]


def test_several_files_convert_in_a_process_of_their_own_and_one_here(tmp_path: Path) -> None:
    """With -j above 1, a second file to convert forks the converting process, which imports
    LibCST while this one pre-filters the rest: the caller's process never imports it. A file
    alone is converted in the caller's process."""
    files = _tree(tmp_path, copies=1)
    probe = (
        PROBE_IMPORTS +
        "seen = []\n"
        "convert_paths([Path(n) for n in sys.argv[1:]], select(), ConvertOptions(use_gpu=False), seen.append, jobs=2)\n"
        "print(' '.join(r.status for r in seen), 'libcst' in sys.modules)\n"
    )
    several = subprocess.run([sys.executable, "-c", probe, *map(str, files)], capture_output=True, text=True, cwd=ROOT,
                             timeout=300)
    assert several.returncode == 0, several.stderr
    statuses = " ".join(r.status for r in _results(files, 1))
    assert several.stdout.split("\n")[0] == f"{statuses} False"
    one = subprocess.run([sys.executable, "-c", probe, str(files[0]), str(files[1])], capture_output=True, text=True,
                         cwd=ROOT, timeout=300)
    assert one.stdout.split("\n")[0] == "converted unchanged True", one.stderr


def test_files_left_when_the_converting_process_dies_are_converted_here(tmp_path: Path, monkeypatch) -> None:
    files = _tree(tmp_path)
    started = []

    class Recorded(parallel._Converter):
        def __init__(self, *args) -> None:
            super().__init__(*args)
            started.append(self)

    monkeypatch.setattr(parallel, "_Converter", Recorded)
    seen = []

    def on_result(result) -> None:
        if not seen:  # killed (as by the kernel, out of memory) after its first result
            os.killpg(started[0]._process.pid, signal.SIGKILL)
        seen.append(result)

    assert convert_paths(files, select(), ConvertOptions(use_gpu=False), on_result, jobs=2)
    assert len(started) == 1 and started[0]._results is None  # it did die, and the rest came from here
    assert seen == _results(files, 1)


def test_where_workers_cannot_fork_a_pool_takes_the_files_once_read(tmp_path: Path, monkeypatch) -> None:
    """macOS and Windows start fresh interpreters: no converting process, a pool after the pre-filter."""
    files = _tree(tmp_path)
    monkeypatch.setattr(parallel, "FORKS", False)
    monkeypatch.setattr(parallel, "_Converter", None)  # would fail if it were started
    assert _results(files, 2) == _results(files, 1)


def test_with_no_process_to_be_had_every_file_converts_here(tmp_path: Path, monkeypatch) -> None:
    files = _tree(tmp_path)

    def refused(*args):
        raise BlockingIOError(11, "Resource temporarily unavailable")  # fork under a process limit

    monkeypatch.setattr(parallel, "_Converter", refused)
    assert _results(files, 2) == _results(files, 1)


# -- the head start: the converting process forked before the command line is read ---------------

def _head_start(monkeypatch) -> parallel._Converter:
    monkeypatch.setattr(parallel, "available_cores", lambda: 2)
    parallel.head_start()
    early = parallel._early
    assert early is not None
    return early


def test_a_head_start_is_what_the_run_converts_with(tmp_path: Path, monkeypatch) -> None:
    files = _tree(tmp_path)
    serial = _results(files, 1)
    early = _head_start(monkeypatch)
    taken = []
    monkeypatch.setattr(parallel, "_Converter", lambda *args: taken.append(args))  # none forked anew
    assert _results(files, 2) == serial
    assert taken == [] and parallel._early is None
    assert early._process.exitcode == 0  # it converted, sent every result, and was joined


def test_a_head_start_no_run_takes_is_killed(tmp_path: Path, monkeypatch) -> None:
    plain = tmp_path / "plain.py"
    plain.write_bytes(ORDINARY)
    (tmp_path / "one_job").mkdir()
    for jobs, files in ((2, [plain, plain]), (1, _tree(tmp_path / "one_job"))):
        early = _head_start(monkeypatch)
        assert {r.status for r in _results(files, jobs)} <= {"unchanged", "converted"}
        assert parallel._early is None and early._process.exitcode == -signal.SIGKILL


def test_a_command_that_ends_before_converting_leaves_no_head_start_waiting(tmp_path: Path) -> None:
    """multiprocessing joins the processes it started at exit: an untaken head start, blocked on
    its queue, must be killed first, or ``migrate`` would never exit."""
    _tree(tmp_path, copies=1)
    command = [sys.executable, "-m", "migrator", "convert", "--check", "-j", "2", str(tmp_path)]
    usage = subprocess.run([*command, "--only", "no_such_codemod"], capture_output=True, text=True, cwd=ROOT,
                           timeout=120)
    assert usage.returncode == 2 and "unknown codemod id: no_such_codemod" in usage.stderr
    ran = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert ran.returncode == 1 and "3 files would be converted, 3 unchanged, 0 failed" in ran.stderr, ran.stderr


def test_only_a_run_over_a_folder_with_several_jobs_gets_a_head_start(tmp_path: Path) -> None:
    from migrator.launch import converts_a_folder

    folder, script = str(tmp_path), str(tmp_path / "train.py")
    (tmp_path / "train.py").write_bytes(ORDINARY)
    assert converts_a_folder(["convert", folder])
    assert converts_a_folder(["convert", "--check", "-j", "2", script, folder])
    assert converts_a_folder(["convert", "--jobs=4", "--exclude", "tests", folder])
    assert not converts_a_folder(["convert", script])  # pre-commit passes files
    assert not converts_a_folder(["convert", "-j1", folder])
    assert not converts_a_folder(["convert", "-j", "1", folder])
    assert not converts_a_folder(["convert", "--jobs=1", folder])
    assert not converts_a_folder(["convert", "--help", folder])
    assert not converts_a_folder(["convert", "-o", "-", script])
    assert not converts_a_folder(["list"])
    assert not converts_a_folder([])
