"""The single registry of codemods, found by walking the ``codemods`` package.

No hand-kept list: a module in ``codemods/`` that defines one ``MigrationCodemod`` subclass is a
codemod, and its id is the module's name. Modules whose names start with ``_`` hold shared helpers.

Two views of the same registry:

* ``index()`` reads each codemod's ``DESCRIPTION``, ``TRIGGERS``, ``ORDER`` (and optional ``MODULES``) from its source
  with ``ast``, importing nothing. The CLI uses it for ``migrate list`` and for the byte
  pre-filter, so a pre-commit run over files with nothing to migrate never imports LibCST.
* ``all_codemods()`` imports the classes; ``CodemodInfo.load()`` imports one on demand.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path


@dataclass(frozen=True)
class CodemodInfo:
    id: str
    DESCRIPTION: str
    TRIGGERS: tuple[bytes, ...]
    ORDER: int
    MODULES: tuple[bytes, ...] = ()

    def load(self):
        return _load_class(self.id)


def _package_dir() -> Path:
    spec = importlib.util.find_spec("codemods")
    assert spec is not None and spec.submodule_search_locations, "the codemods package is missing"
    return Path(list(spec.submodule_search_locations)[0])


def _module_names() -> list[str]:
    return sorted(info.name for info in pkgutil.iter_modules([str(_package_dir())]) if not info.name.startswith("_"))


_CLASS = re.compile(r"^class \w+.*:[ \t]*$", re.M)
_FIRST_METHOD = re.compile(r"^[ \t]+(?:@|def |async def )", re.M)
_CONSTANTS = ("DESCRIPTION", "TRIGGERS", "ORDER", "MODULES")


def _class_head(source: str) -> str | None:
    """The module's first class, cut before its first method: what the constants are read from.

    Parsing only that is ten times cheaper than the whole module, and ``index()`` runs on every
    ``migrate convert``. ``None`` when the cut cannot be trusted (no class, a first class without
    ``TRIGGERS``, or a constant named after the first method), and the whole module is parsed.
    """
    found = _CLASS.search(source)
    if found is None:
        return None
    method = _FIRST_METHOD.search(source, found.end())
    if method is None:
        return None
    head, rest = source[found.start():method.start()], source[method.start():]
    if "TRIGGERS" not in head:  # a helper class first, not the codemod
        return None
    if any(re.search(rf"^[ \t]+{name}[ \t]*[:=]", rest, re.M) for name in _CONSTANTS):
        return None
    return head


def _class_constants(source: str, module: str) -> CodemodInfo:
    values: dict[str, object] = {"DESCRIPTION": "", "TRIGGERS": (), "ORDER": 50, "MODULES": ()}
    head = _class_head(source)
    try:
        tree = ast.parse(head if head is not None else source)
    except SyntaxError:  # a cut that is not whole statements after all
        tree = ast.parse(source)
    for node in tree.body:
        if not isinstance(node, ast.ClassDef):
            continue
        for stmt in node.body:
            if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
                name = stmt.targets[0].id
                if name in values:
                    try:
                        values[name] = ast.literal_eval(stmt.value)
                    except ValueError:
                        # Computed, not literal: ask the class itself (this imports it, so
                        # codemods keep these three literal to stay on the light path).
                        values[name] = getattr(_load_class(module), name)
    return CodemodInfo(
        module, str(values["DESCRIPTION"]), tuple(values["TRIGGERS"]), int(values["ORDER"]), tuple(values["MODULES"])
    )


@lru_cache(maxsize=1)
def index() -> tuple[CodemodInfo, ...]:
    """Every codemod's id, description, triggers and order, read without importing it."""
    folder = _package_dir()
    infos = [_class_constants((folder / f"{name}.py").read_text(encoding="utf-8"), name) for name in _module_names()]
    return tuple(sorted(infos, key=lambda info: (info.ORDER, info.id)))


@lru_cache(maxsize=None)
def _load_class(module_name: str):
    from migrator.libcst_imports import import_codemod_framework

    import_codemod_framework()  # before any codemod's module imports it
    from migrator.codemod import MigrationCodemod

    module = importlib.import_module(f"codemods.{module_name}")
    classes = [
        obj
        for obj in vars(module).values()
        if isinstance(obj, type) and issubclass(obj, MigrationCodemod) and obj.__module__ == module.__name__
    ]
    if len(classes) != 1:
        raise RuntimeError(f"codemods/{module_name}.py must define exactly one codemod, found {len(classes)}")
    return classes[0]


@lru_cache(maxsize=1)
def all_codemods() -> tuple:
    """The codemod classes, imported, in the order they run."""
    return tuple(info.load() for info in index())


def codemod_ids() -> list[str]:
    return [info.id for info in index()]


def select(only: tuple[str, ...] = (), skip: tuple[str, ...] = ()) -> tuple[CodemodInfo, ...]:
    """The codemods to run, in order, as light records. Unknown ids raise ``KeyError`` naming them."""
    known = set(codemod_ids())
    unknown = sorted((set(only) | set(skip)) - known)
    if unknown:
        raise KeyError(", ".join(unknown))
    return tuple(info for info in index() if (not only or info.id in only) and info.id not in skip)
