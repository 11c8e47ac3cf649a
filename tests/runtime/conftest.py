"""``run_original``: ``python -m migrator.runtime.original SCRIPT --summary ... FLAGS`` in a process
of its own (the hooks patch torch, Lightning and Accelerate classes, which must not leak into the
test process), forked from the test process's warm interpreter where it takes the run
(``tests/drivers.py``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import pytest

from tests.drivers import Drivers


def _original(drivers: Drivers, script: Path, flags: tuple[str, ...], cwd: Path) -> tuple[dict, str]:
    summary = cwd / "summary.json"
    done = drivers.run("migrator.runtime.original", [str(script), "--summary", str(summary), *flags], cwd=cwd)
    assert summary.exists(), done.output[-3000:]
    data = json.loads(summary.read_text())
    assert done.returncode == (0 if data["ok"] else 1), done.output[-3000:]
    return data, done.output


@pytest.fixture
def run_original(warm_driver: Drivers) -> Callable[..., dict]:
    """The run's summary."""
    return lambda script, *flags, cwd: _original(warm_driver, script, flags, cwd)[0]


@pytest.fixture
def run_original_printing(warm_driver: Drivers) -> Callable[..., tuple[dict, str]]:
    """The run's summary and everything it printed, its children's lines too."""
    return lambda script, *flags, cwd: _original(warm_driver, script, flags, cwd)
