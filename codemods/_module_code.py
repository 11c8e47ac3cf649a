"""Module-level code a codemod writes into a file once: helper functions placed after the imports."""

from __future__ import annotations

import libcst as cst


def after_imports(body: list[cst.BaseStatement]) -> int:
    """Index of the first statement after the leading docstring and imports."""
    at = 0
    for i, stmt in enumerate(body):
        if isinstance(stmt, cst.SimpleStatementLine) and all(
                isinstance(s, (cst.Import, cst.ImportFrom)) or (isinstance(s, cst.Expr) and isinstance(s.value, cst.SimpleString) and i == 0)
                for s in stmt.body):
            at = i + 1
        else:
            break
    return at


def defines(module: cst.Module, name: str) -> bool:
    return any(isinstance(s, cst.FunctionDef) and s.name.value == name for s in module.body)


def insert_functions(module: cst.Module, sources: list[str]) -> cst.Module:
    """``module`` with the functions in ``sources`` (code) after its imports, two blank lines around each."""
    body = list(module.body)
    at = after_imports(body)
    two = [cst.EmptyLine(), cst.EmptyLine()]
    new = [cst.parse_statement(source).with_changes(leading_lines=two) for source in sources]
    if at < len(body):
        lines = list(body[at].leading_lines)
        while lines and lines[0].comment is None:
            lines.pop(0)
        body[at] = body[at].with_changes(leading_lines=[*two, *lines])
    return module.with_changes(body=[*body[:at], *new, *body[at:]])
