"""A converted notebook trains under `migrate run` (its code cells as a script, magics skipped)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.e2e.test_runtime import migrate, run_json

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "fixtures" / "notebooks" / "guide_first_tab.ipynb"

pytestmark = pytest.mark.e2e


def test_run_a_converted_notebook(ray_cluster, tmp_path: Path) -> None:
    """On the session's cluster: ``migrate run``'s own local Ray is exercised once, in test_runtime."""
    nb = tmp_path / "nb.ipynb"
    shutil.copy(NOTEBOOK, nb)
    converted = migrate("convert", str(nb), "--no-use-gpu", cwd=tmp_path)
    assert converted.returncode == 0, converted.stderr
    data, done = run_json("run", str(nb), "--address", ray_cluster.ensure_started(), "--cpu", "--num-workers", "2",
                          "--max-steps", "4", "--storage-path", str(tmp_path / "results"), cwd=tmp_path,
                          auth=ray_cluster.driver_env)
    assert data["ok"], (data.get("error"), done.stderr[-3000:])
    assert data["fit_calls"] == 1 and data["world_size"] == 2
    assert "6 IPython-only line(s) skipped" in done.stderr
