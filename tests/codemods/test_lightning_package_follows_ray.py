"""lightning_package_follows_ray: pytorch_lightning imports of a Ray Lightning script choose as Ray does."""

from __future__ import annotations

import ast

from codemods.lightning_package_follows_ray import LightningPackageFollowsRay as C
from migrator.options import ConvertOptions
from migrator.runtime.preflight import lightning_mismatch
from tests.codemods.helpers import check_noop, check_transformed, follow_ups
from tests.golden import convert_text

RAY = "from ray.train.lightning import RayDDPStrategy, prepare_trainer\n"
COMMENT = "# As Ray's Lightning integration does: lightning.pytorch where it is installed, else pytorch_lightning.\n"


def test_a_block_of_imports_becomes_one_try() -> None:
    check_transformed(
        C,
        "import os\nimport pytorch_lightning as pl\nimport torch\nfrom pytorch_lightning.callbacks import ModelCheckpoint\n" + RAY,
        "import os\n" + COMMENT + "try:\n    import lightning.pytorch as pl\n"
        "    from lightning.pytorch.callbacks import ModelCheckpoint\nexcept ModuleNotFoundError:\n"
        "    import pytorch_lightning as pl\n    from pytorch_lightning.callbacks import ModelCheckpoint\nimport torch\n" + RAY,
    )


def test_bare_imports_bind_the_same_name() -> None:
    result = check_transformed(
        C,
        "import pytorch_lightning\nimport pytorch_lightning.loggers\n" + RAY,
        COMMENT + "try:\n    import lightning.pytorch as pytorch_lightning\n    import lightning.pytorch.loggers\n"
        "    import lightning.pytorch as pytorch_lightning\nexcept ModuleNotFoundError:\n"
        "    import pytorch_lightning\n    import pytorch_lightning.loggers\n" + RAY,
    )
    assert not result.follow_ups


def test_imports_inside_functions_follow_too() -> None:
    check_transformed(
        C,
        RAY + "def train_func(config):\n    from pytorch_lightning import Trainer\n    return Trainer\n",
        RAY + "def train_func(config):\n    " + COMMENT + "    try:\n        from lightning.pytorch import Trainer\n"
        "    except ModuleNotFoundError:\n        from pytorch_lightning import Trainer\n    return Trainer\n",
    )


def test_left_alone_without_ray_or_with_the_package_named() -> None:
    check_noop(C, "import pytorch_lightning as pl\nclass M(pl.LightningModule):\n    pass\n")
    check_noop(C, "import pytorch_lightning as pl\nfrom ray.train.lightning import LightningTrainer\n")  # retired, unconverted
    source = "import pytorch_lightning as pl\n" + RAY
    assert convert_text(source, ConvertOptions(lightning_package="pytorch_lightning")).text("output") == source


def test_a_mixed_line_leaves_every_import_and_says_why() -> None:
    result = check_noop(C, "import torch, pytorch_lightning as pl\nfrom pytorch_lightning import Trainer\n" + RAY)
    assert follow_ups(result) == [
        "1: this line imports pytorch_lightning with other modules, so no Lightning import of this file was changed: put the "
        "pytorch_lightning import on a line of its own and convert again (Ray binds to lightning.pytorch where the "
        "lightning package is installed)"
    ]


def test_the_result_passes_the_runtime_preflight_in_both_environments() -> None:
    output = check_transformed(
        C, "import pytorch_lightning as pl\n" + RAY,
        COMMENT + "try:\n    import lightning.pytorch as pl\nexcept ModuleNotFoundError:\n    import pytorch_lightning as pl\n" + RAY,
    ).text("output")
    ast.parse(output)
    assert lightning_mismatch(output, lightning_installed=True) is None
    assert lightning_mismatch(output, lightning_installed=False) is None
    assert lightning_mismatch("import pytorch_lightning as pl\n" + RAY, lightning_installed=True) is not None
