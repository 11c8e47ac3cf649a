"""Run a converted script as ``__main__`` in this process, with Ray Train's TorchTrainer patched.

The patch lets a caller (a test, ``migrate run``) point a converted script at a cluster without
editing it: ``--num-workers``, ``--cpu``/``--gpu`` and ``--resources-per-worker`` override the
script's ``ScalingConfig``, ``--storage-path`` its ``RunConfig``. Every ``fit()`` is recorded,
and a JSON summary (metrics, checkpoint, error, wall time, number of fits) is written to
``--summary``. The cluster is whatever ``ray.init()`` finds: set ``RAY_ADDRESS`` to use one.

    python -m migrator.runtime.launch SCRIPT [--num-workers N] [--cpu|--gpu]
        [--resources-per-worker JSON] [--storage-path P] [--summary PATH] [-- SCRIPT_ARGS...]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import runpy
import sys
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence


@dataclass(frozen=True)
class Overrides:
    """Settings forced onto every TorchTrainer the script builds; ``None`` keeps the script's."""

    num_workers: int | None = None
    use_gpu: bool | None = None
    resources_per_worker: dict[str, float] | None = None
    storage_path: str | None = None

    def scaling(self) -> dict[str, Any]:
        fields = {"num_workers": self.num_workers, "use_gpu": self.use_gpu,
                  "resources_per_worker": self.resources_per_worker}
        return {k: v for k, v in fields.items() if v is not None}


@dataclass
class FitRecord:
    metrics: dict[str, Any] | None = None
    checkpoint: str | None = None
    path: str | None = None
    error: str | None = None
    wall_s: float = 0.0


@dataclass
class Summary:
    script: str
    argv: list[str]
    fits: list[FitRecord] = field(default_factory=list)
    error: str | None = None
    wall_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None and all(f.error is None for f in self.fits)

    def to_dict(self) -> dict[str, Any]:
        last = self.fits[-1] if self.fits else FitRecord()
        return {
            "script": self.script,
            "argv": self.argv,
            "ok": self.ok,
            "fit_calls": len(self.fits),
            # The last fit is what a single-fit script (nearly all of them) produced.
            "metrics": last.metrics,
            "checkpoint": last.checkpoint,
            "path": last.path,
            "error": self.error or next((f.error for f in self.fits if f.error), None),
            "wall_s": round(self.wall_s, 2),
            "fits": [dataclasses.asdict(f) for f in self.fits],
        }


def _json_safe(value: Any) -> Any:
    """Metrics often hold numpy scalars; anything else unknown becomes its repr."""
    item = getattr(value, "item", None)
    return item() if callable(item) else repr(value)


@contextlib.contextmanager
def patched_torch_trainer(overrides: Overrides, fits: list[FitRecord]) -> Iterator[None]:
    """Swap ``ray.train.torch.TorchTrainer`` for a subclass, so ``isinstance`` checks still hold."""
    import ray.train
    import ray.train.torch

    original = ray.train.torch.TorchTrainer

    class RecordingTorchTrainer(original):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            if overrides.scaling():
                scaling = kwargs.get("scaling_config") or ray.train.ScalingConfig()
                kwargs["scaling_config"] = dataclasses.replace(scaling, **overrides.scaling())
            if overrides.storage_path is not None:
                run = kwargs.get("run_config") or ray.train.RunConfig()
                kwargs["run_config"] = dataclasses.replace(run, storage_path=overrides.storage_path)
            super().__init__(*args, **kwargs)

        def fit(self):  # type: ignore[no-untyped-def]
            record = FitRecord()
            fits.append(record)
            start = time.monotonic()
            try:
                result = super().fit()
            except BaseException as exc:
                record.error = f"{type(exc).__name__}: {exc}"
                raise
            finally:
                record.wall_s = round(time.monotonic() - start, 2)
            record.metrics = result.metrics
            record.checkpoint = result.checkpoint.path if result.checkpoint else None
            record.path = result.path
            record.error = f"{type(result.error).__name__}: {result.error}" if result.error else None
            return result

    RecordingTorchTrainer.__name__ = RecordingTorchTrainer.__qualname__ = "TorchTrainer"
    ray.train.torch.TorchTrainer = RecordingTorchTrainer
    try:
        yield
    finally:
        ray.train.torch.TorchTrainer = original


def run_script(script: str, args: Sequence[str] = (), overrides: Overrides = Overrides()) -> Summary:
    """Run SCRIPT as ``python SCRIPT ARGS`` would, but in this process; never raises for its errors."""
    script = os.path.abspath(script)
    summary = Summary(script=script, argv=list(args))
    saved_argv, saved_path = sys.argv[:], sys.path[:]
    sys.argv = [script, *args]
    sys.path.insert(0, os.path.dirname(script))  # as `python SCRIPT` does, for sibling imports
    start = time.monotonic()
    try:
        with patched_torch_trainer(overrides, summary.fits):
            runpy.run_path(script, run_name="__main__")
    except SystemExit as exc:
        if exc.code not in (None, 0):
            summary.error = f"SystemExit: {exc.code}"
    except BaseException as exc:  # the summary must be written whatever the script did
        traceback.print_exc()
        summary.error = f"{type(exc).__name__}: {exc}"
    finally:
        summary.wall_s = time.monotonic() - start
        sys.argv, sys.path[:] = saved_argv, saved_path
    return summary


def _parse(argv: Sequence[str]) -> tuple[argparse.Namespace, list[str]]:
    # Everything after the first "--" belongs to the script, untouched by our parser.
    argv = list(argv)
    ours, theirs = (argv[: argv.index("--")], argv[argv.index("--") + 1 :]) if "--" in argv else (argv, [])
    parser = argparse.ArgumentParser(
        prog="python -m migrator.runtime.launch",
        description="Run a converted training script under Ray Train and summarise its fit() results.",
    )
    parser.add_argument("script", help="The converted script to run as __main__.")
    parser.add_argument("--num-workers", type=int, help="Override ScalingConfig(num_workers=...).")
    gpu = parser.add_mutually_exclusive_group()
    gpu.add_argument("--cpu", dest="use_gpu", action="store_false", default=None,
                     help="Override ScalingConfig(use_gpu=False).")
    gpu.add_argument("--gpu", dest="use_gpu", action="store_true", help="Override ScalingConfig(use_gpu=True).")
    parser.add_argument("--resources-per-worker", type=json.loads, metavar="JSON",
                        help='Override ScalingConfig(resources_per_worker=...), e.g. \'{"CPU": 2}\'.')
    parser.add_argument("--storage-path", help="Override RunConfig(storage_path=...).")
    parser.add_argument("--summary", metavar="PATH", help="Write the JSON summary here.")
    return parser.parse_args(ours), theirs


def main(argv: Sequence[str] | None = None) -> int:
    options, script_args = _parse(sys.argv[1:] if argv is None else argv)
    overrides = Overrides(options.num_workers, options.use_gpu, options.resources_per_worker, options.storage_path)
    summary = run_script(options.script, script_args, overrides)
    if options.summary:
        with open(options.summary, "w", encoding="utf-8") as f:
            json.dump(summary.to_dict(), f, indent=2, default=_json_safe)
            f.write("\n")
    print(f"launch: {len(summary.fits)} fit call(s), {'ok' if summary.ok else 'failed'}, "
          f"{summary.wall_s:.1f} s", file=sys.stderr)
    return 0 if summary.ok else 1


if __name__ == "__main__":
    sys.exit(main())
