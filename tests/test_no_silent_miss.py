"""No silent miss, over every fixture: a file that trains with a framework is converted or says why.

The test's idea of "trains with a framework" is its own (plain regular expressions over the
source), not the audit's, so it checks the audit instead of restating it. "Converted" means the
result launches with Ray Train (``TorchTrainer``); anything else must carry at least one follow-up
with a line in the file.
"""

from __future__ import annotations

import functools
import io
import re
import tokenize
from pathlib import Path

import pytest

from migrator.engine import applicable
from migrator.registry import index
from tests.golden import FIXTURES, convert_text

#: framework -> (an import of it, a use that means training with it).
FRAMEWORKS = {
    "transformers/trl": (r"^\s*(from|import)\s+(transformers|trl)\b", r"\b\w*Trainer\s*\("),
    "accelerate": (r"^\s*(from|import)\s+accelerate\b", r"\b(Accelerator|notebook_launcher)\s*\("),
    "lightning": (r"^\s*(from|import)\s+(lightning|pytorch_lightning)\b", r"\b(Trainer|LightningCLI)\b|\.fit\("),
    "torch.distributed": (r"^\s*(from|import)\s+torch(\.distributed|\.multiprocessing|\.nn\.parallel)?\b",
                          r"\b(init_process_group|DistributedDataParallel|spawn|start_processes)\s*\("),
    "ray (retired)": (r"^\s*(from|import)\s+ray\b",
                      r"\b(HuggingFaceTrainer|TransformersTrainer|AccelerateTrainer|LightningTrainer|\w*Predictor)\b|\bray\.ml\b"
                      # Ray 1.x's first Ray Train API
                      r"|\bfrom ray\.train import (.*, )?Trainer\b|\bto_tune_trainable\b"),
}
RETIRED_TRAINERS = r"\b(HuggingFaceTrainer|TransformersTrainer|AccelerateTrainer|LightningTrainer|LightningConfigBuilder)\b"


def fixture_inputs() -> list[Path]:
    return sorted(FIXTURES.glob("*/*.input.py")) + sorted((FIXTURES / "samples").rglob("*.py"))


def frameworks_used(source: str) -> list[str]:
    code = code_lines(source)
    return [name for name, (imported, used) in FRAMEWORKS.items()
            if re.search(imported, source, re.M) and re.search(used, code)]


def code_lines(source: str) -> str:
    """The source with its comments and string literals blanked (docstrings name retired APIs too)."""
    lines = source.splitlines(keepends=True)
    for tok in reversed(list(tokenize.generate_tokens(io.StringIO(source).readline))):
        if tok.type not in (tokenize.COMMENT, tokenize.STRING):
            continue
        (row, col), (end_row, end_col) = tok.start, tok.end
        head, tail = lines[row - 1][:col], lines[end_row - 1][end_col:]
        lines[row - 1:end_row] = [head + '""' + tail]
    return "".join(lines)


@functools.cache
def converted(path: Path):
    source = path.read_text(encoding="utf-8")
    return source, convert_text(source, path=str(path))


def test_the_fixtures_cover_every_framework():
    seen = {name for path in fixture_inputs() for name in frameworks_used(path.read_text(encoding="utf-8"))}
    assert seen == set(FRAMEWORKS)


@pytest.mark.parametrize("path", fixture_inputs(), ids=lambda p: str(p.relative_to(FIXTURES)))
def test_a_training_file_is_converted_or_followed_up(path: Path):
    source, result = converted(path)
    used = frameworks_used(source)
    if not used:
        return  # not a training file: nothing to hold it to (a skip would fail under CI=true)
    assert result.status != "failed", result.error
    lines = len(source.splitlines()) if result.status == "unchanged" else len(result.text("output").splitlines())
    for entry in result.follow_ups:
        assert 1 <= entry.line <= max(lines, len(source.splitlines())), entry
    launched = "TorchTrainer(" in code_lines(result.text("output"))  # converted, or already Ray Train
    assert launched or result.follow_ups, f"{path} trains with {used} and was left {result.status} without a word"
    if re.search(RETIRED_TRAINERS, code_lines(result.text("output"))):
        assert result.follow_ups, f"{path} still uses a retired Ray trainer and nothing says so"


def test_the_audit_reaches_every_framework_file():
    """The byte pre-filter lets every file that imports a framework through to the audit."""
    audit = [info for info in index() if info.id == "training_audit"]
    for path in fixture_inputs():
        source = path.read_text(encoding="utf-8")
        if frameworks_used(source):
            assert applicable(audit, source.encode()), path


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("*/*.expected.py")), ids=lambda p: str(p.relative_to(FIXTURES)))
def test_converted_files_get_no_audit_noise(path: Path):
    """A converted result run through again: the audit has nothing to say about it."""
    result = convert_text(path.read_text(encoding="utf-8"), path=str(path))
    assert not [e for e in result.entries if e.codemod == "training_audit"], result.entries
