"""The Markdown report (``--report x.md``), laid out for a pull request comment or description:
a summary table, findings counted by code, then per file its follow-ups as a checklist and the
diff folded in a ``<details>`` block."""

from __future__ import annotations

from collections import Counter

from migrator.codes import all_codes
from migrator.diffs import result_diff
from migrator.results import FileResult
from migrator.unfinished import first_follow_up, unfinished


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _cell(text: str) -> str:
    """Text safe inside a table cell: no pipes, no line breaks."""
    return text.replace("|", "\\|").replace("\n", " ")


def _shown(r: FileResult) -> bool:
    return r.status != "unchanged" or bool(r.entries)


def render(report) -> str:
    results = [r for r in report.results if _shown(r)]
    out = ["# Ray Train migration", "", report.summary(), ""]
    if results:
        out += ["| file | status | changes | follow-ups |", "| --- | --- | ---: | ---: |"]
        for r in results:
            out.append(f"| `{_cell(r.path)}` | {r.status} | {len(r.changes)} | {len(r.follow_ups)} |")
        out.append("")
    by_code = Counter((e.code, e.kind) for r in report.results for e in r.entries)
    if by_code:
        codes = all_codes()
        out += ["| code | codemod | changes | follow-ups |", "| --- | --- | ---: | ---: |"]
        for code in sorted({code for code, _ in by_code}):
            codemod = codes.get(code, (code, ""))[0]
            out.append(f"| `{code}` | `{codemod}` | {by_code[(code, 'change')]} | {by_code[(code, 'follow-up')]} |")
        out.append("")
    # The files that still need a human come first, each with the line of its first follow-up.
    for title, found in unfinished(report.results).items():
        out += [f"## {title}", ""]
        out += [f"- `{r.path}` {_at(first_follow_up(r))}: {_cell(first_follow_up(r).message)} "
                f"({_plural(len(r.follow_ups), 'follow-up')})" for r in found]
        out.append("")
    for r in results:
        out += _file_section(r)
    return "\n".join(out).rstrip() + "\n"


def _file_section(r: FileResult) -> list[str]:
    counts = f"{_plural(len(r.changes), 'change')}, {_plural(len(r.follow_ups), 'follow-up')}"
    out = [f"## `{r.path}`: {r.status}, {counts}", ""]
    if r.error:
        out += [f"**Could not convert** (line {r.error_line or '?'}): {r.error}. The file was left as it was.", ""]
    if r.follow_ups:
        out += ["### Follow-ups", ""]
        out += [f"- [ ] {_at(e)}: {e.message} (`{e.code}` `{e.codemod}`)" for e in r.follow_ups]
        out.append("")
    if r.changes or r.status == "converted":
        out += [f"<details><summary>Changes and diff ({_plural(len(r.changes), 'change')})</summary>", ""]
        if r.changes:
            out += ["### Changes", ""]
            out += [f"- {_at(e)}: {e.message} (`{e.code}` `{e.codemod}`)" for e in r.changes]
            out.append("")
        if r.status == "converted":
            diff = result_diff(r)
            fence = "`" * max(3, _longest_backtick_run(diff) + 1)
            out += [f"{fence}diff", diff.rstrip("\n"), fence, ""]
        out += ["</details>", ""]
    return out


def _longest_backtick_run(text: str) -> int:
    longest = run = 0
    for char in text:
        run = run + 1 if char == "`" else 0
        longest = max(longest, run)
    return longest


def _at(entry) -> str:
    """Where a finding is: its line, and in a notebook its cell."""
    return f"cell {entry.cell}, line {entry.line}" if entry.cell is not None else f"line {entry.line}"
