"""Unified diffs that ``git apply -p0`` and ``patch -p0`` accept, optionally coloured."""

from __future__ import annotations

import difflib

import click


def unified_diff(before: str, after: str, path: str) -> str:
    """A diff of ``path``, both sides named by the path itself (hence ``-p0``)."""
    a = before.splitlines(keepends=True)
    b = after.splitlines(keepends=True)
    lines = []
    for line in difflib.unified_diff(a, b, fromfile=path, tofile=path):
        if not line.endswith(("\n", "\r")):
            # A last line without a newline needs patch's marker, or the hunk is rejected.
            line += "\n\\ No newline at end of file\n"
        lines.append(line)
    return "".join(lines)


def colour(diff: str) -> str:
    out = []
    for line in diff.splitlines(keepends=True):
        if line.startswith(("+++", "---")):
            out.append(click.style(line, bold=True))
        elif line.startswith("@@"):
            out.append(click.style(line, fg="cyan"))
        elif line.startswith("+"):
            out.append(click.style(line, fg="green"))
        elif line.startswith("-"):
            out.append(click.style(line, fg="red"))
        else:
            out.append(line)
    return "".join(out)


def result_diff(result) -> str:
    """The diff of one ``FileResult``: per cell for a notebook, else of the whole file."""
    if result.notebook_cells:
        from migrator.notebooks import diff

        return diff(result)
    return unified_diff(result.text("source"), result.text("output"), result.path)
