"""Run a converted script as ``__main__`` in this process, with Ray Train's TorchTrainer patched.

The patch lets a caller (a test, ``migrate run``, ``migrate validate``) point a converted script
at a cluster without editing it: ``--num-workers``, ``--cpu``/``--gpu``, ``--gpus-per-worker``
and ``--resources-per-worker`` override the script's ``ScalingConfig``, ``--storage-path`` its
``RunConfig``. Every ``fit()`` is recorded, and a JSON summary (metrics, checkpoint, error, wall
time, number of fits) is written to ``--summary``. The cluster is whatever ``ray.init()`` finds
(set ``RAY_ADDRESS`` to use one), or with ``--local-cluster`` a fresh embedded one: dashboard
off, loopback only, a private temp dir.

Instrumented runs (``--events``, ``--seed``, ``--max-steps``, ``--offline-standins``,
``--check-checkpoint``) also wrap the train function so that every worker seeds, caps and
reports its steps (``migrator.runtime.instrument``); the workers' events reach this driver
through a small Ray actor, and with ``--events`` are printed as marked lines
(``migrator.runtime.events``), which is how ``migrate run`` shows progress, locally or from a
Ray Job's logs. This module and what it imports need only the standard library and Ray, so it
can run as a Ray Job's entrypoint with nothing but the ``migrator`` package shipped along.

    python -m migrator.runtime.launch SCRIPT [--num-workers N] [--cpu|--gpu] [--gpus-per-worker F]
        [--resources-per-worker JSON] [--storage-path P] [--summary PATH] [--events] [--seed S]
        [--max-steps N] [--offline-standins] [--local-cluster] [--check-checkpoint] [-- SCRIPT_ARGS...]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import os
import runpy
import shutil
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

from migrator.runtime import events as ev
from migrator.runtime import instrument, local_runs, preflight


@dataclass(frozen=True)
class Overrides:
    """Settings forced onto every TorchTrainer the script builds; ``None`` keeps the script's."""

    num_workers: int | None = None
    use_gpu: bool | None = None
    resources_per_worker: dict[str, float] | None = None
    storage_path: str | None = None
    #: GPUs per worker (fractional allowed); implies ``use_gpu``. With ``use_gpu`` and no value,
    #: workers share the cluster's GPUs when there are fewer GPUs than workers.
    gpus_per_worker: float | None = None

    def scaling(self) -> dict[str, Any]:
        fields = {"num_workers": self.num_workers, "use_gpu": self.use_gpu,
                  "resources_per_worker": self.resources_per_worker}
        return {k: v for k, v in fields.items() if v is not None}


@dataclass(frozen=True)
class Harness:
    """How the run is instrumented. The default instruments nothing (a plain patched run)."""

    events: bool = False
    seed: int | None = None
    max_steps: int | None = None
    standins: bool = False
    local_cluster: bool = False
    num_cpus: int | None = None
    check_checkpoint: bool = False
    pickle_warn_mb: float = 5.0
    same_sampler: bool = False

    @property
    def instrumented(self) -> bool:
        return bool(self.events or self.seed is not None or self.max_steps or self.standins or self.check_checkpoint)


@dataclass
class FitRecord:
    metrics: dict[str, Any] | None = None
    checkpoint: str | None = None
    path: str | None = None
    error: str | None = None
    wall_s: float = 0.0
    checkpoint_load: dict[str, Any] | None = None


@dataclass
class Summary:
    script: str
    argv: list[str]
    fits: list[FitRecord] = field(default_factory=list)
    error: str | None = None
    error_traceback: str | None = None
    wall_s: float = 0.0
    framework: str | None = None
    tally: ev.Tally = field(default_factory=ev.Tally)

    @property
    def ok(self) -> bool:
        return self.error is None and all(f.error is None for f in self.fits)

    def to_dict(self) -> dict[str, Any]:
        last = self.fits[-1] if self.fits else FitRecord()
        tally = self.tally
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
            "error_traceback": self.error_traceback,
            "worker_errors": tally.errors,
            "wall_s": round(self.wall_s, 2),
            "framework": self.framework,
            "checkpoint_load": last.checkpoint_load,
            "pickled": tally.pickled,
            "warnings": tally.warnings,
            **tally.figures(),
            "losses": {str(rank): series for rank, series in sorted(tally.losses.items())},
            "fits": [dataclasses.asdict(f) for f in self.fits],
        }


def _json_safe(value: Any) -> Any:
    """Metrics often hold numpy scalars; anything else unknown becomes its repr."""
    item = getattr(value, "item", None)
    return item() if callable(item) else repr(value)


class Driver:
    """The driver's side of an instrumented run: events in, the tally, the worker sink."""

    def __init__(self, harness: Harness, settings: dict[str, Any], tally: ev.Tally) -> None:
        self.harness = harness
        self.settings = settings
        self.tally = tally
        self.sink = None
        self.cluster_reported = False
        self.lock = threading.Lock()

    def emit(self, event: dict[str, Any]) -> None:
        if event.get("kind") == "flush":
            return
        with self.lock:
            self.tally.add(event)
            if self.harness.events:
                try:
                    ev.write(event)
                except OSError:
                    pass

    def driver_event(self, kind: str, **fields: Any) -> None:
        self.emit({"kind": kind, "rank": -1, "t": time.time(), **fields})

    def ensure_sink(self):
        import ray

        if self.sink is None:
            self.sink = ray.remote(num_cpus=0)(instrument.EventSink).remote()
        return self.sink

    def drain(self) -> None:
        import ray

        if self.sink is None:
            return
        try:
            for event in ray.get(self.sink.drain.remote(), timeout=30):
                self.emit(event)
        except Exception:
            pass

    @contextlib.contextmanager
    def polling(self, interval_s: float = 0.25) -> Iterator[None]:
        stop = threading.Event()

        def loop() -> None:
            while not stop.wait(interval_s):
                self.drain()

        thread = threading.Thread(target=loop, name="migrate-events", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(timeout=10)
            self.drain()


def _ensure_ray() -> None:
    import ray

    if not ray.is_initialized():
        ray.init()


def _cluster_gpus() -> float:
    import ray

    _ensure_ray()
    return float(ray.cluster_resources().get("GPU", 0))


def gpu_share(num_workers: int, gpus: float) -> float | None:
    """GPUs per worker so that ``num_workers`` fit on ``gpus``: None for one (or more) each."""
    if gpus <= 0 or gpus >= num_workers:
        return None
    per_gpu = math.ceil(num_workers / gpus)
    return math.floor(10_000 / per_gpu) / 10_000


@contextlib.contextmanager
def patched_torch_trainer(
    overrides: Overrides, fits: list[FitRecord], driver: Driver | None = None
) -> Iterator[None]:
    """Swap ``ray.train.torch.TorchTrainer`` for a subclass, so ``isinstance`` checks still hold."""
    import ray.train
    import ray.train.torch

    local_runs.trim_train_runs()  # on a cluster of this machine alone (its environment says so)
    original = ray.train.torch.TorchTrainer

    class RecordingTorchTrainer(original):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            scaling = kwargs.get("scaling_config") or ray.train.ScalingConfig()
            changes = overrides.scaling()
            use_gpu = True if overrides.gpus_per_worker is not None else changes.get("use_gpu", scaling.use_gpu)
            resources = dict(changes.get("resources_per_worker", scaling.resources_per_worker) or {}) or None
            if use_gpu is False and resources and "GPU" in resources:
                resources = {k: v for k, v in resources.items() if k != "GPU"} or None
            share = overrides.gpus_per_worker
            if use_gpu and share is None and overrides.use_gpu:
                share = gpu_share(changes.get("num_workers", scaling.num_workers) or 1, _cluster_gpus())
            if use_gpu and share is not None:
                resources = {**(resources or {}), "GPU": share}
                changes["use_gpu"] = True
                if share < 1:  # NCCL refuses two ranks on one GPU; gloo shares it
                    torch_config = kwargs.get("torch_config") or ray.train.torch.TorchConfig()
                    kwargs["torch_config"] = dataclasses.replace(torch_config, backend="gloo")
            if resources != scaling.resources_per_worker:
                changes["resources_per_worker"] = resources
            if changes:
                kwargs["scaling_config"] = dataclasses.replace(scaling, **changes)
            if overrides.storage_path is not None:
                run = kwargs.get("run_config") or ray.train.RunConfig()
                kwargs["run_config"] = dataclasses.replace(run, storage_path=overrides.storage_path)
            super().__init__(*args, **kwargs)

        def fit(self):  # type: ignore[no-untyped-def]
            record = FitRecord()
            fits.append(record)
            start = time.monotonic()
            try:
                if driver is None:
                    result = super().fit()
                else:
                    result = self._instrumented_fit(driver)
            except BaseException as exc:
                record.error = f"{type(exc).__name__}: {exc}"
                raise
            finally:
                record.wall_s = round(time.monotonic() - start, 2)
            record.metrics = result.metrics
            record.checkpoint = result.checkpoint.path if result.checkpoint else None
            record.path = result.path
            record.error = f"{type(result.error).__name__}: {result.error}" if result.error else None
            if driver is not None and driver.harness.check_checkpoint:
                record.checkpoint_load = load_checkpoint(result, driver.tally, driver.settings.get("framework"))
            return result

        def _instrumented_fit(self, driver: Driver):  # type: ignore[no-untyped-def]
            import ray
            from ray import cloudpickle

            _ensure_ray()
            if not driver.cluster_reported:
                driver.cluster_reported = True
                resources = ray.cluster_resources()
                driver.driver_event("cluster_up", cpus=resources.get("CPU", 0), gpus=resources.get("GPU", 0),
                                    address=ray.get_runtime_context().gcs_address)
            scaling = self.scaling_config
            if scaling.use_gpu and not ray.cluster_resources().get("GPU") and driver.harness.local_cluster:
                raise RuntimeError(
                    "the script asks for GPU workers (use_gpu=True), but this machine has no GPU: "
                    "run it with --cpu (or on a cluster with GPUs, with --address)"
                )
            function = self.train_loop_per_worker
            for module in (instrument, sys.modules.get("migrator.runtime.standins")):
                if module is not None:  # workers need no `migrate` installed
                    cloudpickle.register_pickle_by_value(module)
            sizes = {"function_bytes": len(cloudpickle.dumps(function)),
                     "config_bytes": len(cloudpickle.dumps(self.train_loop_config))}
            limit = driver.harness.pickle_warn_mb * 1024**2
            driver.driver_event("pickled", function=getattr(function, "__name__", "train_func"), limit_bytes=int(limit), **sizes)
            if sizes["function_bytes"] + sizes["config_bytes"] > limit:
                driver.driver_event("warning", message=(
                    f"the train function and its config pickle to {(sizes['function_bytes'] + sizes['config_bytes']) / 1024**2:.1f} MiB "
                    f"(over {driver.harness.pickle_warn_mb:g} MiB): something large is captured; build it inside the function"))
            settings = {**driver.settings, "sink": driver.ensure_sink()}
            self.train_loop_per_worker = instrument.wrap(function, settings)
            resources = scaling._resources_per_worker_not_none
            driver.driver_event("fit_start", num_workers=scaling.num_workers, use_gpu=bool(scaling.use_gpu),
                                resources_per_worker=resources,
                                backend=getattr(getattr(self, "backend_config", None), "backend", None)
                                or ("nccl" if scaling.use_gpu else "gloo"))
            try:
                with driver.polling():
                    return super().fit()
            finally:
                self.train_loop_per_worker = function
                driver.driver_event("fit_end")

    RecordingTorchTrainer.__name__ = RecordingTorchTrainer.__qualname__ = "TorchTrainer"
    ray.train.torch.TorchTrainer = RecordingTorchTrainer
    try:
        yield
    finally:
        ray.train.torch.TorchTrainer = original


# -- checkpoints ----------------------------------------------------------------------------------
def load_checkpoint(result: Any, tally: ev.Tally, framework: str | None) -> dict[str, Any]:
    """Load the model back from the checkpoint the run reported, the way its framework does."""
    checkpoint = getattr(result, "checkpoint", None)
    if checkpoint is None:
        return {"ok": False, "how": None, "error": "the run reported no checkpoint"}
    try:
        with checkpoint.as_directory() as folder:
            how = _load_from(folder, tally, framework)
        return {"ok": True, "how": how, "error": None}
    except Exception as exc:  # the verdict says why
        return {"ok": False, "how": None, "error": f"{type(exc).__name__}: {exc}"[:2000]}


def _load_from(folder: str, tally: ev.Tally, framework: str | None) -> str:
    hf = os.path.join(folder, "checkpoint")
    if os.path.isfile(os.path.join(hf, "config.json")):
        import transformers

        with open(os.path.join(hf, "config.json"), encoding="utf-8") as f:
            architectures = json.load(f).get("architectures") or []
        cls = getattr(transformers, architectures[0], None) if architectures else None
        cls = cls or transformers.AutoModel
        cls.from_pretrained(hf)
        return f"{cls.__name__}.from_pretrained"
    ckpt = os.path.join(folder, "checkpoint.ckpt")
    if os.path.isfile(ckpt):
        cls = _lightning_module_class(tally)
        why = "the LightningModule class was not found on the driver"
        if cls is not None:
            try:
                cls.load_from_checkpoint(ckpt, map_location="cpu")
                return f"{cls.__name__}.load_from_checkpoint"
            except TypeError as exc:
                if "required" not in str(exc):
                    raise
                # The module saved no hyperparameters: load_from_checkpoint needs its __init__
                # arguments, which only the script knows. The weights themselves must still load.
                why = f"{cls.__name__}.load_from_checkpoint needs its __init__ arguments ({exc}); call save_hyperparameters() to make it self-contained"
        import torch

        state = torch.load(ckpt, map_location="cpu", weights_only=False)
        if not state.get("state_dict"):
            raise ValueError("checkpoint.ckpt holds no state_dict")
        return f"torch.load: a state_dict of {len(state['state_dict'])} tensors ({why})"
    return _load_any(folder)


def _lightning_module_class(tally: ev.Tally):
    found = tally.module_class
    if not found:
        return None
    for name in (found.get("module"), "__main__"):
        module = sys.modules.get(name or "")
        obj: Any = module
        for part in found.get("qualname", "").split("."):
            obj = getattr(obj, part, None)
        if isinstance(obj, type) and hasattr(obj, "load_from_checkpoint"):
            return obj
    return None


def _load_any(folder: str) -> str:
    loaded = []
    for root, _, files in os.walk(folder):
        for name in sorted(files):
            path = os.path.join(root, name)
            if name.endswith(".safetensors"):
                from safetensors.torch import load_file

                load_file(path)
                loaded.append(name)
            elif name.endswith((".pt", ".pth", ".bin", ".ckpt")):
                import torch

                torch.load(path, map_location="cpu", weights_only=False)
                loaded.append(name)
    if not loaded:
        raise FileNotFoundError(f"no model file (.safetensors, .pt, .pth, .bin, .ckpt) in {folder}")
    return "loaded " + ", ".join(loaded[:4])


# -- the local cluster ----------------------------------------------------------------------------
@contextlib.contextmanager
def local_cluster_defaults(harness: Harness) -> Iterator[str | None]:
    """Make ``ray.init()`` (the script's, or the automatic one) start a fresh private cluster."""
    if not harness.local_cluster:
        yield None
        return
    with private_local_ray(harness.num_cpus) as temp_dir:
        yield temp_dir


@contextlib.contextmanager
def private_local_ray(num_cpus: int | None = None) -> Iterator[str]:
    """``ray.init()`` with no address, in this process, starts a fresh cluster on loopback only,
    never someone else's found in /tmp/ray; it is shut down on exit. (The original's process
    uses it too, for an AIR-era script's Ray Data.)"""
    # Ray resolves 127.0.0.1 to the machine's address, except where it runs local-only clusters
    # (macOS, Windows); this makes it do so here, so every address it hands out is loopback.
    # Read when ray is first imported.
    if "ray" not in sys.modules:
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    import ray

    temp_dir = tempfile.mkdtemp(prefix="migrate-ray-", dir="/tmp")  # short: Ray's sockets live below it
    original = ray.init

    def init(address: str | None = None, **kwargs: Any):
        if address is None and not os.environ.get("RAY_ADDRESS"):
            address = "local"  # never attach to someone else's cluster found in /tmp/ray
            kwargs.setdefault("include_dashboard", False)
            kwargs.setdefault("_node_ip_address", "127.0.0.1")
            kwargs.setdefault("num_cpus", num_cpus or max(os.cpu_count() or 1, 4))
            kwargs.setdefault("_temp_dir", temp_dir)
        return original(address, **kwargs)

    ray.init = init
    try:
        yield temp_dir
    finally:
        ray.init = original
        with contextlib.suppress(Exception):
            ray.shutdown()
        shutil.rmtree(temp_dir, ignore_errors=True)


# -- running --------------------------------------------------------------------------------------
def run_script(
    script: str, args: Sequence[str] = (), overrides: Overrides = Overrides(), harness: Harness = Harness()
) -> Summary:
    """Run SCRIPT as ``python SCRIPT ARGS`` would, but in this process; never raises for its errors."""
    script = os.path.abspath(script)
    summary = Summary(script=script, argv=list(args))
    try:
        with open(script, encoding="utf-8") as f:
            source = f.read()
    except (OSError, UnicodeDecodeError) as exc:
        summary.error = f"cannot read {script}: {exc}"
        return summary
    summary.framework = preflight.framework(source)
    mismatch = preflight.lightning_mismatch(source)
    if mismatch:  # before any worker starts
        summary.error = f"LightningPackageMismatch: {mismatch}"
        return summary
    driver = None
    if harness.local_cluster:
        local_runs.apply_here()  # a cluster of this machine alone: Ray Train's local settings
        if "ray" not in sys.modules:
            os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    if harness.instrumented:
        settings: dict[str, Any] = {
            "seed": harness.seed, "max_steps": harness.max_steps, "framework": summary.framework,
            "frameworks": sorted(preflight.frameworks(source)), "same_sampler": harness.same_sampler,
        }
        if harness.standins:
            from migrator.runtime import standins

            settings["standins"] = standins.config_from(source)
            settings["standins_install"] = standins.install
        driver = Driver(harness, settings, summary.tally)
    saved_argv, saved_path = sys.argv[:], sys.path[:]
    sys.argv = [script, *args]
    sys.path.insert(0, os.path.dirname(script))  # as `python SCRIPT` does, for sibling imports
    start = time.monotonic()
    try:
        with local_cluster_defaults(harness), patched_torch_trainer(overrides, summary.fits, driver):
            if driver is not None:
                if harness.seed is not None:
                    instrument.seed_everything(harness.seed)
                instrument.install(driver.settings, sink=None, record=False)
            runpy.run_path(script, run_name="__main__")
    except SystemExit as exc:
        if exc.code not in (None, 0):
            summary.error = f"SystemExit: {exc.code}"
    except BaseException as exc:  # the summary must be written whatever the script did
        traceback.print_exc()
        summary.error = f"{type(exc).__name__}: {exc}"
        summary.error_traceback = instrument.format_error(exc)
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
    parser.add_argument("--gpus-per-worker", type=float, help="GPUs per worker (fractional allowed; implies --gpu).")
    parser.add_argument("--resources-per-worker", type=json.loads, metavar="JSON",
                        help='Override ScalingConfig(resources_per_worker=...), e.g. \'{"CPU": 2}\'.')
    parser.add_argument("--storage-path", help="Override RunConfig(storage_path=...).")
    parser.add_argument("--summary", metavar="PATH", help="Write the JSON summary here.")
    parser.add_argument("--events", action="store_true", help="Print progress events as marked lines on stdout.")
    parser.add_argument("--seed", type=int, help="Seed random, numpy and torch on the driver and every worker.")
    parser.add_argument("--max-steps", type=int, help="Cap training at this many optimizer steps.")
    parser.add_argument("--offline-standins", action="store_true", help="Tiny stand-ins for hub models, datasets, metrics.")
    parser.add_argument("--local-cluster", action="store_true", help="Start a fresh embedded local cluster for the run.")
    parser.add_argument("--num-cpus", type=int, help="Logical CPUs of the local cluster (default: max(cores, 4)).")
    parser.add_argument("--check-checkpoint", action="store_true", help="Load the reported checkpoint back after fit().")
    parser.add_argument("--same-sampler", action="store_true",
                        help="On one worker, Lightning keeps the script's sampler (for comparing with the original).")
    parser.add_argument("--pickle-warn-mb", type=float, default=5.0, help="Warn when the pickled train function is larger.")
    return parser.parse_args(ours), theirs


def main(argv: Sequence[str] | None = None) -> int:
    options, script_args = _parse(sys.argv[1:] if argv is None else argv)
    overrides = Overrides(options.num_workers, options.use_gpu, options.resources_per_worker, options.storage_path,
                          options.gpus_per_worker)
    harness = Harness(
        events=options.events, seed=options.seed, max_steps=options.max_steps, standins=options.offline_standins,
        local_cluster=options.local_cluster, num_cpus=options.num_cpus, check_checkpoint=options.check_checkpoint,
        pickle_warn_mb=options.pickle_warn_mb, same_sampler=options.same_sampler,
    )
    summary = run_script(options.script, script_args, overrides, harness)
    data = summary.to_dict()
    if options.summary:
        with open(options.summary, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, default=_json_safe)
            f.write("\n")
    if options.events:
        ev.write({"kind": "summary", "summary": json.loads(json.dumps(data, default=_json_safe))})
    print(f"launch: {len(summary.fits)} fit call(s), {'ok' if summary.ok else 'failed'}, "
          f"{summary.wall_s:.1f} s", file=sys.stderr)
    return 0 if summary.ok else 1


if __name__ == "__main__":
    from migrator.runtime.warm import finish

    finish(main())  # a fresh interpreter's teardown of torch and the rest: 1.5-1.8 CPU-s, for nothing
