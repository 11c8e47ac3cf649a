"""lightning_moved_imports alone: imports of paths Lightning 2.0 removed point at the 2.x homes."""

from __future__ import annotations

import pytest

from codemods.lightning_moved_imports import LightningMovedImports
from tests.codemods.helpers import check_noop, check_transformed, follow_ups

C = LightningMovedImports


@pytest.mark.parametrize("package", ["pytorch_lightning", "lightning.pytorch"])
def test_removed_modules_become_their_2x_homes(package):
    check_transformed(
        C,
        f"""\
        from {package}.core.lightning import LightningModule
        from {package}.utilities.cli import LightningCLI, SaveConfigCallback
        """,
        f"""\
        from {package}.core.module import LightningModule
        from {package}.cli import LightningCLI, SaveConfigCallback
        """,
    )


def test_a_renamed_class_keeps_the_name_the_file_uses():
    check_transformed(
        C,
        """\
        from pytorch_lightning.loggers import LightningLoggerBase, TensorBoardLogger as TB
        from pytorch_lightning.loggers.base import LightningLoggerBase as Base, rank_zero_experiment
        """,
        """\
        from pytorch_lightning.loggers import TensorBoardLogger as TB
        from pytorch_lightning.loggers import Logger as LightningLoggerBase
        from pytorch_lightning.loggers import Logger as Base
        from pytorch_lightning.loggers.logger import rank_zero_experiment
        """,
    )


def test_current_paths_are_left_alone():
    check_noop(C, "from pytorch_lightning.loggers import TensorBoardLogger\nfrom lightning.pytorch.cli import LightningCLI\n")


def test_a_name_without_a_2x_home_is_a_follow_up_and_the_line_stays():
    result = check_noop(C, "from pytorch_lightning.utilities.cli import LightningCLI, MODEL_REGISTRY\n")
    assert any("MODEL_REGISTRY" in f and "no 2.x home in Lightning" in f for f in follow_ups(result))


def test_removed_paths_through_attributes_or_plain_imports_are_follow_ups():
    result = check_noop(C, """\
        import pytorch_lightning as pl
        import pytorch_lightning.utilities.distributed
        base = pl.loggers.LightningLoggerBase
        """)
    found = follow_ups(result)
    assert any(f.startswith("2:") and "utilities.distributed" in f for f in found)
    assert any(f.startswith("3:") and "pytorch_lightning.loggers.Logger" in f for f in found)


def test_lightning_metrics_uses_are_follow_ups_naming_torchmetrics():
    result = check_noop(C, """\
        import pytorch_lightning as pl
        from pytorch_lightning.metrics.functional import accuracy
        metric = pl.metrics.Accuracy()
        """)
    found = follow_ups(result)
    assert any(f.startswith("2:") and "torchmetrics.functional" in f for f in found)
    assert any(f.startswith("3:") and "torchmetrics" in f for f in found)
