"""A Ray Lightning script's ``pytorch_lightning`` imports follow the package Ray's integration binds to.

Lightning ships twice: ``lightning`` (``lightning.pytorch``) and ``pytorch_lightning``, with classes
that are not each other's. Ray's integration picks one when it is imported
(``ray.train.lightning._lightning_utils.import_lightning``): ``lightning.pytorch`` if that imports,
else ``pytorch_lightning``. A script that imports the other one hands its Trainer a ``RayDDPStrategy``
of a class the Trainer does not know, and fails at ``Trainer(...)`` with "invalid strategy name".
``pip install "migrate[runtime]"`` installs ``lightning``, so that is what a converted
``pytorch_lightning`` script met under plain ``python``.

This codemod makes the script choose exactly as Ray does, by the same test, so it runs both where
``lightning`` is installed and where only ``pytorch_lightning`` is. Before::

    import pytorch_lightning as pl
    from pytorch_lightning.callbacks import ModelCheckpoint
    from ray.train.lightning import RayDDPStrategy, prepare_trainer

After::

    # Ray's Lightning integration uses lightning.pytorch when it imports, else pytorch_lightning: so does this script.
    try:
        import lightning.pytorch as pl
        from lightning.pytorch.callbacks import ModelCheckpoint
    except ModuleNotFoundError:
        import pytorch_lightning as pl
        from pytorch_lightning.callbacks import ModelCheckpoint
    from ray.train.lightning import RayDDPStrategy, prepare_trainer

It runs after the Lightning conversions (``lightning_trainer``, ``lightning_trainer_legacy``), on
files that then use ``ray.train.lightning``, hand-written Ray scripts included. The names the script
binds do not change. ``--lightning-package`` (one package, named) turns it off.
"""

from __future__ import annotations

import libcst as cst
from libcst.codemod import SkipFile
from libcst.metadata import PositionProvider

from codemods import _lightning as lt
from migrator.codemod import MigrationCodemod


class LightningPackageFollowsRay(MigrationCodemod):
    DESCRIPTION = "pytorch_lightning imports of a Ray Lightning script follow the package Ray binds to (lightning.pytorch first)"
    TRIGGERS = (b"pytorch_lightning",)
    ORDER = 70
    METADATA_DEPENDENCIES = (PositionProvider,)

    def transform_module_impl(self, tree: cst.Module) -> cst.Module:
        if self.options.lightning_package is not None or not lt.uses_ray_lightning(tree):
            raise SkipFile("no Ray Lightning script, or --lightning-package names the package")
        rewriter = lt.FollowRayImports()
        result = tree.visit(rewriter)
        for node in rewriter.mixed:  # half the imports on each package would be worse than none moved
            self.follow_up(node, "this line imports pytorch_lightning with other modules, so no Lightning import of this file "
                           "was changed: put the pytorch_lightning import on a line of its own and convert again (Ray binds "
                           "to lightning.pytorch where the lightning package is installed)")
        if rewriter.mixed:
            return tree
        if not rewriter.changed:
            raise SkipFile("no pytorch_lightning import to change")
        for node in rewriter.changed:
            self.change(node, "pytorch_lightning imports now try lightning.pytorch first, as Ray's Lightning integration "
                        "does: the script runs where `lightning` is installed and where only `pytorch_lightning` is")
        return result
