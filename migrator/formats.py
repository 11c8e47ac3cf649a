"""``--output-format``: the findings (changes, follow-ups, files that failed) for machines.

* ``text``: the default; the lines on stderr that a person reads, nothing extra on stdout.
* ``json``: one list of findings on stdout.
* ``github``: GitHub Actions workflow commands, so findings show on the pull request's lines:
  follow-ups as warnings, changes as notices, failed files as errors.
* ``sarif``: a SARIF 2.1.0 log, for code scanning and other SARIF viewers.

Paths are written relative to the current folder when they lie below it (CI runs from the
repository's root, which is what GitHub resolves annotation paths against).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from migrator import __version__
from migrator.codes import all_codes, failed_code
from migrator.report import Report

FORMATS = ("text", "json", "github", "sarif")

#: A finding's kind -> (GitHub command, SARIF level).
LEVELS = {"change": ("notice", "note"), "follow-up": ("warning", "warning"), "failed": ("error", "error")}
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    code: str
    codemod: str
    kind: str
    message: str

    def to_dict(self) -> dict[str, object]:
        return {
            "file": self.path, "line": self.line, "code": self.code,
            "codemod": self.codemod, "kind": self.kind, "message": self.message,
        }


def display_path(path: str) -> str:
    absolute = os.path.abspath(path)
    relative = os.path.relpath(absolute)
    return Path(absolute if relative.startswith("..") else relative).as_posix()


def findings(report: Report) -> list[Finding]:
    out = []
    for result in report.results:
        path = display_path(result.path)
        if result.status == "failed":
            out.append(Finding(path, result.error_line or 1, failed_code(), "", "failed", f"cannot convert: {result.error}"))
        for entry in result.entries:
            out.append(Finding(path, entry.line, entry.code, entry.codemod, entry.kind, entry.message))
    return out


def render(fmt: str, report: Report) -> str:
    """What goes to stdout for ``fmt``; empty for ``text``."""
    if fmt == "json":
        return json.dumps([f.to_dict() for f in findings(report)], indent=2) + "\n"
    if fmt == "github":
        return "".join(github_annotation(f) + "\n" for f in findings(report))
    if fmt == "sarif":
        return json.dumps(sarif_log(report), indent=2) + "\n"
    return ""


# -- GitHub workflow commands ------------------------------------------------------------------
# The escaping of GitHub's own toolkit (actions/toolkit, packages/core/src/command.ts).
def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def github_annotation(finding: Finding) -> str:
    command = LEVELS[finding.kind][0]
    title = f"{finding.code} {finding.codemod}".strip() if finding.codemod else f"{finding.code} migrate"
    props = ",".join(
        f"{key}={escape_property(str(value))}"
        for key, value in (("file", finding.path), ("line", finding.line), ("title", title))
    )
    return f"::{command} {props}::{escape_data(finding.message)}"


# -- SARIF 2.1.0 ------------------------------------------------------------------------------
def _rules() -> list[dict[str, object]]:
    from migrator.registry import index

    descriptions = {info.id: info.DESCRIPTION for info in index()}
    rules = []
    for code, (codemod, kind) in sorted(all_codes().items()):
        if kind == "failed":
            text = "A file that could not be converted and was left exactly as it was."
        elif kind == "change":
            text = f"Rewritten by {codemod}: {descriptions.get(codemod, codemod)}"
        else:
            text = f"Left for a human by {codemod}: {descriptions.get(codemod, codemod)}"
        rules.append(
            {
                "id": code,
                "name": f"{codemod or 'migrate'}/{kind}",
                "shortDescription": {"text": text},
                "defaultConfiguration": {"level": LEVELS[kind][1]},
                "properties": {"codemod": codemod, "kind": kind},
            }
        )
    return rules


def _uri(path: str) -> str:
    """A relative path stays a relative URI reference; an absolute one becomes a file: URI."""
    return Path(path).as_uri() if os.path.isabs(path) else quote(path)


def sarif_log(report: Report) -> dict[str, object]:
    rules = _rules()
    rule_index = {rule["id"]: i for i, rule in enumerate(rules)}
    results = []
    for f in findings(report):
        result: dict[str, object] = {
            "ruleId": f.code,
            "level": LEVELS[f.kind][1],
            "message": {"text": f.message},
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": {"uri": _uri(f.path)},
                        "region": {"startLine": max(f.line, 1)},
                    }
                }
            ],
        }
        if f.code in rule_index:
            result["ruleIndex"] = rule_index[f.code]
        results.append(result)
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {"driver": {"name": "migrate", "version": __version__, "rules": rules}},
                "invocations": [{"executionSuccessful": report.count("failed") == 0}],
                "results": results,
            }
        ],
    }
