"""Ray's retired trainers, emulated on one worker: how ``migrate validate`` runs an AIR-era original.

An original written for ``AccelerateTrainer``, ``TransformersTrainer`` (``HuggingFaceTrainer``) or
``ray.air``'s session and dict checkpoints cannot run on today's Ray: the classes are gone. Without
a run of the original there is no loss to compare the conversion with. On one worker those
trainers did something simple, and this module does it in the original's own process:

* ``AccelerateTrainer`` / ``TorchTrainer``: ``train_loop_per_worker(train_loop_config)`` is called,
  once, as rank 0 of a world of 1, with ``accelerate_config``'s mixed precision and gradient
  accumulation in the environment, where ``Accelerator()`` reads them (the settings of one
  process; the conversion moves them into ``Accelerator(...)``);
* ``TransformersTrainer`` / ``HuggingFaceTrainer``: ``trainer_init_per_worker(train, eval, **config)``
  builds the ``transformers.Trainer`` and its ``train()`` runs; Ray Data inputs are handed over as
  Hugging Face ``datasets`` (the retired trainers fed Ray Data batches instead, so the order of the
  examples differs from a conversion's, and validate does not compare losses step by step);
* ``LightningTrainer``: ``LightningConfigBuilder``'s module is built and fit by a ``pl.Trainer`` of
  its arguments (no DDP in one process), on ``iter_torch_batches(**datasets_iter_config)`` of the
  ``train`` and ``val`` datasets, as the conversion does;
* ``session.report`` / ``ray.train.report`` record metrics and checkpoints (``Checkpoint.from_dict``
  and ``to_dict`` included) and ``get_checkpoint`` returns ``resume_from_checkpoint``;
  ``get_dataset_shard`` returns the whole dataset (one worker holds every shard);
* ``fit()`` returns a result with ``metrics``, ``checkpoint`` and ``metrics_dataframe``.

The import paths come from ``codemods/data/retired_ray_trainers.toml``, the table the conversion
itself reads; a class it names with no emulation here is what ``unsupported`` returns. Nothing here runs
in ``migrate convert``; only the original's process (``migrator.runtime.original``) installs it.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import os
import pickle
import shutil
import sys
import tempfile
import tomllib
import types
from pathlib import Path
from typing import Any, Callable, Iterator

TABLE = Path(__file__).resolve().parents[2] / "codemods" / "data" / "retired_ray_trainers.toml"
#: The codemod that converts a class, mapped to how its class is emulated here.
KINDS = {"accelerate_trainer_legacy": "loop", "transformers_trainer_legacy": "transformers",
         "lightning_trainer_legacy": "lightning"}
NOTES = {
    "loop": "AccelerateTrainer/TorchTrainer called train_loop_per_worker on each worker; the original ran it once "
            "in its own process as rank 0 of 1, with accelerate_config's mixed precision and gradient accumulation",
    "transformers": "TransformersTrainer built the Trainer with trainer_init_per_worker and trained it; the original "
                    "did so in its own process, with Ray Data inputs handed over as Hugging Face datasets",
    "lightning": "LightningTrainer built the module and pl.Trainer from LightningConfigBuilder's config and fit them "
                 "on Ray Data batches; the original did so in its own process, without DDP",
}
#: accelerate_config keys that change one process's training, and where Accelerate reads them.
ACCELERATE_ENV = {"mixed_precision": "ACCELERATE_MIXED_PRECISION",
                  "gradient_accumulation_steps": "ACCELERATE_GRADIENT_ACCUMULATION_STEPS"}
SESSION_FUNCTIONS = ("report", "get_checkpoint", "get_dataset_shard", "get_world_rank", "get_world_size",
                     "get_local_rank", "get_local_world_size", "get_node_rank", "get_trial_name", "get_trial_id",
                     "get_trial_dir", "get_experiment_name", "get_trial_resources")


def retired_classes() -> dict[str, str]:
    """``"module.Class"`` -> its codemod, for every retired trainer path."""
    with TABLE.open("rb") as f:
        return {path: entry["codemod"] for path, entry in tomllib.load(f)["trainers"].items()}


def used(source: str) -> dict[str, str]:
    """The retired trainer classes the script names, each with how it would be emulated (or None)."""
    found = {}
    for path, codemod in retired_classes().items():
        name = path.rsplit(".", 1)[1]
        if name in source:
            found[name] = KINDS.get(codemod)
    return found


def trainers_used(source: str) -> dict[str, str]:
    """The retired trainers the script names that ran on an emulation here, each with its kind
    (what validate's notes describe; a config builder is part of its trainer's emulation)."""
    return {name: kind for name, kind in used(source).items() if kind and name not in BUILDERS}


def unsupported(source: str) -> str | None:
    """The first retired class the script uses that has no emulation here, or None."""
    missing = sorted(name for name, kind in used(source).items() if kind is None)
    return ", ".join(missing) or None


# -- the AIR session and checkpoints -------------------------------------------------------------
class Checkpoint:
    """``ray.air.Checkpoint`` (Ray 2.0-2.6): a dict or a directory."""

    def __init__(self, data: dict | None = None, path: str | None = None) -> None:
        self._data, self.path = data, path

    @classmethod
    def from_dict(cls, data: dict) -> "Checkpoint":
        return cls(data=dict(data))

    @classmethod
    def from_directory(cls, path: str | os.PathLike) -> "Checkpoint":
        # Copied: the caller may report from a temporary directory that is gone after report().
        keep = tempfile.mkdtemp(prefix="migrate-air-checkpoint-")
        shutil.copytree(path, keep, dirs_exist_ok=True)
        return cls(path=keep)

    @classmethod
    def from_checkpoint(cls, other: Any) -> "Checkpoint":
        return other

    def to_dict(self) -> dict:
        if self._data is not None:
            return dict(self._data)
        with open(os.path.join(self.path, "dict_checkpoint.pkl"), "rb") as f:
            return pickle.load(f)

    def to_directory(self, path: str | None = None) -> str:
        path = path or tempfile.mkdtemp(prefix="migrate-air-checkpoint-")
        if self._data is not None:
            os.makedirs(path, exist_ok=True)
            with open(os.path.join(path, "dict_checkpoint.pkl"), "wb") as f:
                pickle.dump(self._data, f)
        else:
            shutil.copytree(self.path, path, dirs_exist_ok=True)
        return path

    @contextlib.contextmanager
    def as_directory(self) -> Iterator[str]:
        yield self.path if self._data is None else self.to_directory()


class Session:
    """One worker's view of a retired trainer's run: rank 0 of 1."""

    def __init__(self, datasets: dict | None, checkpoint: Any, name: str) -> None:
        self.datasets, self.checkpoint, self.name = dict(datasets or {}), checkpoint, name
        self.reports: list[dict] = []
        self.last_checkpoint = checkpoint

    def report(self, metrics: dict, *, checkpoint: Any = None, **_: Any) -> None:
        self.reports.append(dict(metrics))
        if checkpoint is not None:
            self.last_checkpoint = checkpoint

    def get_checkpoint(self) -> Any:
        return self.checkpoint

    def get_dataset_shard(self, name: str | None = None) -> Any:
        dataset = self.datasets.get(name or "train")
        return dataset.iterator() if hasattr(dataset, "iterator") else dataset

    def get_world_rank(self) -> int:
        return 0

    get_local_rank = get_node_rank = get_world_rank

    def get_world_size(self) -> int:
        return 1

    get_local_world_size = get_world_size

    def get_trial_name(self) -> str:
        return self.name

    get_trial_id = get_experiment_name = get_trial_name

    def get_trial_dir(self) -> str:
        return os.getcwd()

    def get_trial_resources(self) -> dict:
        return {}

    # ray.train.get_context() (Ray 2.7+) answers the same questions.
    def get_context(self) -> "Session":
        return self


_current: list[Session] = [Session(None, None, "migrate")]
_seed: list[int] = []


def _session_call(name: str) -> Callable:
    def call(*args: Any, **kwargs: Any) -> Any:
        if name == "report":
            # Through ray.train.report, which the runtime's hooks wrap to record the report.
            import ray.train

            return ray.train.report(*args, **kwargs)
        return getattr(_current[-1], name)(*args, **kwargs)

    call.__name__ = name
    return call


class Result:
    """What ``fit()`` returned: the last metrics and checkpoint reported."""

    def __init__(self, session: Session) -> None:
        self._reports = session.reports
        self.metrics = session.reports[-1] if session.reports else {}
        self.checkpoint = session.last_checkpoint
        self.error = None
        self.path = self.log_dir = os.getcwd()
        self.best_checkpoints = [(self.checkpoint, self.metrics)] if self.checkpoint is not None else []

    @property
    def metrics_dataframe(self):
        import pandas

        return pandas.DataFrame(self._reports)


class _RetiredTrainer:
    def __init__(self, train_loop_per_worker: Callable | None = None, *, train_loop_config: dict | None = None,
                 trainer_init_per_worker: Callable | None = None, trainer_init_config: dict | None = None,
                 datasets: dict | None = None, resume_from_checkpoint: Any = None, run_config: Any = None,
                 accelerate_config: Any = None, **_: Any) -> None:
        self.loop = train_loop_per_worker or trainer_init_per_worker
        self.config = train_loop_config if train_loop_per_worker is not None else trainer_init_config
        self.datasets, self.checkpoint = datasets, resume_from_checkpoint
        self.name = getattr(run_config, "name", None) or type(self).__name__
        self.accelerate_config = accelerate_config if isinstance(accelerate_config, dict) else {}

    def fit(self) -> Result:
        from migrator.runtime import instrument

        session = Session(self.datasets, self.checkpoint, self.name)
        _current.append(session)
        if _seed:  # as a Ray worker is seeded before the train function runs
            instrument.seed_everything(_seed[0])
        try:
            self._train(session)
        finally:
            _current.pop()
        return Result(session)

    def _train(self, session: Session) -> None:
        takes_config = any(p.default is inspect.Parameter.empty for p in inspect.signature(self.loop).parameters.values())
        with _accelerate_environment(self.accelerate_config):
            self.loop(dict(self.config or {})) if takes_config else self.loop()


@contextlib.contextmanager
def _accelerate_environment(config: dict) -> Iterator[None]:
    """The settings of ``accelerate_config`` that matter to one CPU process, where a plain
    ``Accelerator()`` reads them, as ``accelerate launch`` (and so AccelerateTrainer) set them."""
    wanted = {ACCELERATE_ENV[key]: str(value) for key, value in config.items() if key in ACCELERATE_ENV}
    saved = {key: os.environ.get(key) for key in wanted}
    os.environ.update(wanted)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class _RetiredTransformersTrainer(_RetiredTrainer):
    def _train(self, session: Session) -> None:
        data = {name: _as_hf_dataset(ds) for name, ds in session.datasets.items()}
        trainer = self.loop(data.get("train"), data.get("evaluation"), **dict(self.config or {}))
        trainer.train()


class LightningConfigBuilder:
    """``ray.train.lightning.LightningConfigBuilder`` (Ray 2.4-2.6): the chain that named the module,
    the Trainer's arguments and ``fit``'s, built into a dict for ``LightningTrainer``."""

    def __init__(self) -> None:
        self._config: dict[str, Any] = {"module": None, "module_init": {}, "trainer_init": {}, "fit_params": {}}

    def module(self, cls: type | None = None, **kwargs: Any) -> "LightningConfigBuilder":
        self._config["module"] = cls
        self._config["module_init"].update(kwargs)
        return self

    def trainer(self, **kwargs: Any) -> "LightningConfigBuilder":
        self._config["trainer_init"].update(kwargs)
        return self

    def fit_params(self, **kwargs: Any) -> "LightningConfigBuilder":
        self._config["fit_params"].update(kwargs)
        return self

    def strategy(self, *_: Any, **__: Any) -> "LightningConfigBuilder":
        return self  # DDP's settings: nothing to do in one process

    checkpointing = strategy  # Ray's checkpoint retention: nothing that changes the training

    def build(self) -> dict[str, Any]:
        return dict(self._config)


class _RetiredLightningTrainer(_RetiredTrainer):
    def __init__(self, lightning_config: dict | None = None, *, datasets_iter_config: dict | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.lightning_config = dict(lightning_config or {})
        self.iter_config = dict(datasets_iter_config or {})

    def _train(self, session: Session) -> None:
        config = self.lightning_config
        module = config["module"](**config["module_init"])
        package = _lightning_package(type(module))
        trainer = package.Trainer(**config["trainer_init"])
        loaders = {}
        for key, name in (("train_dataloaders", "train"), ("val_dataloaders", "val")):
            if name in session.datasets:  # as the conversion does: Ray Data batches, the script's batch size
                loaders[key] = session.get_dataset_shard(name).iter_torch_batches(**self.iter_config)
        trainer.fit(module, **loaders, **config["fit_params"])


#: Retired classes in the table that are not trainers, and their emulations.
BUILDERS = {"LightningConfigBuilder": LightningConfigBuilder}


def _lightning_package(cls: type) -> Any:
    """``pytorch_lightning`` or ``lightning.pytorch``: whichever the module class derives from."""
    for package in ("pytorch_lightning", "lightning.pytorch"):
        found = sys.modules.get(package)
        if found is not None and issubclass(cls, found.LightningModule):
            return found
    return importlib.import_module("lightning.pytorch")


def _as_hf_dataset(dataset: Any) -> Any:
    """A Ray Dataset's rows as a Hugging Face ``Dataset`` (anything else is passed on as it is)."""
    if not hasattr(dataset, "take_all"):
        return dataset
    import datasets

    return datasets.Dataset.from_list(dataset.take_all())


def _record_report(metrics: dict | None = None, *args: Any, checkpoint: Any = None, **kwargs: Any) -> None:
    """``ray.train.report`` inside an emulated trainer."""
    _current[-1].report(metrics or {}, checkpoint=checkpoint)


# -- installing -----------------------------------------------------------------------------------
def install(seed: int | None = None) -> None:
    """Make the retired names importable again, as their one-worker emulations, in this process."""
    import ray.train

    _seed[:] = [seed] if seed is not None else []
    classes = {"loop": _RetiredTrainer, "transformers": _RetiredTransformersTrainer,
               "lightning": _RetiredLightningTrainer}
    for path, codemod in retired_classes().items():
        kind = KINDS.get(codemod)
        if kind is not None:
            module, name = path.rsplit(".", 1)
            emulation = BUILDERS.get(name) or type(name, (classes[kind],), {})
            setattr(_module(module), name, emulation)
    _module("ray.train.torch").TorchTrainer = type("TorchTrainer", (_RetiredTrainer,), {})
    session = importlib.import_module("ray.air.session")
    for name in SESSION_FUNCTIONS:
        setattr(session, name, _session_call(name))
    _module("ray.air").session = session
    for module in ("ray.air", "ray.air.checkpoint"):
        _module(module).Checkpoint = Checkpoint
    # Ray 2.7-2.8 scripts call ray.train's functions inside the retired trainers.
    ray.train.report = _record_report
    for name in ("get_checkpoint", "get_dataset_shard", "get_context"):
        setattr(ray.train, name, _session_call(name))


def _module(name: str) -> types.ModuleType:
    """``name`` imported, or an empty module put in its place (and on its parent) if it is gone."""
    try:
        return importlib.import_module(name)
    except ImportError:
        module = types.ModuleType(name)
        module.__path__ = []  # a package: submodules may be stubbed below it
        sys.modules[name] = module
        if "." in name:
            parent, child = name.rsplit(".", 1)
            setattr(_module(parent), child, module)
        return module
