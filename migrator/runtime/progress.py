"""What ``migrate run`` shows: one progress line while training, then a summary or one error block.

On a terminal the progress line is rewritten in place; elsewhere (CI logs, pipes) a line is
printed when the phase changes and at most every ``interval_s`` seconds while training.
Standard library only.
"""

from __future__ import annotations

import shutil
import sys
import time
from typing import Any, TextIO

from migrator.runtime.events import Tally, finite

SKIPPED_METRICS = ("runtime", "per_second", "flos", "epoch", "step", "grad_norm", "learning_rate")


def interesting_metrics(metrics: dict[str, Any] | None, limit: int = 4) -> list[tuple[str, Any]]:
    """Evaluation metrics first, then the rest; timing and bookkeeping figures left out."""
    if not metrics:
        return []
    items = [(k, v) for k, v in metrics.items() if not any(s in k for s in SKIPPED_METRICS) and not isinstance(v, (dict, list))]
    items.sort(key=lambda kv: (not kv[0].startswith("eval"), kv[0]))
    return items[:limit]


def fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


class Progress:
    def __init__(self, stream: TextIO | None = None, enabled: bool = True, interval_s: float = 5.0,
                 label: str = "run") -> None:
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.interval_s = interval_s
        self.label = label
        self.tally = Tally()
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.start = time.monotonic()
        self.phase = "starting the driver"
        self._last_line = ""
        self._last_print = 0.0
        self._dirty = False

    def event(self, event: dict[str, Any]) -> None:
        self.tally.add(event)
        kind = event.get("kind")
        phase = self.phase
        if kind == "cluster_up":
            phase = f"cluster up ({fmt(event.get('cpus'))} CPUs, {fmt(event.get('gpus'))} GPUs)"
        elif kind == "fit_start":
            gpu = "GPU" if event.get("use_gpu") else "CPU"
            workers = event.get("num_workers")
            phase = (f"starting {workers} {gpu} worker(s)" if workers != 0
                     else f"training in this process on the {gpu} (Ray Train's local mode)")
        elif kind == "worker_up" and self.tally.steps(0) == 0:
            phase = "workers starting"
        elif kind == "step":
            phase = "training"
        elif kind == "error":
            phase = "failed"
        elif kind == "fit_end":
            phase = "finishing"
        elif kind == "warning":
            self._write_line(f"warning: {event.get('message')}")
        changed = phase != self.phase
        self.phase = phase
        self.render(force=changed)

    def line(self) -> str:
        tally = self.tally
        parts = [self.phase]
        expected = (tally.fit_start or {}).get("num_workers")
        if expected:
            parts.append(f"workers {len(tally.workers_up)}/{expected}")
        steps = tally.losses.get(0)
        if steps:
            step = steps[-1][0]
            parts.append(f"step {step}/{tally.total_steps}" if tally.total_steps else f"step {step}")
            loss = steps[-1][1]
            parts.append(f"loss {loss:.4f}" if finite(loss) else f"loss {loss}")
        for key, value in interesting_metrics(tally.metrics, 3):
            parts.append(f"{key} {fmt(value)}")
        return f"[{time.monotonic() - self.start:6.1f}s] " + " | ".join(parts)

    def render(self, force: bool = False) -> None:
        if not self.enabled:
            return
        line = self.line()
        now = time.monotonic()
        if self.tty:
            width = shutil.get_terminal_size((120, 20)).columns - 1
            self.stream.write("\r\x1b[K" + line[:width])
            self.stream.flush()
            self._dirty = True
        elif force or (now - self._last_print >= self.interval_s and line != self._last_line):
            self.stream.write(line + "\n")
            self.stream.flush()
            self._last_print = now
        self._last_line = line

    def _write_line(self, text: str) -> None:
        if not self.enabled:
            return
        if self.tty and self._dirty:
            self.stream.write("\r\x1b[K")
        self.stream.write(text + "\n")
        self.stream.flush()
        self._dirty = False

    def close(self) -> None:
        if self.enabled and self.tty and self._dirty:
            self.stream.write("\n")
            self.stream.flush()
            self._dirty = False


def final_metrics(summary: dict[str, Any]) -> dict[str, Any]:
    """``Result.metrics`` when the run reported any (only reports with a checkpoint count), else
    the latest metrics the workers logged."""
    return summary.get("metrics") or summary.get("latest_metrics") or {}


def samples_per_s(summary: dict[str, Any]) -> float | None:
    metrics = summary.get("latest_metrics") or {}
    value = metrics.get("train_samples_per_second")
    return float(value) if isinstance(value, (int, float)) else None


def worker_error(summary: dict[str, Any]) -> dict[str, Any] | None:
    errors = summary.get("worker_errors") or []
    return min(errors, key=lambda e: (e.get("t") or 0)) if errors else None


def error_block(summary: dict[str, Any] | None, output_tail: list[str], width: int = 72) -> str:
    """One block with the error that ended the run: the first worker's traceback when a worker
    raised, else the driver's, else the end of the output."""
    rule = "-" * width
    if summary is None:
        body = "\n".join(output_tail[-25:]) or "(no output)"
        return f"{rule}\nthe driver ended without a summary; its output ended with:\n{body}\n{rule}"
    failure = worker_error(summary)
    if failure is not None:
        title = f"worker rank {failure.get('rank')} raised {failure.get('type')}"
        body = failure.get("traceback") or f"{failure.get('type')}: {failure.get('message')}"
    elif summary.get("error_traceback"):
        title = "the script raised on the driver"
        body = summary["error_traceback"]
    else:
        title = "error"
        body = str(summary.get("error"))
    return f"{rule}\n{title}\n{rule}\n{body.rstrip()}\n{rule}"


def render_summary(summary: dict[str, Any], extra: dict[str, str] | None = None) -> str:
    lines = []
    scaling = summary.get("scaling") or {}
    if scaling:
        kind = "GPU" if scaling.get("use_gpu") else "CPU"
        resources = ", ".join(f"{k} {fmt(v)}" for k, v in (scaling.get("resources_per_worker") or {}).items())
        text = f"{scaling.get('num_workers')} {kind} worker(s)"
        if resources:
            text += f", {resources} each"
        if scaling.get("backend"):
            text += f", {scaling['backend']} backend"
        lines.append(("workers", text))
    steps = summary.get("steps")
    if steps:
        rate = summary.get("steps_per_s")
        text = f"{steps} on rank 0"
        if rate:
            text += f", {rate:.2f} steps/s"
        samples = samples_per_s(summary)
        if samples:
            text += f", {samples:.1f} samples/s (Trainer)"
        lines.append(("steps", text))
    if summary.get("startup_s") is not None:
        lines.append(("start-up", f"{summary['startup_s']:.1f} s (cluster up to first step)"))
    metrics = final_metrics(summary)
    if metrics:
        shown = interesting_metrics(metrics, 8) or list(metrics.items())[:8]
        lines.append(("final metrics", " ".join(f"{k}={fmt(v)}" for k, v in shown)))
    lines.append(("checkpoint", summary.get("checkpoint") or "none reported"))
    for key, value in (extra or {}).items():
        lines.append((key, value))
    return "\n".join(f"  {key + ':':<15} {value}" for key, value in lines)
