"""Two helpers in django-upgrade's manner for the retired-trainer codemods' unit tests."""

from __future__ import annotations

import ast
import textwrap

from migrator.codemod import MigrationCodemod
from migrator.engine import FileResult, convert_source
from migrator.options import ConvertOptions


def convert(codemod: type[MigrationCodemod], source: str, **options) -> FileResult:
    source = textwrap.dedent(source)
    result = convert_source(source.encode(), [codemod], ConvertOptions(**options))
    assert result.status != "failed", result.error
    return result


def check_noop(codemod: type[MigrationCodemod], source: str, **options) -> FileResult:
    result = convert(codemod, source, **options)
    assert result.status == "unchanged", result.text("output")
    return result


def check_transformed(codemod: type[MigrationCodemod], before: str, after: str, **options) -> FileResult:
    result = convert(codemod, before, **options)
    output = result.text("output")
    assert output == textwrap.dedent(after), output
    ast.parse(output)
    again = convert_source(output.encode(), [codemod], ConvertOptions(**options))
    assert again.status == "unchanged", "a second pass changed it again:\n" + again.text("output")
    return result


def messages(result: FileResult, kind: str = "follow-up") -> list[str]:
    return [e.message for e in result.entries if e.kind == kind]
