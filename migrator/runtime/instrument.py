"""Hooks inside the process that trains: seeding, per-step loss, step caps, worker events.

Installed at the start of the original script (``migrator.runtime.original``) and at the start
of the train function on every Ray worker (``wrap``), so both report the same things the same way:

* **Seeding**: ``random``, ``numpy`` and ``torch`` get the same seed in both places.
* **Per-step training loss**, from the highest-level hook that sees the step:
  Transformers ``Trainer.training_step`` (summed over gradient-accumulation micro-batches,
  numbered by ``state.global_step``); Lightning ``on_train_batch_end`` (``trainer.global_step``);
  else ``Accelerator.backward`` or, for plain PyTorch, ``Tensor.backward`` on a scalar (each call
  is a step, numbered from 1).
* **Same batches with one worker** (``same_sampler``, for ``migrate validate``): Lightning on a
  single worker keeps the script's own sampler instead of a ``DistributedSampler``, which
  shuffles with a seed of its own; with one worker it splits nothing anyway. Nor does its
  strategy seed again at set-up, which a one-device original never does.
* **Step caps** (``max_steps``): ``TrainingArguments.max_steps`` for Transformers, ``Trainer(
  max_steps=)`` for Lightning (both only ever lowered; Lightning also gets ``limit_train_batches``
  so the last step ends an epoch and validation and Ray's epoch-end report still happen). For Accelerate and plain loops a
  DataLoader that a backward pass was seen in is a *training* loader, and once ``max_steps``
  backward passes have run, training loaders stop yielding (later epochs see them empty), so the
  code after the loop (evaluation, ``ray.train.report``, saving) still runs. Ray Data iterators
  (``iter_torch_batches``) are not capped.

This module is shipped to Ray workers by value (``ray.cloudpickle.register_pickle_by_value``), so
workers need no ``migrate`` installed. It therefore keeps no module-level objects that cannot be
pickled: its state lives in a small module of its own in ``sys.modules``.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import os
import random
import socket
import sys
import time
import traceback
import types
from collections.abc import Mapping

STATE_MODULE = "_migrate_runtime_state"


def _state():
    state = sys.modules.get(STATE_MODULE)
    if state is None:
        state = types.ModuleType(STATE_MODULE)
        state.emit = None
        state.rank = 0
        state.max_steps = None
        state.depth = 0  # > 0 while a framework-level hook owns the current step
        state.iter_depth = 0  # > 0 while an outer (capped) loader fetches from an inner one
        state.generic_steps = 0
        state.pending = []
        state.installed = set()
        state.training_loaders = set()
        state.world_size = 1
        state.same_sampler = False
        sys.modules[STATE_MODULE] = state
    return state


# -- events ---------------------------------------------------------------------------------------
def emit(kind: str, **fields) -> None:
    state = _state()
    if state.emit is None:
        return
    event = {"kind": kind, "rank": state.rank, "t": time.time(), **fields}
    try:
        state.emit(event)
    except Exception:  # reporting must never break training
        pass


def _scalar(value) -> float | None:
    if value is None:
        return None
    try:
        if hasattr(value, "detach"):
            value = value.detach().float().mean().item()
        return float(value)
    except (TypeError, ValueError, RuntimeError):
        return None


def _clean_metrics(metrics) -> dict:
    out = {}
    for key, value in dict(metrics or {}).items():
        number = _scalar(value) if not isinstance(value, (str, bool)) else None
        if number is not None:
            out[str(key)] = number
        elif isinstance(value, (str, bool, int)):
            out[str(key)] = value
    return out


def _step(step: int, loss: float | None) -> None:
    emit("step", step=int(step), loss=loss if loss is None or math.isfinite(loss) else repr(loss))


def _check_split(framework: str, processes) -> None:
    """Say so when the framework runs fewer processes than Ray started workers (each worker then
    trains a model of its own), once per process, from rank 0."""
    state = _state()
    if getattr(state, "split_reported", False):
        return
    state.split_reported = True
    try:
        processes = int(processes)
    except (TypeError, ValueError):
        return
    emit("split", framework=framework, processes=processes, world_size=state.world_size)
    if state.rank == 0 and state.world_size > 1 and processes != state.world_size:
        hint = {
            "accelerate": "on CPU workers Accelerate needs Accelerator(cpu=True) or ACCELERATE_USE_CPU=true",
            "transformers": "on CPU workers the Trainer needs use_cpu=True or ACCELERATE_USE_CPU=true",
        }.get(framework, "")
        emit("warning", message=(
            f"{framework} sees {processes} process(es) but Ray started {state.world_size} workers: they do not train "
            f"together (no gradient synchronisation, and the DataLoaders {framework} prepares are not split)"
            + (f"; {hint}" if hint else "")))


def _generic_step(loss: float | None) -> None:
    state = _state()
    state.generic_steps += 1
    _step(state.generic_steps, loss)


# -- seeding --------------------------------------------------------------------------------------
def seed_everything(seed: int) -> None:
    """Seed ``random``, ``numpy`` and ``torch`` (all devices) alike, wherever this runs."""
    random.seed(seed)
    try:
        import numpy

        numpy.random.seed(seed % 2**32)
    except ImportError:
        pass
    try:
        import torch

        torch.manual_seed(seed)
    except ImportError:
        pass


# -- installing -----------------------------------------------------------------------------------
def install(settings: Mapping, sink=None, rank: int = 0, record: bool = True) -> None:
    """Install the hooks ``settings`` ask for; ``sink(event)`` receives the events.

    ``record=False`` (the Ray driver) installs only the step caps and the stand-ins: the
    driver of a converted script builds things but does not train.
    """
    state = _state()
    state.emit = sink
    state.rank = rank
    state.max_steps = settings.get("max_steps") or None
    state.same_sampler = bool(settings.get("same_sampler"))
    wanted = set(settings.get("frameworks") or ())
    if settings.get("standins") is not None and settings.get("standins_install") is not None:
        # The function travels with the settings (by value), so workers need no migrate.
        settings["standins_install"](settings["standins"])
    if "transformers" in wanted:
        _once("transformers", _hook_transformers, record)
    for package in ("lightning", "pytorch_lightning"):
        if package in wanted:
            _once(package, _hook_lightning, package, record)
    if "accelerate" in wanted and record:
        _once("accelerate", _hook_accelerate)
    if record and _importable("torch"):
        _once("torch", _hook_torch_backward)
    if state.max_steps and _importable("torch"):
        _once("loaders", _hook_dataloaders)
    if record and "ray.train" in sys.modules:
        _once("ray.train.report", _hook_ray_report)


def _importable(name: str) -> bool:
    return name in sys.modules or importlib.util.find_spec(name) is not None


def _once(key: str, hook, *args) -> None:
    state = _state()
    if key in state.installed:
        return
    state.installed.add(key)
    try:
        hook(*args)
    except ImportError:
        pass


def _hook_transformers(record: bool) -> None:
    import transformers

    arguments = transformers.TrainingArguments
    original_post_init = arguments.__post_init__

    def __post_init__(self):
        cap = _state().max_steps
        if cap and not (0 < (self.max_steps or 0) <= cap):
            self.max_steps = cap
        _full_precision_without_gpu(self)
        return original_post_init(self)

    arguments.__post_init__ = __post_init__
    if not record:
        return

    class MigrateProgressCallback(transformers.TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            emit("train_begin", total_steps=state.max_steps, framework="transformers")
            if _state().world_size > 1:
                _check_split("transformers", args.world_size)

        def on_step_end(self, args, state, control, **kwargs):
            pending = _state().pending
            loss = sum(pending) if pending and None not in pending else None
            pending.clear()
            _step(state.global_step, loss)

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs:
                emit("metrics", metrics=_clean_metrics(logs), step=state.global_step)

    trainer = transformers.Trainer
    original_init = trainer.__init__
    original_training_step = trainer.training_step

    def __init__(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        self.add_callback(MigrateProgressCallback())

    def training_step(self, *args, **kwargs):
        state = _state()
        state.depth += 1
        try:
            loss = original_training_step(self, *args, **kwargs)
        finally:
            state.depth -= 1
        state.pending.append(_scalar(loss))
        return loss

    trainer.__init__ = __init__
    trainer.training_step = training_step


def _keep_random_state_at_setup(root: str) -> None:
    """Lightning's distributed strategies seed again when they set up (``reset_seed()``, from the
    ``PL_GLOBAL_SEED`` that ``seed_everything`` leaves), after the script has built its model and
    data; a one-device original never does. On the one worker a validation compares with the
    original, setting up keeps the random state as the script left it, so that the batches and
    dropout draws match (with several workers Lightning's own behaviour stays)."""
    for name in ("ddp", "fsdp", "deepspeed", "model_parallel"):
        strategy = sys.modules.get(f"{root}.strategies.{name}")
        if strategy is not None and hasattr(strategy, "reset_seed"):
            strategy.reset_seed = _no_reseed


def _no_reseed() -> None:
    pass


def _full_precision_without_gpu(arguments) -> None:
    """Mixed precision asked for where no GPU is visible: train in fp32, and say so.

    trl's ``SFTConfig`` turns ``bf16`` on by default, and ``TrainingArguments`` then refuses to
    start without a GPU ("Your setup doesn't support bf16/gpu"), so a script written for a GPU box
    could not be run or validated on CPU workers. Both sides of a validation go through this hook,
    so the original and the converted script still compare like with like. ``use_cpu=True`` with
    ``bf16=True`` is a CPU bf16 run the user chose: left alone."""
    if getattr(arguments, "use_cpu", False) or not (getattr(arguments, "bf16", False) or getattr(arguments, "fp16", False)):
        return
    try:
        import torch

        if torch.cuda.is_available() or (hasattr(torch, "xpu") and torch.xpu.is_available()):
            return
    except Exception:
        return
    asked = "bf16" if arguments.bf16 else "fp16"
    arguments.bf16 = arguments.fp16 = False
    emit("warning", message=f"the script asks for {asked} mixed precision, which needs a GPU and none is visible "
                            f"here: migrate trains it in fp32 (on a GPU cluster it keeps {asked})")


def _hook_lightning(package: str, record: bool) -> None:
    module = importlib.import_module("lightning.pytorch" if package == "lightning" else "pytorch_lightning")

    class MigrateProgressCallback(module.Callback):
        def on_train_start(self, trainer, pl_module):
            total = trainer.max_steps if trainer.max_steps and trainer.max_steps > 0 else None
            if total is None:
                try:
                    estimated = trainer.estimated_stepping_batches
                    total = int(estimated) if math.isfinite(estimated) else None
                except Exception:
                    total = None
            if _state().world_size > 1:
                _check_split("lightning", trainer.world_size)
            cls = type(pl_module)
            emit("train_begin", total_steps=total, framework="lightning",
                 module_class={"module": cls.__module__, "qualname": cls.__qualname__, "package": package})

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            _state().depth += 1

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            state = _state()
            state.depth = max(0, state.depth - 1)
            loss = outputs.get("loss") if isinstance(outputs, Mapping) else outputs
            _step(trainer.global_step, _scalar(loss))

        def on_train_epoch_end(self, trainer, pl_module):
            emit("metrics", metrics=_clean_metrics(trainer.callback_metrics), step=trainer.global_step)

        def on_validation_end(self, trainer, pl_module):
            emit("metrics", metrics=_clean_metrics(trainer.callback_metrics), step=trainer.global_step)

    trainer = module.Trainer
    original_init = trainer.__init__

    def __init__(self, *args, **kwargs):
        cap = _state().max_steps
        if cap:
            current = kwargs.get("max_steps")
            if current is None or current < 0 or current > cap:
                kwargs["max_steps"] = cap
            # End the first epoch on the last step, so that what runs at an epoch's end (validation,
            # on_train_epoch_end, Ray's RayTrainReportCallback) still runs: max_steps alone stops
            # mid-epoch and skips it.
            accumulate = kwargs.get("accumulate_grad_batches", 1)
            batches = kwargs["max_steps"] * (accumulate if isinstance(accumulate, int) and accumulate > 0 else 1)
            limit = kwargs.get("limit_train_batches")
            if limit is None or limit == 1.0 or (isinstance(limit, int) and limit > batches):
                kwargs["limit_train_batches"] = batches
        state = _state()
        if state.same_sampler and state.world_size == 1:
            # One worker splits nothing: keep the script's own sampler, so batches come in the
            # same order as in the original (a DistributedSampler shuffles with its own seed).
            kwargs["use_distributed_sampler"] = False
            _keep_random_state_at_setup(module.__name__)
        if record:
            callbacks = kwargs.get("callbacks")
            if callbacks is None:
                callbacks = []
            elif not isinstance(callbacks, (list, tuple)):
                callbacks = [callbacks]
            kwargs["callbacks"] = [*callbacks, MigrateProgressCallback()]
        original_init(self, *args, **kwargs)

    trainer.__init__ = __init__


def _hook_accelerate() -> None:
    import accelerate

    original_backward = accelerate.Accelerator.backward

    def backward(self, loss, **kwargs):
        state = _state()
        if state.depth > 0:
            return original_backward(self, loss, **kwargs)
        value = _scalar(loss)
        state.depth += 1
        try:
            result = original_backward(self, loss, **kwargs)
        finally:
            state.depth -= 1
        _generic_step(value)
        return result

    accelerate.Accelerator.backward = backward
    original_init = accelerate.Accelerator.__init__

    def __init__(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        if _state().world_size > 1:
            _check_split("accelerate", self.num_processes)

    accelerate.Accelerator.__init__ = __init__


def _hook_torch_backward() -> None:
    import torch

    original_backward = torch.Tensor.backward

    def backward(self, *args, **kwargs):
        state = _state()
        if state.depth > 0 or self.numel() != 1:
            return original_backward(self, *args, **kwargs)
        value = _scalar(self)
        state.depth += 1
        try:
            result = original_backward(self, *args, **kwargs)
        finally:
            state.depth -= 1
        _generic_step(value)
        return result

    torch.Tensor.backward = backward


class _CappedIterator:
    """Delegates to a loader's iterator; stops a *training* loader once the cap is reached."""

    def __init__(self, inner, loader) -> None:
        self._inner = inner
        self._loader = loader
        self._steps_at_yield = None
        self._fetched = False

    def __iter__(self):
        return self

    def __len__(self):
        return len(self._inner)

    def __getattr__(self, name):
        if name.startswith("_") and name in ("_inner", "_loader", "_steps_at_yield", "_fetched"):
            raise AttributeError(name)
        return getattr(self._inner, name)

    def __next__(self):
        state = _state()
        key = id(self._loader)
        if self._steps_at_yield is not None and state.generic_steps > self._steps_at_yield:
            state.training_loaders.add(key)
        cap = state.max_steps
        if cap and key in state.training_loaders and state.generic_steps >= cap:
            self._stop()
            raise StopIteration
        state.iter_depth += 1
        try:
            batch = next(self._inner)
        finally:
            state.iter_depth -= 1
        self._fetched = True
        self._steps_at_yield = state.generic_steps
        return batch

    def _stop(self) -> None:
        close = getattr(self._inner, "close", None)
        if isinstance(self._inner, types.GeneratorType) and close is not None:
            close()
            # Accelerate's loaders unregister themselves only when they run to the end.
            end = getattr(self._loader, "end", None)
            if self._fetched and callable(end):
                try:
                    end()
                except Exception:
                    pass


def _hook_dataloaders() -> None:
    import torch.utils.data

    def capped(original):
        def __iter__(self):
            inner = original(self)
            if _state().iter_depth > 0:  # fetched from by an outer loader that is capped already
                return inner
            return _CappedIterator(inner, self)

        return __iter__

    torch.utils.data.DataLoader.__iter__ = capped(torch.utils.data.DataLoader.__iter__)
    # Ray's prepare_data_loader wrapper fetches one batch ahead: capped only at the inner loader,
    # a plain loop would run one step past the cap. Capped where the loop fetches from it.
    ray_utils = sys.modules.get("ray.train.torch.train_loop_utils")
    wrapped = getattr(ray_utils, "_WrappedDataLoader", None)
    if wrapped is not None and "__iter__" in vars(wrapped):
        wrapped.__iter__ = capped(wrapped.__iter__)
    try:
        from accelerate import data_loader
    except ImportError:
        return
    for name in ("DataLoaderShard", "DataLoaderDispatcher"):
        cls = getattr(data_loader, name, None)
        if cls is not None and "__iter__" in vars(cls):
            cls.__iter__ = capped(cls.__iter__)


def _hook_ray_report() -> None:
    import ray.train

    original_report = ray.train.report

    def report(*args, **kwargs):
        metrics = kwargs.get("metrics", args[0] if args else None)
        checkpoint = kwargs.get("checkpoint", args[1] if len(args) > 1 else None)
        emit("report", metrics=_clean_metrics(metrics), checkpoint=checkpoint is not None)
        return original_report(*args, **kwargs)

    ray.train.report = report


# -- the worker side of a Ray run -----------------------------------------------------------------
def wrap(fn, settings: dict):
    """``fn`` wrapped to install the hooks on the worker first; same number of parameters."""
    import inspect

    required = [
        p for p in inspect.signature(fn).parameters.values()
        if p.default is inspect.Parameter.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    if required:
        def train_func_under_migrate(config):
            return run_worker(fn, settings, (config,))
    else:
        def train_func_under_migrate():
            return run_worker(fn, settings, ())
    train_func_under_migrate.__name__ = getattr(fn, "__name__", "train_func")
    return train_func_under_migrate


def run_worker(fn, settings: dict, args: tuple):
    import ray
    import ray.train

    context = ray.train.get_context()
    rank = context.get_world_rank()
    sink = settings.get("sink")

    def send(event):
        if sink is not None:
            sink.put.remote(event)

    _state().world_size = context.get_world_size()
    install(settings, send, rank=rank, record=True)
    emit("worker_up", world_size=context.get_world_size(), local_rank=context.get_local_rank(),
         host=socket.gethostname(), pid=os.getpid(), device=_device())
    if settings.get("seed") is not None:
        seed_everything(int(settings["seed"]))
    try:
        return fn(*args)
    except BaseException as exc:
        emit("error", type=type(exc).__name__, message=str(exc)[:4000], traceback=format_error(exc))
        raise
    finally:
        emit("worker_done")
        if sink is not None:
            try:  # every event sent above has arrived once this returns (one caller, in order)
                ray.get(sink.put.remote({"kind": "flush", "rank": rank}), timeout=30)
            except Exception:
                pass


def _device() -> str | None:
    try:
        from ray.train.torch import get_device

        return str(get_device())
    except Exception:
        return None


def format_error(exc: BaseException, limit: int = 40) -> str:
    """The traceback without the harness's own frames, at most ``limit`` lines from the end."""
    lines = traceback.format_exception(type(exc), exc, exc.__traceback__)
    text = "".join(entry for entry in lines if "migrator/runtime/instrument.py" not in entry)
    tail = text.splitlines()
    return "\n".join(tail[-limit:])


class EventSink:
    """Collects worker events for the driver to drain; ``ray.remote(num_cpus=0)`` makes it an actor."""

    def __init__(self) -> None:
        self.events = []

    def put(self, event) -> None:
        self.events.append(event)

    def drain(self):
        events, self.events = self.events, []
        return events
