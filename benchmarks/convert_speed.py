"""How fast `migrate convert` is, at pre-commit scale and at repository scale.

Prints figures and ratios; asserts nothing (speed is measured here, not in timed tests).

    python benchmarks/convert_speed.py [--files 400]

1. One file, as a pre-commit hook runs it: a fresh `migrate convert --check FILE` process.
2. A synthetic repository (mostly ordinary modules, some training scripts): files per second
   with the raw-bytes pre-filter, and without it (every file parsed), and their ratio.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from migrator import engine  # noqa: E402
from migrator.registry import all_codemods  # noqa: E402

ORDINARY = '''"""An ordinary module: data helpers, nothing to migrate."""
import json
import os
from dataclasses import dataclass


@dataclass
class Record:
    name: str
    values: list


def load(path):
    with open(path) as handle:
        return [Record(**row) for row in json.load(handle)]


def summarise(records):
    total = sum(len(r.values) for r in records)
    return {"count": len(records), "values": total, "cwd": os.getcwd()}
''' * 4


def timed(fn, repeat: int = 3) -> float:
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def make_repo(root: Path, files: int) -> list[Path]:
    scripts = sorted((ROOT / "fixtures").glob("*/*.input.py"))
    paths = []
    for i in range(files):
        folder = root / f"pkg{i % 20}"
        folder.mkdir(exist_ok=True)
        path = folder / f"module_{i}.py"
        if i % 10 == 0 and scripts:
            shutil.copy(scripts[(i // 10) % len(scripts)], path)
        else:
            path.write_text(ORDINARY)
        paths.append(path)
    return paths


def convert_all(paths: list[Path]) -> int:
    codemods = all_codemods()
    changed = 0
    for path in paths:
        result = engine.convert_source(path.read_bytes(), codemods, path=str(path))
        changed += result.status == "converted"
    return changed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=400)
    args = parser.parse_args()

    guide = ROOT / "fixtures" / "transformers_trainer" / "guide_module_level.input.py"
    cli = [sys.executable, "-m", "migrator.cli", "convert", "--check", "-q", str(guide)]
    one_file = timed(lambda: subprocess.run(cli, cwd=ROOT, capture_output=True), repeat=5)
    startup = timed(lambda: subprocess.run([sys.executable, "-c", "import migrator.cli"], cwd=ROOT), repeat=5)
    python = timed(lambda: subprocess.run([sys.executable, "-c", "pass"]), repeat=5)
    print("pre-commit scale (one training script, fresh process, median of 5)")
    print(f"  migrate convert --check FILE : {one_file * 1000:7.0f} ms")
    print(f"  of which importing the CLI   : {(startup - python) * 1000:7.0f} ms (bare python start {python * 1000:.0f} ms)")

    with tempfile.TemporaryDirectory() as tmp:
        paths = make_repo(Path(tmp), args.files)
        all_codemods()  # registry import outside the timing
        convert_all(paths[:5])  # warm caches
        with_filter = timed(lambda: convert_all(paths), repeat=3)
        original = engine.applicable
        engine.applicable = lambda codemods, data: list(codemods)  # parse every file
        try:
            without_filter = timed(lambda: convert_all(paths), repeat=3)
        finally:
            engine.applicable = original
        scripts = sum(1 for i in range(args.files) if i % 10 == 0)
    print(f"repository scale ({args.files} files, {scripts} of them training scripts, median of 3)")
    print(f"  with the byte pre-filter     : {with_filter:6.2f} s  ({args.files / with_filter:7.0f} files/s)")
    print(f"  parsing every file           : {without_filter:6.2f} s  ({args.files / without_filter:7.0f} files/s)")
    print(f"  speed-up from the pre-filter : {without_filter / with_filter:6.1f}x")


if __name__ == "__main__":
    main()
