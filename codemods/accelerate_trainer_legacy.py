"""``AccelerateTrainer`` (Ray 2.3-2.6) to ``TorchTrainer``.

Implements "AccelerateTrainer 迁移指南" at the end of ray-train-accelerate-guide.zh.rst: the trainer
was a ``TorchTrainer`` that also applied an ``accelerate config`` file (or dict) on every worker.
``TorchTrainer`` runs the same function; what the config said moves into the ``Accelerator(...)``
call of that function where that is exact, and into a follow-up where it is not::

    # before
    def train_loop_per_worker(config):
        accelerator = Accelerator()
        ...

    trainer = AccelerateTrainer(
        train_loop_per_worker,
        train_loop_config={"lr": 1e-3},
        accelerate_config={"mixed_precision": "fp16", "num_processes": 4},
        scaling_config=ScalingConfig(num_workers=4, use_gpu=True),
    )

    # after
    def train_loop_per_worker(config):
        accelerator = Accelerator(mixed_precision="fp16")
        ...

    trainer = TorchTrainer(
        train_loop_per_worker,
        train_loop_config={"lr": 1e-3},
        scaling_config=ScalingConfig(num_workers=4, use_gpu=True),
    )

Keys Ray itself always set from ``ScalingConfig`` (``num_processes``, ``machine_rank``, ...) are
dropped, as ``AccelerateTrainer`` ignored them too; ``use_cpu: True`` becomes ``Accelerator(cpu=True)``,
without which the Accelerators of CPU workers do not train together.
"""

from __future__ import annotations

import libcst as cst

from codemods._legacy_trainers import (LegacyTrainerCodemod, drop_args, keyword_args, literal, retired_trainers)

ACCELERATOR = ("accelerate.Accelerator", "accelerate.accelerator.Accelerator")
#: Config keys that are ``Accelerator(...)`` arguments of the same name, with their defaults.
MOVED = {"mixed_precision": "no", "gradient_accumulation_steps": 1}
#: Keys AccelerateTrainer overrode from the ScalingConfig (its docstring lists them), or defaults.
IGNORED = {"num_machines", "num_processes", "machine_rank", "gpu_ids", "num_cpu_threads_per_process",
           "main_process_ip", "main_process_port", "same_network", "rdzv_backend",
           "main_training_function"}
#: ``use_cpu: True`` made every worker's ``Accelerator()`` a CPU process of one group (MULTI_CPU);
#: without ``cpu=True`` an Accelerator on a CPU Ray worker trains alone (DistributedType.NO, measured).
CPU_KEYS = ("use_cpu", "cpu")
HARMLESS = {"use_cpu": (False,), "cpu": (False,),
            "compute_environment": ("LOCAL_MACHINE",), "distributed_type": ("NO", "MULTI_CPU", "MULTI_GPU"),
            "downcast_bf16": ("no", False), "debug": (False,), "enable_cpu_affinity": (False,),
            "tpu_use_cluster": (False,), "tpu_use_sudo": (False,)}


class AccelerateTrainerLegacy(LegacyTrainerCodemod):
    DESCRIPTION = "AccelerateTrainer (Ray 2.3-2.6) to TorchTrainer, accelerate_config moved into Accelerator(...)."
    TRIGGERS = (b"AccelerateTrainer",)
    MODULES = (b"ray",)
    ORDER = 42
    LEGACY = retired_trainers("accelerate_trainer_legacy")  # every path it had: codemods/data/retired_ray_trainers.toml
    CONVERTED = ("AccelerateTrainer",)

    def plan(self, call: cst.Call) -> None:
        kwargs = keyword_args(call)
        first = call.args[0] if call.args and not call.args[0].keyword and not call.args[0].star else None
        loop = first or kwargs.get("train_loop_per_worker")
        config = kwargs.get("accelerate_config")
        args = drop_args(call.args, [config] if config else [])
        self.need_import("ray.train.torch", "TorchTrainer")
        self.replace_call(call, self.carry_over(call, call.with_changes(func=cst.Name("TorchTrainer"), args=args)))
        if config is None or literal(config.value) is None:
            self.change(call, "AccelerateTrainer -> TorchTrainer (without accelerate_config, AccelerateTrainer applied "
                        "Accelerate's default config file if there was one; TorchTrainer does not)")
            return
        where = self.code(loop.value) if loop else "the train function"
        entries = self.literal_dict(config.value)
        if entries is None:
            self.change(call, "AccelerateTrainer -> TorchTrainer; accelerate_config removed")
            self.follow_up(config, f"accelerate_config={self.code(config.value)} is no longer applied: pass its "
                           f"settings (mixed_precision, gradient accumulation, DeepSpeed/FSDP plugins) to the "
                           f"Accelerator(...) in {where}")
            return
        moved, rest = [], []
        for key, value in entries:
            if key in CPU_KEYS and literal(value) is True:
                moved.append(("cpu", value))
            elif key in MOVED and literal(value) != MOVED[key]:
                moved.append((key, value))
            elif key not in IGNORED and key not in MOVED and literal(value) not in HARMLESS.get(key, ()):
                rest.append(f"**{self.code(value)}" if key is None else f"{key}={self.code(value)}")
        done = self._move_into_accelerator(config, loop, moved, where) if moved else ""
        self.change(call, f"AccelerateTrainer -> TorchTrainer; accelerate_config removed{done}")
        if rest:
            self.follow_up(config, f"accelerate_config also said {', '.join(rest)}: TorchTrainer does not apply "
                           f"it; configure it on the Accelerator(...) in {where} (e.g. with a DeepSpeedPlugin or "
                           "FullyShardedDataParallelPlugin) or drop it")

    def _move_into_accelerator(self, config: cst.Arg, loop: cst.Arg | None, moved, where: str) -> str:
        """Add the moved settings to the one ``Accelerator(...)`` call of the train function."""
        func = self.function_def(loop.value) if loop else None
        found = self.calls_to(func, ACCELERATOR) if func is not None else []
        text = ", ".join(f"{k}={self.code(v)}" for k, v in moved)
        if len(found) != 1 or any(a.star for a in found[0].args):
            self.follow_up(config, f"accelerate_config said {text}: pass it to the Accelerator(...) in {where} "
                           "(it could not be moved there automatically)")
            return ""
        original = found[0]
        new = self._calls.get(original, original)
        present = keyword_args(new)
        added = []
        for key, value in moved:
            if key not in present:
                new = self.add_kwarg(original, new, key, self.code(value))
                added.append(f"{key}={self.code(value)}")
            elif self.code(present[key].value) != self.code(value):
                self.follow_up(present[key], f"accelerate_config said {key}={self.code(value)} but this "
                               f"Accelerator(...) passes {key}={self.code(present[key].value)}; the argument is kept")
        self.replace_call(original, new)
        return f"; moved {', '.join(added)} into Accelerator(...) in {where}" if added else ""
