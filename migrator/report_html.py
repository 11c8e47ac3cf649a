"""The HTML report (``--report x.html``): one self-contained page for reviewing a migration.

A summary on top, then per file the code before and after side by side, changed lines
highlighted, and each follow-up (and each change's reason) beside the line it is about. The
page loads nothing: its CSS is inline and it has no scripts, fonts or images, so it opens the
same from a CI artifact, an e-mail or an air-gapped machine.
"""

from __future__ import annotations

import difflib
from collections import defaultdict
from html import escape

from migrator.results import Entry, FileResult
from migrator.unfinished import first_follow_up, unfinished

CSS = """
:root { --del: #ffebe9; --del-strong: #ffcecb; --ins: #e6ffec; --ins-strong: #abf2bc; --line: #d0d7de;
        --muted: #59636e; --warn: #fff8c5; --warn-edge: #d4a72c; --note: #ddf4ff; --note-edge: #54aeff; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #1f2328;
       margin: 0; padding: 24px 32px; background: #f6f8fa; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 16px; margin: 0; padding: 10px 14px; background: #f6f8fa; border-bottom: 1px solid var(--line); }
h2 code { font-size: 15px; }
h2 .counts { font-weight: 400; font-size: 13px; color: var(--muted); margin-left: 6px; }
code, pre, td.code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace; }
.summary { margin: 0 0 16px; color: var(--muted); }
table.overview { border-collapse: collapse; background: #fff; border: 1px solid var(--line); margin: 0 0 24px; }
table.overview th, table.overview td { padding: 5px 12px; border-bottom: 1px solid var(--line); text-align: left; }
table.overview td.n { text-align: right; font-variant-numeric: tabular-nums; }
table.overview td.failed { color: #d1242f; font-weight: 600; }
.badge { display: inline-block; padding: 0 8px; border-radius: 10px; font-size: 12px; font-weight: 600;
         margin-left: 8px; vertical-align: middle; }
.badge.converted { background: var(--ins-strong); } .badge.unchanged { background: #eaeef2; }
.badge.failed { background: var(--del-strong); }
section.file { background: #fff; border: 1px solid var(--line); border-radius: 6px; margin: 0 0 24px; overflow: hidden; }
p.error { margin: 0; padding: 10px 14px; background: var(--del); }
table.diff { width: 100%; border-collapse: collapse; table-layout: fixed; font-size: 12.5px; }
table.diff col.num { width: 3.6em; } table.diff col.notes { width: 28%; }
table.diff th { font-weight: 600; text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line);
                background: #fff; color: var(--muted); }
table.diff td { vertical-align: top; padding: 0 8px; }
td.num { color: var(--muted); text-align: right; user-select: none; border-right: 1px solid var(--line); }
td.code { white-space: pre-wrap; overflow-wrap: anywhere; }
td.del { background: var(--del); } td.num.del { background: var(--del-strong); }
td.ins { background: var(--ins); } td.num.ins { background: var(--ins-strong); }
td.empty { background: #f6f8fa; }
td.notes { border-left: 1px solid var(--line); padding: 0 6px; }
.note { margin: 2px 0; padding: 3px 7px; border-left: 3px solid; border-radius: 3px; font-size: 12px; line-height: 1.35;
        overflow-wrap: anywhere; }
.note.follow-up { background: var(--warn); border-color: var(--warn-edge); }
.note.change { background: var(--note); border-color: var(--note-edge); color: #1f2328; }
.note b { font-family: ui-monospace, monospace; font-weight: 600; margin-right: 4px; }
tr.has-follow-up td.num:first-child { box-shadow: inset 3px 0 var(--warn-edge); }
"""


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def render(report) -> str:
    results = [r for r in report.results if r.status != "unchanged" or r.entries]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>Ray Train migration</title>",
        f"<style>{CSS}</style></head><body>",
        "<h1>Ray Train migration</h1>",
        f'<p class="summary" id="summary">{escape(report.summary())}</p>',
    ]
    if results:
        parts.append('<table class="overview"><thead><tr><th>file</th><th>status</th><th>changes</th>'
                     "<th>follow-ups</th></tr></thead><tbody>")
        for i, r in enumerate(results):
            parts.append(
                f'<tr><td><a href="#file-{i}"><code>{escape(r.path)}</code></a></td><td class="{r.status}">{r.status}</td>'
                f'<td class="n">{len(r.changes)}</td><td class="n">{len(r.follow_ups)}</td></tr>'
            )
        parts.append("</tbody></table>")
    # The files that still need a human, linked to their sections.
    anchor = {id(r): i for i, r in enumerate(results)}
    for title, found in unfinished(report.results).items():
        parts.append(f'<h2 class="unfinished">{escape(title)}</h2><ul class="unfinished">')
        parts += [f'<li><a href="#file-{anchor[id(r)]}"><code>{escape(r.path)}</code></a> line '
                  f"{first_follow_up(r).line}: {escape(first_follow_up(r).message)}</li>" for r in found]
        parts.append("</ul>")
    for i, r in enumerate(results):
        parts.append(_file_section(i, r))
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _file_section(i: int, r: FileResult) -> str:
    counts = f"{_plural(len(r.changes), 'change')}, {_plural(len(r.follow_ups), 'follow-up')}"
    out = [
        f'<section class="file" id="file-{i}" data-path="{escape(r.path)}">',
        f'<h2><code>{escape(r.path)}</code><span class="badge {r.status}">{r.status}</span>'
        f' <span class="counts">{counts}</span></h2>',
    ]
    if r.error:
        out.append(f'<p class="error">Could not convert (line {r.error_line or "?"}): {escape(r.error)}. '
                   "The file was left as it was.</p>")
    else:
        out.append(_side_by_side(r))
    out.append("</section>")
    return "\n".join(out)


def _side_by_side(r: FileResult) -> str:
    if r.notebook_cells:  # a notebook: its changed code cells, each side by side, not its JSON
        return "\n".join(
            f"<h3>cell {c.number}</h3>\n" + _table(c.before.splitlines(), c.after.splitlines(),
                                                   [e for e in r.entries if e.cell == c.number])
            for c in r.notebook_cells
        )
    return _table(r.text("source").splitlines(), r.text("output").splitlines(), r.entries)


def _table(before: list[str], after: list[str], entries) -> str:
    notes: dict[int, list[Entry]] = defaultdict(list)
    for entry in entries:
        # Lines are those of the code the codemod was given: the original's, as near as can be.
        notes[min(max(entry.line, 1), max(len(before), 1))].append(entry)
    rows = ['<table class="diff"><colgroup><col class="num"><col><col class="num"><col><col class="notes">'
            "</colgroup><thead><tr><th></th><th>before</th><th></th><th>after</th><th>notes</th></tr></thead><tbody>"]
    matcher = difflib.SequenceMatcher(None, before, after, autojunk=False)
    for tag, a0, a1, b0, b1 in matcher.get_opcodes():
        for k in range(max(a1 - a0, b1 - b0)):
            left = a0 + k if a0 + k < a1 else None
            right = b0 + k if b0 + k < b1 else None
            rows.append(_row(tag, left, right, before, after, notes.get(left + 1, []) if left is not None else []))
    if not before and not after:
        rows.append('<tr><td class="num"></td><td class="code empty" colspan="4">(empty file)</td></tr>')
    rows.append("</tbody></table>")
    return "\n".join(rows)


def _row(tag: str, left: int | None, right: int | None, before: list[str], after: list[str], entries: list[Entry]) -> str:
    left_class = "" if tag == "equal" else " del"
    right_class = "" if tag == "equal" else " ins"
    if left is None:
        cells = '<td class="num empty"></td><td class="code empty"></td>'
    else:
        cells = f'<td class="num{left_class}">{left + 1}</td><td class="code{left_class}">{escape(before[left])}</td>'
    if right is None:
        cells += '<td class="num empty"></td><td class="code empty"></td>'
    else:
        cells += f'<td class="num{right_class}">{right + 1}</td><td class="code{right_class}">{escape(after[right])}</td>'
    ordered = sorted(entries, key=lambda e: e.kind != "follow-up")
    note_html = "".join(
        f'<div class="note {e.kind}" data-line="{e.line}"><b>{escape(e.code)}</b>{escape(e.message)}</div>' for e in ordered
    )
    row_class = ' class="has-follow-up"' if any(e.kind == "follow-up" for e in entries) else ""
    return f'<tr{row_class}>{cells}<td class="notes">{note_html}</td></tr>'
