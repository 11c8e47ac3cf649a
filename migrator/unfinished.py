"""Which files still need a human: the report's "Left unconverted" and "Partly converted" sections.

A file whose result carries follow-ups is unfinished: "left unconverted" when nothing in it
changed, "partly converted" when something did. Every file that trains with a framework and was
not fully converted carries at least one follow-up (the ``training_audit`` codemod sees to it), so
these two sections list every such file, each with the line of its first follow-up.
"""

from __future__ import annotations

from typing import Iterable

from migrator.results import FileResult

SECTIONS = {"unchanged": "Left unconverted", "converted": "Partly converted"}


def unfinished(results: Iterable[FileResult]) -> dict[str, list[FileResult]]:
    """Section title -> the files in it, in the run's order (empty sections left out)."""
    found: dict[str, list[FileResult]] = {}
    for result in results:
        if result.status in SECTIONS and result.follow_ups:
            found.setdefault(SECTIONS[result.status], []).append(result)
    return {title: found[title] for title in SECTIONS.values() if title in found}


def first_follow_up(result: FileResult):
    return min(result.follow_ups, key=lambda e: e.line)
