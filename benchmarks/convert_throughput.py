"""Repository-scale throughput of `migrate convert --check`, next to what else a user would run.

    python benchmarks/convert_throughput.py [--full] [--samples N] [--keep DIR] [--library PACKAGE]

Builds a tree from this machine's standard library (its top-level modules and ``pydoc_data``,
or with ``--full`` every module outside the test suites) with 16 of the project's runnable
samples inside (``--samples``; 0 for all of them), the shape of the issue's tree: a repository
where a few files of hundreds train, and prints in one run, each timed from process start (median of ``--repeat``):

* ``migrate convert --check`` with ``-j1`` and with every core, cold (``--no-cache``), and warm: the
  same command again with its result cache (``migrator.cache``) filled by a first run, as a CI job
  or a pre-commit hook finds it when the training scripts did not change;
* parsing every file once with LibCST (the floor for any tool that parses), in-process, one core;
* ``python -m libcst.tool codemod`` running one of our codemods over the same tree;
* ``ruff check --select UP``, if ruff is installed, cold (``--no-cache``) and warm (its cache filled);
* files/s, lines/s and the ratios between them;
* one ~70-line training script converted in-process (best of 5);
* a single-file check from process start, next to ``python -c "import libcst"``, and the check of
  one training script from process start, cold and warm (a pre-commit hook's case).

With ``--library PACKAGE`` (an installed package's name, or a folder) it times instead
``migrate convert --check`` over that package's own files, cold, next to parsing them all: a
repository made of a framework's library code (vendored, or the repository of a model library),
where hardly a file trains and most import torch or transformers.

``migrate`` is run as ``python -m migrator``, the entry point of the installed ``migrate`` script
(``migrator.launch``). It byte-compiles ``migrator/`` and ``codemods/`` first, as installing the
tool does, and stores what ``migrator.stored`` keeps (the methods ``dataclasses`` compiles for
LibCST's classes, LibCST's matchers compiled with their annotations unevaluated, the codemods'
parsed tables), as a first run does: where ``PYTHONDONTWRITEBYTECODE`` is set, none of it is
written by the runs themselves, and every process would compile and parse it all again.

It measures and asserts nothing (speed is not a timed test). Note the load average it prints:
on a shared machine the figures move with it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SKIP_DIRS = {"test", "tests", "idlelib", "site-packages", "__pycache__", "turtledemo"}
SCRIPT = ROOT / "fixtures" / "samples" / "transformers" / "argparse_args.py"
LIBCST_COMMAND = "codemods.transformers_renamed_arguments.TransformersRenamedArguments"


def build_tree(dest: Path, full: bool, samples: int = 16) -> list[Path]:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    if full:
        sources = [p for p in stdlib.rglob("*.py") if not SKIP_DIRS.intersection(p.relative_to(stdlib).parts)]
    else:
        sources = sorted(stdlib.glob("*.py")) + sorted((stdlib / "pydoc_data").glob("*.py"))
    for source in sources:
        target = dest / "stdlib" / source.relative_to(stdlib)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    found = sorted((ROOT / "fixtures" / "samples").rglob("*.py"))
    if 0 < samples < len(found):  # spread over the frameworks' folders, the same ones every run
        found = [found[i * len(found) // samples] for i in range(samples)]
    for sample in found:
        target = dest / "samples" / sample.relative_to(ROOT / "fixtures" / "samples")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(sample, target)
    return sorted(dest.rglob("*.py"))


def wall(command: list[str], repeat: int, cwd: Path = ROOT) -> tuple[float, subprocess.CompletedProcess]:
    times, done = [], None
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    for _ in range(repeat):
        start = time.perf_counter()
        done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=env)
        times.append(time.perf_counter() - start)
    return statistics.median(times), done


def compile_checkout() -> str:
    """Byte-compile this checkout's packages, as ``pip install`` does for an installed tool.

    Where ``PYTHONDONTWRITEBYTECODE`` is set (some sandboxes set it) an editable checkout's
    modules are otherwise compiled from source in every process that imports them: about 0.2 s
    of each cold run here, which no installed ``migrate`` pays."""
    import compileall

    for package in ("migrator", "codemods"):
        if not compileall.compile_dir(ROOT / package, quiet=1):
            sys.exit(f"{package}: does not compile")
    # And what migrator.stored keeps (the methods dataclasses writes for LibCST's classes, LibCST's
    # matchers compiled with their annotations unevaluated, the codemods' parsed tables), which a
    # first run stores the same way unless PYTHONDONTWRITEBYTECODE is set.
    subprocess.run([sys.executable, "-m", "migrator.stored"], cwd=ROOT, check=True, capture_output=True)
    setting = os.environ.get("PYTHONDONTWRITEBYTECODE")
    return (f"bytecode of migrator/ and codemods/, LibCST's dataclass methods and matchers, and the codemods' tables, "
            f"stored first "
            f"(PYTHONDONTWRITEBYTECODE={setting or 'unset'})")


def last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def parse_all(files: list[Path]) -> float:
    """Seconds to parse every file once with LibCST, in this process."""
    import libcst as cst

    start = time.perf_counter()
    for path in files:
        try:
            cst.parse_module(path.read_bytes())
        except Exception:  # noqa: BLE001 - a file LibCST cannot hold still counts as read
            pass
    return time.perf_counter() - start


def library(package: str) -> None:
    folder = Path(package)
    if not folder.is_dir():
        import importlib.util

        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            sys.exit(f"{package}: neither a folder nor an installed package")
        folder = Path(list(spec.submodule_search_locations)[0])
    from migrator.engine import applicable
    from migrator.parallel import available_cores
    from migrator.registry import index

    files = sorted(folder.rglob("*.py"))
    passed = sum(1 for path in files if applicable(index(), path.read_bytes()))
    cores = available_cores()
    print(f"library: {folder}, {len(files)} files, {passed} past the pre-filter; {cores} cores; "
          f"load average {os.getloadavg()[0]:.2f}")
    os.environ["MIGRATE_CACHE_DIR"] = tempfile.mkdtemp()
    migrate = [sys.executable, "-m", "migrator", "convert", "--check", "-q", "--no-cache", "-j", str(cores), str(folder)]
    seconds, done = wall(migrate, 1)
    print(f"migrate convert --check -j{cores}, cold: {seconds:.1f} s (exit {done.returncode}: {last_line(done.stderr)})")
    parsed = parse_all(files)
    print(f"LibCST parse of every file, in-process: {parsed:.1f} s; ratio {parsed / seconds:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="every standard-library module, not the top level only")
    parser.add_argument("--samples", type=int, default=16, help="how many runnable samples go in the tree (0: all)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="build the tree here and keep it")
    parser.add_argument("--library", help="time an installed package's (or a folder's) own files instead")
    args = parser.parse_args()
    print(compile_checkout())
    if args.library:
        library(args.library)
        return

    from migrator.parallel import available_cores

    cores = available_cores()
    tmp = tempfile.TemporaryDirectory()
    tree = args.keep or Path(tmp.name)
    tree.mkdir(parents=True, exist_ok=True)
    files = build_tree(tree, args.full, args.samples)
    lines = sum(p.read_bytes().count(b"\n") for p in files)
    print(f"tree: {len(files)} files, {lines} lines ({tree}); {cores} cores; load average {os.getloadavg()[0]:.2f}")
    # The runs' cache lives and dies with the tree, never the user's ~/.cache/migrate.
    os.environ["MIGRATE_CACHE_DIR"] = str(tree / ".migrate-cache")
    migrate = [sys.executable, "-m", "migrator", "convert", "--check", "-q"]

    rows: list[tuple[str, float, str]] = []
    t1, done = wall([*migrate, "--no-cache", "-j", "1", str(tree)], args.repeat)
    rows.append(("migrate convert --check -j1 (cold)", t1, f"exit {done.returncode}: {last_line(done.stderr)}"))
    tn, done = wall([*migrate, "--no-cache", "-j", str(cores), str(tree)], args.repeat)
    rows.append((f"migrate convert --check -j{cores} (cold)", tn, f"exit {done.returncode}"))
    wall([*migrate, "-j", str(cores), str(tree)], 1)  # fills the cache
    tw, done = wall([*migrate, "-j", str(cores), str(tree)], args.repeat)
    rows.append((f"migrate convert --check -j{cores} (warm)", tw, f"exit {done.returncode}: {last_line(done.stderr)}"))

    parse_all_s = parse_all(files)
    rows.append(("LibCST parse of every file (in-process)", parse_all_s, ""))

    # The tool reads its own options after the command (before it, "-j N" is taken for the command).
    tl, done = wall([sys.executable, "-m", "libcst.tool", "codemod", "-x", LIBCST_COMMAND, "--no-format",
                     "-j", str(cores), str(tree)], 1)
    rows.append(("python -m libcst.tool codemod (one codemod)", tl, f"exit {done.returncode}: {last_line(done.stderr)[:60]}"))

    ruff = shutil.which("ruff")
    tr = trw = None
    if ruff:
        command = [ruff, "check", "--select", "UP", "--exit-zero", "-q", str(tree)]
        tr, done = wall([*command, "--no-cache"], args.repeat)
        rows.append(("ruff check --select UP (cold, --no-cache)", tr, ""))
        command += ["--cache-dir", str(tree / ".ruff-cache")]
        wall(command, 1)
        trw, done = wall(command, args.repeat)
        rows.append(("ruff check --select UP (warm)", trw, ""))
    else:
        print("ruff: not installed, skipped")

    print(f"\n{'command':<46} {'time':>8} {'files/s':>9} {'lines/s':>10}")
    for name, seconds, note in rows:
        print(f"{name:<46} {seconds:7.2f}s {len(files) / seconds:9.0f} {lines / seconds:10.0f}  {note}")

    print("\nratios")
    print(f"  parsing every file / migrate -j1, cold        : {parse_all_s / t1:6.1f}x  (target >= 10x)")
    print(f"  parsing every file / migrate -j{cores:<2}, cold       : {parse_all_s / tn:6.1f}x")
    print(f"  parsing every file / migrate -j{cores:<2}, warm       : {parse_all_s / tw:6.1f}x")
    print(f"  libcst.tool codemod / migrate -j{cores:<2}, cold      : {tl / tn:6.1f}x")
    if tr and trw:
        print(f"  migrate -j{cores} / ruff, both cold                : {tn / tr:6.1f}x  (moonshot <= 3x)")
        print(f"  migrate -j{cores} / ruff, both warm                : {tw / trw:6.1f}x")

    from migrator.engine import convert_source
    from migrator.registry import all_codemods

    data = SCRIPT.read_bytes()
    convert_source(data, all_codemods())  # imports and caches outside the timing
    runs = []
    for _ in range(5):
        start = time.perf_counter()
        result = convert_source(data, all_codemods(), path=str(SCRIPT))
        runs.append(time.perf_counter() - start)
    script_lines = data.count(b"\n")
    print(f"\none training script in-process ({SCRIPT.relative_to(ROOT)}, {script_lines} lines, "
          f"{result.status}): best {min(runs) * 1000:.0f} ms, median {statistics.median(runs) * 1000:.0f} ms (target < 60 ms)")

    plain = tree / "stdlib" / "colorsys.py"
    single, _ = wall([*migrate, "--no-cache", str(plain)], 5)
    floor, _ = wall([sys.executable, "-c", "import libcst"], 5)
    print(f"single-file check from process start (colorsys.py): {single * 1000:.0f} ms; "
          f"python -c 'import libcst': {floor * 1000:.0f} ms")
    hook = tree / SCRIPT.name  # a pre-commit hook's run on a training script it saw before
    shutil.copyfile(SCRIPT, hook)
    cold, _ = wall([*migrate, "--no-cache", str(hook)], 5)
    wall([*migrate, str(hook)], 1)
    warm, _ = wall([*migrate, str(hook)], 5)
    print(f"training-script check from process start ({SCRIPT.name}): cold {cold * 1000:.0f} ms, warm {warm * 1000:.0f} ms")
    print(f"load average at the end {os.getloadavg()[0]:.2f}")
    tmp.cleanup()


if __name__ == "__main__":
    main()
