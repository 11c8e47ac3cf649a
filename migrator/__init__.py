"""migrate: move training scripts onto Ray Train's TorchTrainer.

The package is split so that the convert path stays light: ``engine``, ``files``, ``report``,
``diffs`` and ``cli`` import only libcst and click. Anything that needs torch, transformers or
ray lives under ``migrator.runtime`` and is imported lazily by the commands that run scripts.
"""

__version__ = "0.1.0"
