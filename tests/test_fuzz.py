"""Mutation run: truncated and corrupted versions of every fixture, sample and notebook.

No crash, no traceback, only clear one-line errors; a file is converted to something that parses
or left byte for byte. Seeded and time-boxed: ``MIGRATE_FUZZ_SECONDS`` (default 45) for a longer
run, ``MIGRATE_FUZZ_SEED`` to change the sequence.
"""

from __future__ import annotations

import ast
import os
import random
import time
import warnings
from pathlib import Path

from migrator import notebooks
from migrator.engine import convert_source
from migrator.options import ConvertOptions
from migrator.registry import all_codemods

ROOT = Path(__file__).resolve().parent.parent
SEED = int(os.environ.get("MIGRATE_FUZZ_SEED", "12"))
BUDGET_S = float(os.environ.get("MIGRATE_FUZZ_SECONDS", "45"))


def corpus() -> list[Path]:
    files = sorted((ROOT / "fixtures").rglob("*.input.py")) + sorted((ROOT / "fixtures" / "samples").rglob("*.py"))
    return files + sorted((ROOT / "fixtures").rglob("*.ipynb"))


def mutate(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    kind = rng.choice(["cut", "flip", "swap", "latin-1", "utf-16", "bom", "crlf", "delete", "duplicate"])
    if not data:
        return kind, data
    if kind == "cut":
        return kind, data[: rng.randrange(len(data))]
    if kind == "flip":
        out = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            out[rng.randrange(len(out))] ^= 1 << rng.randrange(8)
        return kind, bytes(out)
    if kind in ("swap", "delete", "duplicate"):
        lines = data.splitlines(keepends=True)
        i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
        if kind == "swap":
            lines[i], lines[j] = lines[j], lines[i]
        elif kind == "delete":
            del lines[i]
        else:
            lines.insert(j, lines[i])
        return kind, b"".join(lines)
    text = data.decode("utf-8", errors="replace")
    if kind == "latin-1":
        return kind, (text + "\n# caf\u00e9\n").encode("latin-1", errors="replace")
    if kind == "utf-16":
        return kind, text.encode("utf-16")
    if kind == "bom":
        return kind, b"\xef\xbb\xbf" + data
    return kind, data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def check_one(path: Path, data: bytes, codemods, options) -> str:
    name = str(path.name)
    if path.suffix == ".ipynb":
        result = notebooks.convert(data, codemods, options, path=name)
    else:
        result = convert_source(data, codemods, options, path=name)
    assert result.source == data  # left byte for byte unless converted
    if result.status == "failed":
        assert result.error and "\n" not in result.error and "Traceback" not in result.error, result.error
        assert "internal error" not in result.error, result.error
    elif result.status == "converted":
        assert result.output is not None
        if path.suffix == ".ipynb":
            nb = notebooks.read(result.output)
            for cell in nb.cells:
                if cell.cell_type == "code":
                    notebooks._check_cell(cell.source, 0)
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ast.parse(result.output.decode(result.encoding))
    else:
        assert result.output is None
    return result.status


def test_mutated_inputs_convert_or_fail_cleanly() -> None:
    codemods = all_codemods()
    options = ConvertOptions(use_gpu=False)
    files = [(p, p.read_bytes()) for p in corpus()]
    assert len(files) > 50
    rng = random.Random(SEED)
    deadline = time.monotonic() + BUDGET_S
    counts: dict[str, int] = {}
    cases = 0
    while time.monotonic() < deadline:
        path, data = rng.choice(files)
        kind, mutated = mutate(data, rng)
        try:
            status = check_one(path, mutated, codemods, options)
        except AssertionError as exc:
            raise AssertionError(f"{path.name} after {kind} (case {cases}, seed {SEED}): {exc}") from None
        counts[status] = counts.get(status, 0) + 1
        cases += 1
    print(f"fuzz: {cases} cases, {counts}")
    assert cases > 0
