"""``migrate run`` and ``migrate validate`` where no cluster is needed: refusals, help, the table."""

from __future__ import annotations

import json
import time
from pathlib import Path

from click.testing import CliRunner

from migrator.cli import main
from migrator.runtime.validate import FAIL, PASS, SKIP, WARN, Check, Report, compare_losses, render_table

DATA = Path(__file__).resolve().parents[1] / "e2e" / "data" / "runtime"


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_run_refuses_a_lightning_package_mismatch_in_one_line() -> None:
    start = time.monotonic()
    result = invoke("run", str(DATA / "lightning_mismatch_converted.py"))
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "imports pytorch_lightning, but Ray's Lightning integration binds to lightning.pytorch" in lines[0]
    assert time.monotonic() - start < 10  # nothing was started


def test_help_names_every_option() -> None:
    run_help = invoke("run", "--help").output
    for option in ("--address", "--num-workers", "--gpu / --cpu", "--gpus-per-worker", "--storage-path",
                   "--max-steps", "--json", "--offline-standins", "--seed"):
        assert option in run_help
    validate_help = invoke("validate", "--help").output
    for option in ("--converted", "--max-steps", "--tolerance", "--num-workers", "--plot", "--json", "--offline-standins"):
        assert option in validate_help


def test_validate_says_when_there_is_nothing_to_convert(tmp_path: Path) -> None:
    script = tmp_path / "plain.py"
    script.write_text("print('no training here')\n")
    result = invoke("validate", str(script), "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["checks"][0]["name"] == "conversion" and report["checks"][0]["verdict"] == FAIL
    assert "nothing to convert" in report["checks"][0]["detail"]
    assert all(c["verdict"] == SKIP for c in report["checks"][1:])


def test_loss_comparison() -> None:
    ok, detail, figures = compare_losses([[1, 2.0], [2, 1.5]], [[1, 2.0], [2, 1.5]], 1e-4)
    assert ok and figures["max_difference"] == 0 and "largest difference 0" in detail
    ok, detail, figures = compare_losses([[1, 2.0], [2, 1.5]], [[1, 2.0], [2, 1.6]], 1e-4)
    assert not ok and figures["at_step"] == 2 and "original 1.5 vs converted 1.6" in detail
    ok, detail, _ = compare_losses([[1, 2.0]], [[1, 2.0], [2, 1.0]], 1e-4)
    assert not ok and "the original logged 1 steps, the converted script 2" in detail
    ok, _, figures = compare_losses([[1, 200.0]], [[1, 200.01]], 1e-4)  # relative to |loss| past 1
    assert ok and figures["max_difference"] < 1e-4


def test_verdict_table_and_exit_rule() -> None:
    report = Report("orig.py", "conv.py", [Check("static", "parses", PASS), Check("runs", "original runs", SKIP, "retired"),
                                           Check("scales", "split", WARN, "each alone")])
    assert report.ok
    table = render_table(report)
    assert "result: PASS (1 passed, 1 warning(s), 0 failed, 1 skipped)" in table
    report.checks.append(Check("scales", "checkpoint loads", FAIL, "no checkpoint"))
    assert not report.ok and "result: FAIL" in render_table(report)
