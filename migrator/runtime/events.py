"""Events a run reports while it trains, how they travel as text, and what they add up to.

Every process that trains (a Ray worker, or the original script run in plain Python) reports
small JSON events: ``worker_up``, ``train_begin``, ``step`` (one per optimizer step, with the
training loss), ``metrics``, ``error`` and ``worker_done``. The driver adds ``cluster_up``,
``fit_start``, ``fit_end``, ``pickled`` and, last, ``summary``.

They reach ``migrate run``/``validate`` as lines of the driver's output carrying ``MARKER``, so
the same parser serves a local child process and a Ray Job whose logs are followed over HTTP.
Standard library only: the CLI imports this before anything heavy.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from typing import Any, Iterable

MARKER = "@@migrate-event@@ "


def encode(event: dict[str, Any]) -> bytes:
    """One line; written with a single ``os.write`` so no other output can split it."""
    return (MARKER + json.dumps(event, default=_json_safe, allow_nan=True) + "\n").encode()


def write(event: dict[str, Any], fd: int = 1) -> None:
    os.write(fd, encode(event))


def parse(line: str) -> dict[str, Any] | None:
    """The event in a line of output, or None. The marker may follow other text on the line
    (a log prefix, or unflushed output of another writer)."""
    at = line.find(MARKER)
    if at < 0:
        return None
    try:
        event = json.loads(line[at + len(MARKER):])
    except ValueError:
        return None
    return event if isinstance(event, dict) and "kind" in event else None


def _json_safe(value: Any) -> Any:
    item = getattr(value, "item", None)  # numpy and torch scalars
    if callable(item):
        try:
            return item()
        except (TypeError, ValueError, RuntimeError):
            pass
    return repr(value)


def finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


@dataclass
class Tally:
    """What a stream of events adds up to; fed one event at a time (progress) or all at once."""

    world_size: int | None = None
    workers_up: set[int] = field(default_factory=set)
    workers_done: set[int] = field(default_factory=set)
    total_steps: int | None = None
    #: rank -> [(step, loss)], in the order reported.
    losses: dict[int, list[tuple[int, float]]] = field(default_factory=dict)
    #: rank 0's step timestamps, for steady-state rates (the benchmark's median step time).
    step_times: list[float] = field(default_factory=list)
    first_step_t: float | None = None
    last_step_t: float | None = None
    first_rank0_t: float | None = None
    last_rank0_t: float | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    reported: dict[str, Any] = field(default_factory=dict)
    checkpoints_reported: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    cluster_up_t: float | None = None
    fit_start: dict[str, Any] | None = None
    pickled: dict[str, Any] | None = None
    module_class: dict[str, str] | None = None
    warnings: list[str] = field(default_factory=list)
    #: framework -> processes it saw (from every rank's "split" event; the smallest wins).
    split: dict[str, int] = field(default_factory=dict)
    devices: dict[int, str] = field(default_factory=dict)

    def add(self, event: dict[str, Any]) -> None:
        kind = event.get("kind")
        rank = int(event.get("rank", 0) or 0)
        if kind == "worker_up":
            self.workers_up.add(rank)
            if event.get("device"):
                self.devices[rank] = str(event["device"])
            self.world_size = event.get("world_size", self.world_size)
        elif kind == "worker_done":
            self.workers_done.add(rank)
        elif kind == "train_begin":
            if event.get("total_steps"):
                self.total_steps = int(event["total_steps"])
            if event.get("module_class"):
                self.module_class = event["module_class"]
        elif kind == "step":
            t = event.get("t")
            loss = event.get("loss")
            self.losses.setdefault(rank, []).append((int(event.get("step", 0)), loss if loss is not None else math.nan))
            if t is not None:
                self.first_step_t = t if self.first_step_t is None else min(self.first_step_t, t)
                self.last_step_t = t if self.last_step_t is None else max(self.last_step_t, t)
                if rank == 0:
                    self.step_times.append(t)
                    self.first_rank0_t = self.first_rank0_t if self.first_rank0_t is not None else t
                    self.last_rank0_t = t
        elif kind == "metrics":
            if rank == 0:
                self.metrics.update({k: v for k, v in event.get("metrics", {}).items()})
        elif kind == "report":
            if rank == 0:
                self.reported.update(event.get("metrics") or {})
                self.checkpoints_reported += int(bool(event.get("checkpoint")))
        elif kind == "error":
            self.errors.append(event)
        elif kind == "cluster_up":
            self.cluster_up_t = event.get("t")
        elif kind == "fit_start":
            self.fit_start = event
        elif kind == "pickled":
            self.pickled = event
        elif kind == "warning":
            message = str(event.get("message"))
            if message not in self.warnings:
                self.warnings.append(message)
        elif kind == "split":
            framework = str(event.get("framework"))
            self.split[framework] = min(self.split.get(framework, 1 << 30), int(event.get("processes") or 0))

    def extend(self, events: Iterable[dict[str, Any]]) -> "Tally":
        for event in events:
            self.add(event)
        return self

    # -- derived figures -------------------------------------------------------------------
    def steps(self, rank: int = 0) -> int:
        return len(self.losses.get(rank, ()))

    def last_loss(self, rank: int = 0) -> float | None:
        series = self.losses.get(rank)
        return series[-1][1] if series else None

    def nonfinite(self) -> dict[int, int]:
        return {r: n for r, s in self.losses.items() if (n := sum(not finite(v) for _, v in s))}

    def steps_per_s(self) -> float | None:
        n = self.steps(0)
        if n < 2 or self.first_rank0_t is None or self.last_rank0_t is None:
            return None
        span = self.last_rank0_t - self.first_rank0_t
        return (n - 1) / span if span > 0 else None

    def median_steps_per_s(self) -> float | None:
        """Steps/s from the median time between consecutive steps: evaluation, checkpointing and
        other pauses between steps left out."""
        gaps = sorted(b - a for a, b in zip(self.step_times, self.step_times[1:]))
        if not gaps:
            return None
        middle = gaps[len(gaps) // 2] if len(gaps) % 2 else (gaps[len(gaps) // 2 - 1] + gaps[len(gaps) // 2]) / 2
        return 1.0 / middle if middle > 0 else None

    def startup_s(self) -> float | None:
        """Cluster up (driver) to the first training step (any worker)."""
        if self.cluster_up_t is None or self.first_step_t is None:
            return None
        return max(0.0, self.first_step_t - self.cluster_up_t)

    def figures(self) -> dict[str, Any]:
        rate = self.steps_per_s()
        startup = self.startup_s()
        return {
            "world_size": self.world_size,
            "workers_up": len(self.workers_up),
            "steps": self.steps(0),
            "steps_by_rank": {str(r): len(s) for r, s in sorted(self.losses.items())},
            "total_steps": self.total_steps,
            "last_loss": self.last_loss(0),
            "steps_per_s": round(rate, 3) if rate else None,
            "startup_s": round(startup, 2) if startup is not None else None,
            "nonfinite_losses": {str(r): n for r, n in self.nonfinite().items()},
            "latest_metrics": self.metrics or self.reported or None,
            "checkpoints_reported": self.checkpoints_reported,
            "framework_processes": self.split or None,
            "devices": {str(r): d for r, d in sorted(self.devices.items())} or None,
            "scaling": {k: v for k, v in (self.fit_start or {}).items() if k not in ("kind", "rank", "t")} or None,
        }
