"""No valid Python file fails for depth: deep trees convert or stay unchanged, never exit 123."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from migrator import deep
from migrator.engine import convert_source
from migrator.registry import all_codemods

# Enough to overflow Python's default limit (1,000 frames) several times over, and still within
# what LibCST's own parser takes (about 2,900 strings in one implicit concatenation).
DEPTH = 2500
# Valid Python, beyond LibCST's parser.
BEYOND_LIBCST = 4000
HEADER = "from transformers import Trainer, TrainingArguments\n"  # passes the pre-filter


def _concatenated_strings(n: int) -> str:
    return "TOPICS = {'x': 'start'\n" + "".join(f"    'line {i}\\n'\n" for i in range(n)) + "}\n"


def _left_deep_sum(n: int) -> str:
    return "total = 0" + " + 1" * n + "\n"


@pytest.mark.parametrize("body", [_concatenated_strings(DEPTH), _left_deep_sum(1500)], ids=["strings", "sum"])
def test_deep_valid_file_is_unchanged_not_failed(body: str) -> None:
    source = (HEADER + body).encode()
    ast.parse(source)  # the file is valid Python
    result = convert_source(source, all_codemods(), path="deep.py")
    assert result.status == "unchanged", result.error
    assert result.error is None


def test_deep_file_is_still_converted() -> None:
    script = (
        HEADER
        + _concatenated_strings(DEPTH)
        + "args = TrainingArguments(output_dir='out', evaluation_strategy='epoch')\n"
        + "trainer = Trainer(model=None, args=args)\n"
        + "trainer.train()\n"
    )
    result = convert_source(script.encode(), all_codemods(), path="deep.py")
    assert result.status == "converted", result.error
    assert b"eval_strategy='epoch'" in result.output
    assert b"TorchTrainer" in result.output
    ast.parse(result.output)


def test_the_recursion_limit_is_restored_after_a_deep_file() -> None:
    before = sys.getrecursionlimit()
    convert_source((HEADER + _concatenated_strings(DEPTH)).encode(), all_codemods())
    assert sys.getrecursionlimit() == before


def test_beyond_every_limit_a_file_is_left_unchanged_with_a_note(monkeypatch) -> None:
    monkeypatch.setattr(deep, "RECURSION_LIMIT", 1200)
    result = convert_source((HEADER + _concatenated_strings(DEPTH)).encode(), all_codemods(), path="deep.py")
    assert result.status == "unchanged"
    assert result.output is None
    assert [e.kind for e in result.entries] == ["follow-up"]
    assert "nested deeper" in result.entries[0].message


def test_a_valid_file_beyond_the_libcst_parser_is_left_unchanged_with_a_note() -> None:
    source = (HEADER + _concatenated_strings(BEYOND_LIBCST)).encode()
    ast.parse(source)
    result = convert_source(source, all_codemods(), path="deep.py")
    assert (result.status, result.error, result.output) == ("unchanged", None, None)
    assert [e.kind for e in result.entries] == ["follow-up"]
    assert "LibCST's parser stops at line" in result.entries[0].message


def test_a_syntax_error_still_fails() -> None:
    result = convert_source((HEADER + "def broken(:\n").encode(), all_codemods(), path="bad.py")
    assert result.status == "failed"
    assert result.error_line == 2


def test_pydoc_topics_from_the_standard_library_does_not_fail() -> None:
    topics = Path(ast.__file__).parent / "pydoc_data" / "topics.py"
    result = convert_source(topics.read_bytes(), all_codemods(), path=str(topics))
    assert result.status == "unchanged", result.error
