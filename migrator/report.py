"""The run's report: counts, the exit code, and the report file in text, JSON, Markdown or HTML."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
import sys
from pathlib import Path

from migrator.results import FileResult
from migrator.unfinished import first_follow_up, unfinished

#: Exit codes, as black has them.
EXIT_OK, EXIT_WOULD_CHANGE, EXIT_USAGE, EXIT_FAILED = 0, 1, 2, 123


@dataclass
class Report:
    check: bool = False
    #: --diff: nothing is written either, so the summary says "would be converted".
    dry_run: bool = False
    results: list[FileResult] = field(default_factory=list)

    def add(self, result: FileResult) -> None:
        self.results.append(result)

    def count(self, status: str) -> int:
        return sum(1 for r in self.results if r.status == status)

    @property
    def follow_up_count(self) -> int:
        return sum(len(r.follow_ups) for r in self.results)

    @property
    def exit_code(self) -> int:
        if self.count("failed"):
            return EXIT_FAILED
        if self.check and self.count("converted"):
            return EXIT_WOULD_CHANGE
        return EXIT_OK

    def summary(self) -> str:
        converted = self.count("converted")
        parts = [
            f"{converted} file{'s' if converted != 1 else ''} {'would be converted' if self.check or self.dry_run else 'converted'}",
            f"{self.count('unchanged')} unchanged",
            f"{self.count('failed')} failed",
        ]
        line = ", ".join(parts)
        if self.follow_up_count:
            n = self.follow_up_count
            line += f"; {n} follow-up{'s' if n != 1 else ''} for a human"
        return line + "."

    # -- the report file ------------------------------------------------------------------
    def write(self, path: Path) -> None:
        suffix = path.suffix.lower()
        if suffix == ".json":
            text = self.to_json()
        elif suffix == ".md":
            text = self.to_markdown()
        elif suffix in (".html", ".htm"):
            text = self.to_html()
        else:
            text = self.to_text()
        if not text.endswith("\n"):
            text += "\n"
        if str(path) == "-":  # `--report -`: the text report on standard output, as tools do
            sys.stdout.write(text)
            sys.stdout.flush()
            return
        path.write_text(text, encoding="utf-8")

    def to_json(self) -> str:
        files = []
        for r in self.results:
            files.append(
                {
                    "file": r.path,
                    "status": r.status,
                    "error": r.error,
                    "error_line": r.error_line,
                    "changes": [{"file": r.path, **e.to_dict()} for e in r.changes],
                    "follow_ups": [{"file": r.path, **e.to_dict()} for e in r.follow_ups],
                }
            )
        counts = {s: self.count(s) for s in ("converted", "unchanged", "failed")}
        sections = {title.lower().replace(" ", "_"): [
            {"file": r.path, "line": first_follow_up(r).line, "follow_ups": len(r.follow_ups)} for r in found]
            for title, found in unfinished(self.results).items()}
        return json.dumps({"summary": counts, "follow_ups": self.follow_up_count, **sections, "files": files},
                          indent=2) + "\n"

    def to_text(self) -> str:
        lines = [self.summary(), ""]
        for title, found in unfinished(self.results).items():
            lines.append(f"{title} ({len(found)}):")
            for r in found:
                e = first_follow_up(r)
                lines.append(f"  {r.path}:{e.line} ({len(r.follow_ups)} follow-up{'s' if len(r.follow_ups) != 1 else ''}) {e.message}")
            lines.append("")
        for r in self.results:
            if r.status == "unchanged" and not r.entries:
                continue
            lines.append(f"{r.path}: {r.status}")
            if r.error:
                lines.append(f"  error (line {r.error_line or '?'}): {r.error}")
            for e in r.changes:
                lines.append(f"  changed   {e.where(r.path)} [{e.codemod}] {e.message}")
            for e in r.follow_ups:
                lines.append(f"  follow-up {e.where(r.path)} [{e.codemod}] {e.message}")
            lines.append("")
        return "\n".join(lines).rstrip() + "\n"

    def to_markdown(self) -> str:
        from migrator.report_markdown import render

        return render(self)

    def to_html(self) -> str:
        from migrator.report_html import render

        return render(self)
