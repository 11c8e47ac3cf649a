"""Before/after checks for one codemod, as django-upgrade's ``check_noop`` / ``check_transformed``."""

from __future__ import annotations

import ast
import textwrap

from migrator.codemod import MigrationCodemod
from migrator.engine import FileResult, convert_source


def run(codemod: type[MigrationCodemod], source: str) -> FileResult:
    result = convert_source(textwrap.dedent(source).encode(), [codemod])
    assert result.status != "failed", result.error
    return result


def check_noop(codemod: type[MigrationCodemod], source: str) -> FileResult:
    result = run(codemod, source)
    assert result.text("output") == textwrap.dedent(source)
    return result


def check_transformed(codemod: type[MigrationCodemod], before: str, after: str) -> FileResult:
    result = run(codemod, before)
    output = result.text("output")
    assert output == textwrap.dedent(after)
    ast.parse(output)
    again = convert_source(output.encode(), [codemod])
    assert again.status == "unchanged", "a second pass changed it again:\n" + again.text("output")
    return result


def follow_ups(result: FileResult) -> list[str]:
    return [f"{e.line}: {e.message}" for e in result.follow_ups]


def convert_all(source: str):
    """Every codemod over a dedented script that must come out converted and parse: (result, output)."""
    from tests.golden import convert_text

    result = convert_text(textwrap.dedent(source), None)
    assert result.status == "converted", result.entries
    out = result.text("output")
    ast.parse(out)
    return result, out
