"""What can be told about a script from its source before anything runs (``ast`` only).

Which framework trains it, whether its Lightning imports match the package Ray's Lightning
integration binds to, whether it needs a retired Ray API or a GPU, and which string keys it
reads (the columns an offline stand-in dataset must have). Standard library only, so ``migrate
run`` can refuse a doomed script before a single Ray process starts.
"""

from __future__ import annotations

import ast
import importlib.util
from dataclasses import dataclass

#: Retired in Ray 2.7-2.9 (see shared RAY-FACTS.md): importing them fails on a current Ray.
RETIRED_RAY_NAMES = {
    "ray.train.huggingface": {"TransformersTrainer", "AccelerateTrainer", "HuggingFaceTrainer"},
    "ray.train.huggingface.transformers": {"TransformersTrainer"},
    "ray.train.lightning": {"LightningTrainer", "LightningConfigBuilder"},
    "ray.air": {"Checkpoint", "session"},
    "ray.air.checkpoint": {"Checkpoint"},
    "ray.air.session": {"report", "get_checkpoint", "get_dataset_shard", "get_world_rank", "get_world_size"},
    "ray.air.config": {"DatasetConfig"},
}


@dataclass(frozen=True)
class Imports:
    modules: frozenset[str]
    #: (module, name) for every ``from module import name``.
    names: frozenset[tuple[str, str]]
    #: First line that imports each top-level package.
    lines: dict[str, int]


def imports(tree: ast.Module) -> Imports:
    modules: set[str] = set()
    names: set[tuple[str, str]] = set()
    lines: dict[str, int] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                modules.add(alias.name)
                lines.setdefault(alias.name.split(".")[0], node.lineno)
                if alias.name.startswith("lightning.pytorch"):
                    lines.setdefault("lightning.pytorch", node.lineno)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules.add(node.module)
            lines.setdefault(node.module.split(".")[0], node.lineno)
            for alias in node.names:
                names.add((node.module, alias.name))
    return Imports(frozenset(modules), frozenset(names), lines)


def _parse(source: str) -> ast.Module | None:
    try:
        return ast.parse(source)
    except (SyntaxError, ValueError):
        return None


def _uses_package(found: Imports, package: str) -> bool:
    return any(m == package or m.startswith(package + ".") for m in found.modules)


def frameworks(source: str) -> set[str]:
    """Every training library the script imports, among those the runtime instruments."""
    tree = _parse(source)
    if tree is None:
        return set()
    found = imports(tree)
    out = {p for p in ("transformers", "trl", "accelerate", "pytorch_lightning", "torch") if _uses_package(found, p)}
    if _uses_package(found, "lightning"):
        out.add("lightning")
    if "trl" in out:
        out.add("transformers")
    return out


def framework(source: str) -> str:
    """The library whose training loop runs the steps: transformers, lightning, accelerate or torch."""
    tree = _parse(source)
    if tree is None:
        return "torch"
    found = imports(tree)
    hf_trainer = any(
        (m.split(".")[0] in ("transformers", "trl") and n.endswith("Trainer")) for m, n in found.names
    ) or any(
        isinstance(node, ast.Attribute) and node.attr.endswith("Trainer") and isinstance(node.value, ast.Name)
        and node.value.id in ("transformers", "trl")
        for node in ast.walk(tree)
    )
    if hf_trainer:
        return "transformers"
    if _uses_package(found, "lightning") or _uses_package(found, "pytorch_lightning"):
        return "lightning"
    if _uses_package(found, "accelerate"):
        return "accelerate"
    return "torch"


def lightning_mismatch(source: str, lightning_installed: bool | None = None) -> str | None:
    """One line saying why Ray's ``prepare_trainer`` would reject the script's Lightning, or None.

    Ray's integration imports ``lightning.pytorch`` when the ``lightning`` package is installed,
    else ``pytorch_lightning``; a script importing the other one hands Ray a strategy of a class it
    does not recognise. Only scripts that use ``ray.train.lightning`` are concerned.
    """
    tree = _parse(source)
    if tree is None:
        return None
    found = imports(tree)
    if not _uses_package(found, "ray.train.lightning"):
        return None
    # Imports that choose as Ray does (``try: import lightning.pytorch ... except
    # ModuleNotFoundError: import pytorch_lightning ...``, what `migrate convert` writes) always match.
    followers = [node for node in ast.walk(tree) if _follows_ray(node)]
    for node in followers:
        node.body, node.handlers = [], []
    found = imports(tree)
    if lightning_installed is None:
        lightning_installed = importlib.util.find_spec("lightning") is not None
    ray_binds = "lightning" if lightning_installed else "pytorch_lightning"
    other = "pytorch_lightning" if lightning_installed else "lightning"
    if not _uses_package(found, other):
        return None
    line = found.lines.get(other, 0)
    state = "is" if lightning_installed else "is not"
    return (
        f"line {line}: the script imports {other}, but Ray's Lightning integration binds to "
        f"{'lightning.pytorch' if lightning_installed else 'pytorch_lightning'} here (the `lightning` package {state} "
        f"installed): convert with --lightning-package {ray_binds}, or install the package the script imports"
    )


def _follows_ray(node: ast.AST) -> bool:
    """A ``try`` importing ``lightning.pytorch`` whose ``except ModuleNotFoundError``/``ImportError``
    imports ``pytorch_lightning`` instead: the choice Ray's integration makes."""
    if not isinstance(node, ast.Try) or not node.handlers:
        return False

    def modules(statements) -> set[str]:
        out = set()
        for statement in statements:
            if isinstance(statement, ast.Import):
                out |= {a.name for a in statement.names}
            elif isinstance(statement, ast.ImportFrom) and statement.module and statement.level == 0:
                out.add(statement.module)
        return out

    caught = all(isinstance(h.type, ast.Name) and h.type.id in ("ModuleNotFoundError", "ImportError") for h in node.handlers)
    prefers = any(m == "lightning.pytorch" or m.startswith("lightning.pytorch.") for m in modules(node.body))
    falls_back = any(m.split(".")[0] == "pytorch_lightning" for h in node.handlers for m in modules(h.body))
    return caught and prefers and falls_back


def retired_ray_api(source: str) -> str | None:
    """The first retired Ray API the script imports (it cannot run on Ray 2.9+), or None."""
    tree = _parse(source)
    if tree is None:
        return None
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[:2] == ["ray", "ml"]:
            return f"line {node.lineno}: {node.module} (Ray 1.12-1.13, renamed ray.air in 2.0)"
        if isinstance(node, ast.ImportFrom) and node.module in RETIRED_RAY_NAMES:
            for alias in node.names:
                if alias.name in RETIRED_RAY_NAMES[node.module]:
                    return f"line {node.lineno}: {node.module}.{alias.name} (gone or inert in Ray 2.9+)"
        if isinstance(node, ast.Attribute) and node.attr in {"TransformersTrainer", "AccelerateTrainer", "LightningTrainer"}:
            return f"line {node.lineno}: {node.attr} (removed in Ray 2.9)"
    return None


def gpu_hint(source: str) -> str | None:
    """Where the script insists on CUDA (for explaining a failure on a machine without one)."""
    tree = _parse(source)
    if tree is None:
        return None
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "cuda":
            return f"line {node.lineno}: .cuda()"
        if isinstance(node, ast.Constant) and node.value in ("cuda", "gpu", "cuda:0"):
            return f"line {node.lineno}: {node.value!r}"
    return None


def uses_torch_trainer(source: str) -> bool:
    tree = _parse(source)
    if tree is None:
        return False
    return any(
        (isinstance(node, ast.Name) and node.id == "TorchTrainer")
        or (isinstance(node, ast.Attribute) and node.attr == "TorchTrainer")
        for node in ast.walk(tree)
    )


def string_keys(source: str) -> list[str]:
    """String constants the script subscripts with (``batch["text"]``) or names as columns
    (``remove_columns=[...]``, ``input_columns=...``, ``column_names``), in order of appearance."""
    tree = _parse(source)
    if tree is None:
        return []
    found: list[tuple[int, int, str]] = []

    def add(node: ast.AST) -> None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.isidentifier():
            found.append((node.lineno, node.col_offset, node.value))
        elif isinstance(node, (ast.List, ast.Tuple, ast.Set)):
            for element in node.elts:
                add(element)

    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript):
            add(node.slice)
        elif isinstance(node, ast.keyword) and node.arg in ("remove_columns", "input_columns", "column_names", "columns"):
            add(node.value)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in (
            "remove_columns", "select_columns", "rename_column", "rename_columns", "cast_column",
        ):
            for arg in node.args[:1]:
                add(arg)
    keys: list[str] = []
    for *_, value in sorted(found):
        if value not in keys:
            keys.append(value)
    return keys
