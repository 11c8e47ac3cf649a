"""What the user asked for, handed to every codemod as keyword arguments."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ConvertOptions:
    """Settings that shape the generated code (not which files are converted)."""

    #: ``ScalingConfig(num_workers=...)`` in the generated launch code.
    num_workers: int = 2
    #: ``ScalingConfig(use_gpu=...)`` in the generated launch code.
    use_gpu: bool = True
    #: When set, the launch code gets ``run_config=RunConfig(storage_path=...)``.
    storage_path: str | None = None
    #: ``None`` keeps the script's Lightning imports; else ``"lightning"`` or ``"pytorch_lightning"``.
    lightning_package: str | None = None
