"""The single registry of codemods, found by walking the ``codemods`` package.

No hand-kept list: a module in ``codemods/`` that defines one ``MigrationCodemod`` subclass is a
codemod, and its id is the module's name. Modules whose names start with ``_`` hold shared helpers.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import lru_cache

from migrator.codemod import MigrationCodemod


@lru_cache(maxsize=1)
def all_codemods() -> tuple[type[MigrationCodemod], ...]:
    import codemods

    found: list[type[MigrationCodemod]] = []
    for info in pkgutil.iter_modules(codemods.__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"codemods.{info.name}")
        classes = [
            obj
            for obj in vars(module).values()
            if isinstance(obj, type)
            and issubclass(obj, MigrationCodemod)
            and obj.__module__ == module.__name__
        ]
        if len(classes) != 1:
            raise RuntimeError(f"codemods/{info.name}.py must define exactly one codemod, found {len(classes)}")
        found.append(classes[0])
    return tuple(sorted(found, key=lambda cls: (cls.ORDER, cls.id())))


def codemod_ids() -> list[str]:
    return [cls.id() for cls in all_codemods()]


def select(only: tuple[str, ...] = (), skip: tuple[str, ...] = ()) -> tuple[type[MigrationCodemod], ...]:
    """The codemods to run, in order. Unknown ids raise ``KeyError`` naming them."""
    known = set(codemod_ids())
    unknown = sorted((set(only) | set(skip)) - known)
    if unknown:
        raise KeyError(", ".join(unknown))
    return tuple(
        cls for cls in all_codemods() if (not only or cls.id() in only) and cls.id() not in skip
    )
