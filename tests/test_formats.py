"""``--output-format``: text, json, GitHub annotations and SARIF 2.1.0 (checked against the schema)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import jsonschema
import pytest

from migrator.formats import Finding, escape_data, escape_property, github_annotation
from tests.test_cli import GUIDE, ROOT, run

SARIF_SCHEMA = Path(__file__).resolve().parent / "data" / "sarif-schema-2.1.0.json"
TWO = ROOT / "fixtures" / "transformers_trainer" / "two_trainers_in_lists.input.py"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A converted file, one with only follow-ups (its name needs escaping), and a broken one."""
    shutil.copy(GUIDE, tmp_path / "train.py")
    shutil.copy(TWO, tmp_path / "two,trainers.py")
    (tmp_path / "broken.py").write_text("from transformers import Trainer\ndef f(:\n    pass\n")
    return tmp_path


def test_text_keeps_findings_on_stderr(project: Path) -> None:
    result = run("convert", "--check", ".", cwd=project)
    assert result.exit_code == 123
    assert result.stdout == ""
    assert "follow-up: two,trainers.py:3: a Trainer built here" in result.stderr


def test_json_lists_every_finding_with_its_code(project: Path) -> None:
    result = run("convert", "--check", "--output-format", "json", ".", cwd=project)
    assert result.exit_code == 123
    findings = json.loads(result.stdout)  # stdout is the JSON and nothing else
    by_file: dict[str, list[dict]] = {}
    for f in findings:
        assert set(f) == {"file", "line", "code", "codemod", "kind", "message"}
        by_file.setdefault(f["file"], []).append(f)
    assert set(by_file) == {"broken.py", "train.py", "two,trainers.py"}
    assert [(f["code"], f["kind"], f["line"]) for f in by_file["broken.py"]] == [("RT001", "failed", 2)]
    assert {(f["code"], f["line"]) for f in by_file["two,trainers.py"]} == {("RT102", 3), ("RT102", 5)}
    assert {"RT101", "RT121"} <= {f["code"] for f in by_file["train.py"]}
    assert all(f["kind"] == "change" for f in by_file["train.py"])
    # The human lines stay on stderr, without the findings the JSON already carries.
    assert "follow-up:" not in result.stderr and "would convert train.py" in result.stderr
    assert (project / "train.py").read_bytes() == GUIDE.read_bytes()


def _parse_annotation(line: str) -> tuple[str, dict[str, str], str]:
    """Read a workflow command back the way the runner does (unescaping in reverse)."""
    match = re.fullmatch(r"::(\w+) ([^:]*)::(.*)", line)
    assert match, line

    def unescape(text: str) -> str:
        return text.replace("%0D", "\r").replace("%0A", "\n").replace("%3A", ":").replace("%2C", ",").replace("%25", "%")

    props = {}
    for pair in match.group(2).split(","):
        key, value = pair.split("=", 1)
        props[key] = unescape(value)
    return match.group(1), props, unescape(match.group(3))


def test_github_annotations_land_on_the_lines(project: Path) -> None:
    result = run("convert", "--check", "--output-format", "github", ".", cwd=project)
    lines = result.stdout.splitlines()
    parsed = [_parse_annotation(line) for line in lines]
    assert ("error", {"file": "broken.py", "line": "2", "title": "RT001 migrate"}) in [(c, p) for c, p, _ in parsed]
    warnings = [(p, m) for c, p, m in parsed if c == "warning"]
    assert [p["line"] for p, _ in warnings] == ["3", "5"]
    assert all(p["file"] == "two,trainers.py" and p["title"] == "RT102 transformers_trainer" for p, _ in warnings)
    assert "file=two%2Ctrainers.py," in lines[[i for i, (c, _, _) in enumerate(parsed) if c == "warning"][0]]
    notices = [p for c, p, _ in parsed if c == "notice"]
    assert notices and all(p["file"] == "train.py" for p in notices)
    assert result.exit_code == 123


def test_github_escaping_follows_the_toolkit() -> None:
    assert escape_data("100% done\r\nnext: a, b") == "100%25 done%0D%0Anext: a, b"
    assert escape_property("dir:x,y%z\n") == "dir%3Ax%2Cy%25z%0A"
    finding = Finding("odd:dir/a,b.py", 7, "RT102", "transformers_trainer", "follow-up", "two lines\nand 50%: done")
    line = github_annotation(finding)
    assert line == "::warning file=odd%3Adir/a%2Cb.py,line=7,title=RT102 transformers_trainer::two lines%0Aand 50%25: done"
    assert "\n" not in line
    assert _parse_annotation(line) == (
        "warning",
        {"file": "odd:dir/a,b.py", "line": "7", "title": "RT102 transformers_trainer"},
        "two lines\nand 50%: done",
    )


def test_sarif_is_valid_against_the_2_1_0_schema(project: Path) -> None:
    result = run("convert", "--check", "--output-format", "sarif", ".", cwd=project)
    log = json.loads(result.stdout)
    schema = json.loads(SARIF_SCHEMA.read_text())
    # Not check_schema(): the official schema's `language` pattern starts with "^(?i)", which
    # Python's re rejects; the log below has no `language`, so validation never compiles it.
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    errors = sorted(validator.iter_errors(log), key=str)
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)
    run_ = log["runs"][0]
    rules = run_["tool"]["driver"]["rules"]
    results = run_["results"]
    assert log["version"] == "2.1.0" and run_["tool"]["driver"]["name"] == "migrate"
    assert len({r["id"] for r in rules}) == len(rules)
    for r in results:
        assert rules[r["ruleIndex"]]["id"] == r["ruleId"]
    by_level = {}
    for r in results:
        location = r["locations"][0]["physicalLocation"]
        by_level.setdefault(r["level"], []).append((r["ruleId"], location["artifactLocation"]["uri"], location["region"]["startLine"]))
    assert by_level["error"] == [("RT001", "broken.py", 2)]
    assert by_level["warning"] == [("RT102", "two%2Ctrainers.py", 3), ("RT102", "two%2Ctrainers.py", 5)]
    assert {uri for _, uri, _ in by_level["note"]} == {"train.py"}
    assert run_["invocations"] == [{"executionSuccessful": False}]


def test_sarif_schema_rejects_a_broken_log() -> None:
    """The shipped schema really constrains: a log without a tool driver name fails."""
    schema = json.loads(SARIF_SCHEMA.read_text())
    bad = {"version": "2.1.0", "runs": [{"tool": {"driver": {}}, "results": []}]}
    assert list(jsonschema.Draft202012Validator(schema).iter_errors(bad))


@pytest.mark.parametrize("extra", [["--diff"], ["-o", "-"]])
def test_machine_formats_do_not_share_stdout(tmp_path: Path, extra: list[str]) -> None:
    shutil.copy(GUIDE, tmp_path / "train.py")
    result = run("convert", "--output-format", "json", *extra, "train.py", cwd=tmp_path)
    assert result.exit_code == 2 and "choose one" in result.stderr
