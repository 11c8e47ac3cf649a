"""What the user asked for, handed to every codemod as keyword arguments."""

from __future__ import annotations

from dataclasses import dataclass, replace

DEFAULT_NUM_WORKERS = 2


@dataclass(frozen=True)
class ConvertOptions:
    """Settings that shape the generated code (not which files are converted)."""

    #: ``ScalingConfig(num_workers=...)`` in the generated launch code. ``None``: the worker count
    #: the script itself asks for where a codemod can read it (Lightning's devices), else 2.
    num_workers: int | None = None
    #: ``ScalingConfig(use_gpu=...)`` in the generated launch code. ``None``: a GPU per worker,
    #: unless the script itself says it trains on CPU (``gpu()``).
    use_gpu: bool | None = None
    #: When set, the launch code gets ``run_config=RunConfig(storage_path=...)``.
    storage_path: str | None = None
    #: ``None`` keeps the script's Lightning imports; else ``"lightning"`` or ``"pytorch_lightning"``.
    lightning_package: str | None = None

    def workers(self, intended: int | None = None) -> int:
        """The worker count for ``ScalingConfig``: the user's, else the script's own, else 2."""
        return self.num_workers or intended or DEFAULT_NUM_WORKERS

    def gpu(self, script_on_cpu: bool = False) -> bool:
        """``use_gpu`` for ``ScalingConfig``: the user's choice, else what the script trains on."""
        return self.use_gpu if self.use_gpu is not None else not script_on_cpu

    def for_script(self, script_on_cpu: bool) -> ConvertOptions:
        """These options with ``use_gpu`` settled for a script that does (or does not) train on CPU."""
        return replace(self, use_gpu=self.gpu(script_on_cpu))
