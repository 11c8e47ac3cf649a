"""Every golden pair under fixtures/, discovered; each expected file is also a fixed point."""

from __future__ import annotations

import ast

import pytest

from tests.golden import Case, cases, convert_text, options_for, report_lines


@pytest.mark.parametrize("case", cases(), ids=lambda c: c.id)
def test_golden(case: Case, update_goldens: bool) -> None:
    source = case.input.read_text(encoding="utf-8")
    result = convert_text(source, path=case.input.name)
    assert result.status != "failed", result.error
    output = result.text("output")
    if update_goldens:
        if result.status == "converted":
            case.expected.write_text(output, encoding="utf-8")
        elif case.expected.exists():
            case.expected.unlink()
        if result.entries:
            case.report.write_text(report_lines(result), encoding="utf-8")
        elif case.report.exists():
            case.report.unlink()
    if case.expected.exists():
        assert output == case.expected.read_text(encoding="utf-8")
    else:
        assert result.status == "unchanged", f"{case.id} has no expected file, so it must be left alone"
    expected_report = case.report.read_text(encoding="utf-8") if case.report.exists() else ""
    assert report_lines(result) == expected_report


@pytest.mark.parametrize("case", [c for c in cases() if c.expected.exists()], ids=lambda c: c.id)
def test_expected_is_fixed_point(case: Case) -> None:
    expected = case.expected.read_text(encoding="utf-8")
    ast.parse(expected)
    again = convert_text(expected, options_for(case.input.read_text(encoding="utf-8")), path=case.expected.name)
    assert again.status == "unchanged", "converting the expected output again changed it:\n" + again.text("output")


def test_every_codemod_has_fixtures() -> None:
    from migrator.registry import codemod_ids

    with_fixtures = {c.codemod for c in cases()}
    missing = sorted(set(codemod_ids()) - with_fixtures)
    assert not missing, f"codemods without golden fixtures: {missing}"
