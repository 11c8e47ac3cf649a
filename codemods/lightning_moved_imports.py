"""Rewrite imports of Lightning 1.x paths that 2.0 removed to where those names live in 2.x.

Scripts of the 1.x years import ``LightningModule`` from ``pytorch_lightning.core.lightning``,
``LightningCLI`` from ``pytorch_lightning.utilities.cli``, ``LightningLoggerBase`` from
``pytorch_lightning.loggers``, ``rank_zero_only`` from ``pytorch_lightning.utilities.distributed``: on
Lightning 2.x (what Ray Train's integration runs on) each of these lines raises ImportError before
anything trains. Runs first of the Lightning codemods (lowest ``ORDER``), so the others see 2.x names.
The moves are data: ``codemods/data/lightning_moved_imports.toml``.

Before::

    from pytorch_lightning.core.lightning import LightningModule
    from pytorch_lightning.loggers import LightningLoggerBase, TensorBoardLogger
    from pytorch_lightning.utilities.cli import LightningCLI

After::

    from pytorch_lightning.core.module import LightningModule
    from pytorch_lightning.loggers import TensorBoardLogger
    from pytorch_lightning.loggers import Logger as LightningLoggerBase
    from pytorch_lightning.utilities.cli import LightningCLI  ->  from pytorch_lightning.cli import LightningCLI

A renamed class is imported under the name the file already uses (``Logger as LightningLoggerBase``),
so no other line changes. The import line is edited in place (the same statement, another module):
nothing is added or removed that the import visitors would have to track. A name of a removed module
with no known 2.x home (``CALLBACK_REGISTRY``), ``import pytorch_lightning.core.lightning``, or a
removed path reached through an attribute (``pl.core.lightning.LightningModule``) gets a follow-up.
"""

from __future__ import annotations

import libcst as cst

from codemods._names import TableCodemod, load_table, spelled_names
from migrator.walks import nodes

TABLE = load_table("lightning_moved_imports")
MOVES: dict[str, dict] = TABLE["modules"]
PACKAGES = ("pytorch_lightning", "lightning.pytorch")


def _dotted(node: cst.BaseExpression | None) -> str:
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        return f"{_dotted(node.value)}.{node.attr.value}"
    return ""


def _split(module: str) -> tuple[str, str] | None:
    """(package, path under it) when ``module`` is a moved Lightning path."""
    for package in PACKAGES:
        if module.startswith(package + ".") and module[len(package) + 1:] in MOVES:
            return package, module[len(package) + 1:]
    return None


class LightningMovedImports(TableCodemod):
    DESCRIPTION = "Rewrite imports of Lightning 1.x paths 2.0 removed (core.lightning, utilities.cli, LightningLoggerBase...)."
    TRIGGERS = (b"pytorch_lightning", b"lightning")
    ORDER = 40

    def nothing_to_do(self, tree: cst.Module) -> bool:
        """No ``import`` of a moved module or ``import *`` from one, and no name of the file (its
        ``from`` imports' paths included) is a moved or removed name."""
        for imp in nodes(tree, (cst.Import, cst.ImportFrom)):
            if isinstance(imp, cst.Import):
                if any(_split(_dotted(alias.name)) for alias in imp.names):
                    return False
            elif isinstance(imp.names, cst.ImportStar) and not imp.relative and _split(_dotted(imp.module)):
                return False
        for name in spelled_names(tree):
            module, _, last = name.rpartition(".")
            found = _split(module)
            if found and (MOVES[found[1]]["removed"] or last in MOVES[found[1]]["names"]):
                return False
        return True

    def leave_SimpleStatementLine(self, original_node: cst.SimpleStatementLine, updated_node: cst.SimpleStatementLine):
        if len(updated_node.body) != 1:
            return updated_node
        stmt = updated_node.body[0]
        if isinstance(stmt, cst.Import):
            for alias in stmt.names:
                found = _split(_dotted(alias.name))
                if found and MOVES[found[1]]["removed"]:
                    entry = MOVES[found[1]]
                    self.follow_up(original_node, f"`{_dotted(alias.name)}` was removed in Lightning {entry['version']}: import its names "
                                                  f"from their 2.x homes ({self._homes(found[0], entry)})")
            return updated_node
        if not isinstance(stmt, cst.ImportFrom) or stmt.relative or isinstance(stmt.names, cst.ImportStar):
            if isinstance(stmt, cst.ImportFrom) and isinstance(stmt.names, cst.ImportStar) and _split(_dotted(stmt.module)):
                self.follow_up(original_node, f"`from {_dotted(stmt.module)} import *` names a path Lightning 2.0 moved: import each name from its 2.x home")
            return updated_node
        module = _dotted(stmt.module)
        found = _split(module)
        if not found:
            return updated_node
        package, path = found
        entry = MOVES[path]
        staying: list[cst.ImportAlias] = []
        moved: dict[str, list[tuple[str, str | None]]] = {}
        for alias in stmt.names:
            name = _dotted(alias.name)
            local = alias.asname.name.value if alias.asname and isinstance(alias.asname.name, cst.Name) else None
            if name in entry["names"]:
                target = entry["names"][name]
                home, _, new = target.rpartition(".")
                moved.setdefault(f"{package}.{home}" if home else package, []).append((new, local or (name if new != name else None)))
            elif entry["removed"]:
                self.follow_up(original_node, f"`{name}` went with `{module}` in Lightning {entry['version']} and has no 2.x home in Lightning: "
                                              f"{entry['follow_up']}")
                return updated_node
            else:
                staying.append(alias)
        if not moved:
            return updated_node
        lines: list[cst.SimpleStatementLine] = []
        if staying:
            staying[-1] = staying[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
            lines.append(updated_node.with_changes(body=[stmt.with_changes(names=staying, lpar=None, rpar=None)]))
        for home, names in moved.items():
            code = ", ".join(f"{new} as {local}" if local and local != new else new for new, local in names)
            lines.append(cst.parse_statement(f"from {home} import {code}\n"))
        lines[0] = lines[0].with_changes(leading_lines=updated_node.leading_lines)
        written = "; ".join(f"from {home} import {', '.join(n for n, _ in names)}" for home, names in moved.items())
        self.change(original_node, f"`from {module} import ...` -> `{written}` (the old path is rejected since Lightning {entry['version']})")
        return cst.FlattenSentinel(lines)

    def leave_Attribute(self, original_node: cst.Attribute, updated_node: cst.Attribute) -> cst.Attribute:
        for qualified in self.qnames(original_node):
            for package in PACKAGES:
                path = qualified[len(package) + 1:] if qualified.startswith(package + ".") else ""
                module, _, name = path.rpartition(".")
                entry = MOVES.get(module)
                if entry and (entry["removed"] or name in entry["names"]) and isinstance(original_node.value, (cst.Name, cst.Attribute)):
                    self.follow_up(original_node, f"`{self.source(original_node)}` is gone since Lightning {entry['version']}: "
                                                  f"{'use ' + self._homes(package, entry, name) if name in entry['names'] else entry['follow_up']}")
                    return updated_node
        return updated_node

    @staticmethod
    def _homes(package: str, entry: dict, name: str | None = None) -> str:
        items = [(old, new) for old, new in entry["names"].items() if name is None or old == name]
        return ", ".join(f"{package}.{new}" for _, new in items) or "its 2.x replacement"
