"""What the Lightning codemod knows about Lightning: names, strategy tables, argument edits, imports.

Lightning ships as ``lightning`` (``lightning.pytorch``) and as ``pytorch_lightning``; a name is
recognised under either. Ray's integration imports ``lightning.pytorch`` whenever ``lightning`` is
installed, else ``pytorch_lightning`` (``ray.train.lightning._lightning_utils.import_lightning``),
so ``PackageRewriter`` can move every Lightning import of a file to one package.
"""

from __future__ import annotations

from typing import Sequence, TypeVar

import libcst as cst

PACKAGES = ("lightning", "pytorch_lightning")

#: ``strategy="..."`` -> (Ray strategy, its arguments as code), from Lightning's StrategyRegistry.
#: ``start_method`` is dropped: Ray starts the processes, so spawn, fork and popen are all DDP.
STRATEGY_STRINGS: dict[str, tuple[str, str]] = {
    "auto": ("RayDDPStrategy", ""),
    **{
        f"{name}{suffix}": ("RayDDPStrategy", args)
        for name in ("ddp", "ddp_spawn", "ddp_fork", "ddp_notebook")
        for suffix, args in (
            ("", ""),
            ("_find_unused_parameters_false", "find_unused_parameters=False"),
            ("_find_unused_parameters_true", "find_unused_parameters=True"),
        )
    },
    "fsdp": ("RayFSDPStrategy", ""),
    "fsdp_cpu_offload": ("RayFSDPStrategy", "cpu_offload=True"),
    "deepspeed": ("RayDeepSpeedStrategy", ""),
    "deepspeed_stage_1": ("RayDeepSpeedStrategy", "stage=1"),
    "deepspeed_stage_2": ("RayDeepSpeedStrategy", "stage=2"),
    "deepspeed_stage_2_offload": ("RayDeepSpeedStrategy", "stage=2, offload_optimizer=True"),
    "deepspeed_stage_3": ("RayDeepSpeedStrategy", "stage=3"),
    "deepspeed_stage_3_offload": ("RayDeepSpeedStrategy", "stage=3, offload_optimizer=True, offload_parameters=True"),
}
#: The function a converted script calls on a ``strategy=`` it only knows at run time (a config
#: value, a command-line flag): the same table, applied when the value is known.
STRATEGY_HELPER = "ray_strategy"


def strategy_helper_source() -> str:
    """``def ray_strategy(strategy)``: a strategy name to Ray's strategy, generated from ``STRATEGY_STRINGS``."""
    entries = "".join(
        f'        "{name}": ({ray}, dict({args})),\n' for name, (ray, args) in STRATEGY_STRINGS.items()
    )
    return (
        f"def {STRATEGY_HELPER}(strategy):\n"
        '    """Ray\'s strategy for a Trainer strategy= known only at run time (config, command line):\n'
        "    prepare_trainer takes only Ray's strategies, and each Ray worker is one process.\"\"\"\n"
        "    from ray.train.lightning import RayDDPStrategy, RayDeepSpeedStrategy, RayFSDPStrategy\n"
        "\n"
        "    if strategy is None:\n"
        "        return RayDDPStrategy()\n"
        "    if isinstance(strategy, (RayDDPStrategy, RayFSDPStrategy, RayDeepSpeedStrategy)):\n"
        "        return strategy\n"
        "    named = {\n"
        f"{entries}"
        "    }\n"
        "    if isinstance(strategy, str) and strategy in named:\n"
        "        ray, kwargs = named[strategy]\n"
        "        return ray(**kwargs)\n"
        "    raise ValueError(\n"
        '        f"strategy={strategy!r} has no Ray Train equivalent (Ray runs one process per worker): "\n'
        '        "use RayDDPStrategy(), RayFSDPStrategy() or RayDeepSpeedStrategy()"\n'
        "    )\n"
    )


#: Lightning strategy classes with a Ray subclass that takes the same arguments.
STRATEGY_CLASSES = {"DDPStrategy": "RayDDPStrategy", "FSDPStrategy": "RayFSDPStrategy", "DeepSpeedStrategy": "RayDeepSpeedStrategy"}
RAY_STRATEGIES = frozenset(STRATEGY_CLASSES.values())
#: DDP arguments Ray ignores: the process group is Ray's (``TorchConfig``).
RAY_OWNED_DDP_ARGS = frozenset({"process_group_backend", "timeout", "start_method"})
#: Trainer arguments that place processes on devices and machines: Ray decides placement.
PLACEMENT_ARGS = ("gpus", "num_nodes", "num_processes", "tpu_cores", "ipus", "hpus", "auto_select_gpus")
#: What ``lightning`` exports at top level that ``pytorch_lightning`` exports too.
TOP_LEVEL = frozenset({"Trainer", "LightningDataModule", "LightningModule", "Callback", "seed_everything"})


def lightning_path(qualified: str) -> str | None:
    """``strategies.DDPStrategy`` for ``lightning.pytorch.strategies.DDPStrategy``, ``pytorch_lightning...``
    or ``lightning.X`` (top-level re-exports); None for anything else."""
    for prefix in ("lightning.pytorch.", "pytorch_lightning.", "lightning."):
        if qualified.startswith(prefix):
            rest = qualified[len(prefix):]
            return None if rest.startswith(("fabric.", "app.")) else rest
    return None


def is_trainer(qualified: str) -> bool:
    return lightning_path(qualified) in ("Trainer", "trainer.Trainer", "trainer.trainer.Trainer")


def class_name(qualified: str, package: str) -> str | None:
    """The class name when ``qualified`` is a Lightning class under ``package`` (``strategies``...)."""
    path = lightning_path(qualified)
    if path and path.startswith(f"{package}."):
        return path.rsplit(".", 1)[-1]
    return None


def is_cluster_environment(qualified: str) -> bool:
    path = lightning_path(qualified) or ""
    return path.startswith("plugins.environments.") and path.endswith("Environment")


# -- counting workers ---------------------------------------------------------------------------
def device_count(value: cst.BaseExpression) -> int | None:
    """How many processes ``devices=`` (or ``gpus=``) asks for, when the literal says so."""
    if isinstance(value, cst.Integer):
        return int(value.value) if int(value.value) > 0 else None
    if isinstance(value, (cst.List, cst.Tuple)):
        return len(value.elements) or None
    if isinstance(value, cst.SimpleString):
        text = str(value.evaluated_value).strip()
        if text.isdigit():
            return int(text) or None
        parts = [p for p in text.split(",") if p.strip().isdigit()]
        return len(parts) if "," in text and parts else None
    return None


# -- editing argument lists and list displays, in the style they are written -------------------
Item = TypeVar("Item", cst.Arg, cst.Element)


def _newline(indent: str) -> cst.ParenthesizedWhitespace:
    return cst.ParenthesizedWhitespace(first_line=cst.TrailingWhitespace(), indent=True, last_line=cst.SimpleWhitespace(indent))


def append_items(items: Sequence[Item], new: Sequence[Item], opening: cst.BaseParenthesizableWhitespace) -> list[Item]:
    """``items + new``, with the separators the existing items use (one per line or inline)."""
    items = list(items)
    if not items:
        space = cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
        return [n.with_changes(comma=space) for n in new[:-1]] + [new[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)]
    if isinstance(opening, cst.ParenthesizedWhitespace):
        separator = cst.Comma(whitespace_after=opening)
    else:
        hanging = [i.comma for i in items[:-1] if isinstance(i.comma, cst.Comma)]
        separator = hanging[0] if hanging else cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
    last = items[-1]
    tail = {"comma": last.comma}
    own = separator
    after = last.comma.whitespace_after if isinstance(last.comma, cst.Comma) else None
    if isinstance(after, cst.ParenthesizedWhitespace) and after.first_line.comment is not None and isinstance(separator.whitespace_after, cst.ParenthesizedWhitespace):
        # A comment at the end of the last item's line stays on that line, not on the appended ones.
        own = separator.with_changes(whitespace_after=separator.whitespace_after.with_changes(first_line=after.first_line))
        tail["comma"] = last.comma.with_changes(whitespace_after=after.with_changes(first_line=cst.TrailingWhitespace()))
    if isinstance(last, cst.Arg):
        tail["whitespace_after_arg"] = last.whitespace_after_arg
        items[-1] = last.with_changes(comma=own, whitespace_after_arg=cst.SimpleWhitespace(""))
    else:
        items[-1] = last.with_changes(comma=own)
    added = [n.with_changes(comma=separator) for n in new[:-1]] + [new[-1].with_changes(**tail)]
    return items + added


def explode(call: cst.Call) -> cst.Call:
    """One argument per line with a trailing comma, as black writes a call too long for one line."""
    args = [a.with_changes(comma=cst.Comma(whitespace_after=_newline("    ")), whitespace_after_arg=cst.SimpleWhitespace("")) for a in call.args]
    args[-1] = args[-1].with_changes(comma=cst.Comma(whitespace_after=_newline("")))
    return call.with_changes(args=args, whitespace_before_args=_newline("    "))


def is_one_line(node: cst.CSTNode) -> bool:
    return "\n" not in cst.Module([]).code_for_node(node)


# -- moving every import to one package ---------------------------------------------------------
class PackageRewriter(cst.CSTTransformer):
    """Rewrite ``lightning.pytorch`` imports to ``pytorch_lightning`` or the other way round.

    Handles ``import X as Y``, ``import X`` with its attribute uses, ``from X[.sub] import ...`` and
    ``import lightning as L`` (``L.pytorch.Y`` becomes ``L.Y``). ``problems`` lists what it left
    alone (Fabric, names ``pytorch_lightning`` lacks).
    """

    def __init__(self, target: str) -> None:
        super().__init__()
        self.target = target
        self.changed: list[cst.CSTNode] = []
        self.problems: list[tuple[cst.CSTNode, str]] = []
        self.roots: dict[str, str] = {}  # a bound root name -> what its uses become

    def _module(self, dotted: str) -> str | None:
        """The same module in the target package, or None when there is nothing to change."""
        if self.target == "lightning" and (dotted == "pytorch_lightning" or dotted.startswith("pytorch_lightning.")):
            return "lightning.pytorch" + dotted[len("pytorch_lightning"):]
        if self.target == "pytorch_lightning" and (dotted == "lightning.pytorch" or dotted.startswith("lightning.pytorch.")):
            return "pytorch_lightning" + dotted[len("lightning.pytorch"):]
        return None

    def leave_Import(self, original_node: cst.Import, updated_node: cst.Import) -> cst.Import:
        names = []
        for alias in updated_node.names:
            dotted = cst.Module([]).code_for_node(alias.name)
            new = self._module(dotted)
            bound = alias.asname.name.value if alias.asname and isinstance(alias.asname.name, cst.Name) else None
            if self.target == "pytorch_lightning" and dotted == "lightning":
                new = "pytorch_lightning"  # `import lightning [as L]`: its uses are fixed below
                self.roots[bound or "lightning"] = bound or "pytorch_lightning"
            elif new and bound is None:  # `import X.Y` binds X: its uses are fixed below
                self.roots[dotted.split(".")[0]] = "lightning.pytorch" if self.target == "lightning" else "pytorch_lightning"
            if new:
                self.changed.append(original_node)
                alias = alias.with_changes(name=cst.parse_expression(new))
            names.append(alias)
        return updated_node.with_changes(names=names)

    def leave_ImportFrom(self, original_node: cst.ImportFrom, updated_node: cst.ImportFrom) -> cst.ImportFrom:
        if updated_node.module is None or updated_node.relative:
            return updated_node
        dotted = cst.Module([]).code_for_node(updated_node.module)
        new = self._module(dotted)
        if self.target == "pytorch_lightning" and dotted == "lightning":
            names = updated_node.names
            if isinstance(names, cst.ImportStar) or any(a.name.value not in TOP_LEVEL for a in names):
                self.problems.append((original_node, "`from lightning import ...` names something pytorch_lightning lacks: change this import by hand"))
                return updated_node
            new = "pytorch_lightning"
        if new is None:
            return updated_node
        self.changed.append(original_node)
        return updated_node.with_changes(module=cst.parse_expression(new))

    def leave_Attribute(self, original_node: cst.Attribute, updated_node: cst.Attribute) -> cst.BaseExpression:
        value = original_node.value  # only `root.attr` itself, not the chains built on it
        if not isinstance(value, cst.Name) or value.value not in self.roots:
            return updated_node
        replacement = cst.parse_expression(self.roots[value.value])
        attr = updated_node.attr.value
        if self.target == "lightning":
            return updated_node.with_changes(value=replacement)
        if attr == "pytorch":
            return replacement
        if attr in TOP_LEVEL:
            return updated_node.with_changes(value=replacement)
        self.problems.append((original_node, f"`{value.value}.{attr}` has no pytorch_lightning equivalent: change it by hand"))
        return updated_node


def imported_packages(module: cst.Module) -> dict[str, cst.CSTNode]:
    """The Lightning packages the module imports, each with its first import (not ``lightning.fabric``)."""
    found: dict[str, cst.CSTNode] = {}

    class Visit(cst.CSTVisitor):
        def visit_Import(self, node: cst.Import) -> None:
            for alias in node.names:
                self._add(cst.Module([]).code_for_node(alias.name), node)

        def visit_ImportFrom(self, node: cst.ImportFrom) -> None:
            if node.module is not None and not node.relative:
                self._add(cst.Module([]).code_for_node(node.module), node)

        def _add(self, dotted: str, node: cst.CSTNode) -> None:
            root = dotted.split(".")[0]
            if root in PACKAGES and not dotted.startswith(("lightning.fabric", "lightning.app")):
                found.setdefault(root, node)

    module.visit(Visit())
    return found


# -- imports that follow the package Ray binds to ------------------------------------------------
#: What the fallback catches: what Ray's own ``import_lightning`` catches, so both choose alike.
FALLBACK_ERROR = "ModuleNotFoundError"
FALLBACK_COMMENT = "# As Ray's Lightning integration does: lightning.pytorch where it is installed, else pytorch_lightning."


def _dotted(node: cst.BaseExpression) -> str:
    return cst.Module([]).code_for_node(node)


def pytorch_lightning_import(statement: cst.BaseStatement) -> bool | None:
    """True when every statement of the line imports from ``pytorch_lightning``; None when it mixes
    those imports with others (``import torch, pytorch_lightning``); False otherwise."""
    if not isinstance(statement, cst.SimpleStatementLine):
        return False
    kinds = []
    for small in statement.body:
        if isinstance(small, cst.Import):
            kinds += [_dotted(a.name).split(".")[0] == "pytorch_lightning" for a in small.names]
        elif isinstance(small, cst.ImportFrom) and small.module is not None and not small.relative:
            kinds.append(_dotted(small.module).split(".")[0] == "pytorch_lightning")
        else:
            kinds.append(False)
    if all(kinds):
        return True
    return None if any(kinds) else False


def _to_lightning(small: cst.BaseSmallStatement) -> list[cst.BaseSmallStatement]:
    """``small`` (a pytorch_lightning import) for lightning.pytorch, binding the same names."""
    if isinstance(small, cst.ImportFrom):
        module = "lightning.pytorch" + _dotted(small.module)[len("pytorch_lightning"):]
        return [small.with_changes(module=cst.parse_expression(module))]
    out: list[cst.BaseSmallStatement] = []
    for alias in small.names:
        dotted = _dotted(alias.name)
        module = "lightning.pytorch" + dotted[len("pytorch_lightning"):]
        if alias.asname is not None:  # `import pytorch_lightning[.x] as pl`
            out.append(cst.Import(names=[alias.with_changes(name=cst.parse_expression(module), comma=cst.MaybeSentinel.DEFAULT)]))
        else:  # `import pytorch_lightning[.x]` binds `pytorch_lightning`: bind it to the same module
            if dotted != "pytorch_lightning":
                out.append(cst.Import(names=[cst.ImportAlias(name=cst.parse_expression(module))]))
            out.append(cst.Import(names=[cst.ImportAlias(name=cst.parse_expression("lightning.pytorch"),
                                                         asname=cst.AsName(name=cst.Name("pytorch_lightning")))]))
    return out


def fallback_try(lines: Sequence[cst.SimpleStatementLine]) -> cst.Try:
    """``try: <lines for lightning.pytorch> except ModuleNotFoundError: <lines as they were>``."""
    first = lines[0]
    preferred: list[cst.SimpleStatementLine] = []
    for line in lines:  # one statement a line, the line's comment on the last
        statements = [s.with_changes(semicolon=cst.MaybeSentinel.DEFAULT) for small in line.body for s in _to_lightning(small)]
        preferred += [cst.SimpleStatementLine(body=[s]) for s in statements[:-1]]
        preferred.append(cst.SimpleStatementLine(body=[statements[-1]], trailing_whitespace=line.trailing_whitespace))
    original = [first.with_changes(leading_lines=[]), *lines[1:]]
    return cst.Try(
        leading_lines=[*first.leading_lines, cst.EmptyLine(comment=cst.Comment(FALLBACK_COMMENT))],
        body=cst.IndentedBlock(body=preferred),
        handlers=[cst.ExceptHandler(type=cst.Name(FALLBACK_ERROR), body=cst.IndentedBlock(body=original))],
    )


def _imports_only(statement: cst.BaseStatement) -> bool:
    return isinstance(statement, cst.SimpleStatementLine) and all(
        isinstance(small, (cst.Import, cst.ImportFrom)) for small in statement.body)


def is_fallback_try(node: cst.CSTNode) -> bool:
    """A ``try`` that imports lightning.pytorch and falls back to pytorch_lightning (ours or the user's)."""
    if not isinstance(node, cst.Try) or not node.handlers:
        return False
    body = [s for s in node.body.body if isinstance(s, cst.SimpleStatementLine)]
    prefers = any(isinstance(small, (cst.Import, cst.ImportFrom)) and "lightning.pytorch" in cst.Module([]).code_for_node(small)
                  for line in body for small in line.body)
    falls_back = any(pytorch_lightning_import(s) for h in node.handlers for s in h.body.body)
    return prefers and falls_back


class FollowRayImports(cst.CSTTransformer):
    """Every run of consecutive ``pytorch_lightning`` import lines becomes one fallback ``try``.

    ``changed`` holds the first line of each run; ``mixed`` the lines that import pytorch_lightning
    together with other modules (left as they are).
    """

    def __init__(self) -> None:
        super().__init__()
        self.changed: list[cst.CSTNode] = []
        self.mixed: list[cst.CSTNode] = []

    def visit_Try(self, node: cst.Try) -> bool:
        return not is_fallback_try(node)

    def _rewrite(self, original: Sequence[cst.BaseStatement], updated: Sequence[cst.BaseStatement]) -> list[cst.BaseStatement]:
        # One try per block of imports: the pytorch_lightning lines of a block of import lines go
        # together where the first of them was; the other imports follow in their order.
        out: list[cst.BaseStatement] = []
        run: list[cst.SimpleStatementLine] = []
        others: list[cst.BaseStatement] = []

        def flush() -> None:
            if run:
                out.append(fallback_try(run))
            out.extend(others)
            run.clear()
            others.clear()

        for before, after in zip(original, updated):
            kind = pytorch_lightning_import(after)
            if kind:
                if not run:
                    self.changed.append(before)
                run.append(after)
                continue
            if kind is None:
                self.mixed.append(before)
            if run and _imports_only(after):
                others.append(after)
                continue
            flush()
            out.append(after)
        flush()
        return out

    def leave_Module(self, original_node: cst.Module, updated_node: cst.Module) -> cst.Module:
        return updated_node.with_changes(body=self._rewrite(original_node.body, updated_node.body))

    def leave_IndentedBlock(self, original_node: cst.IndentedBlock, updated_node: cst.IndentedBlock) -> cst.IndentedBlock:
        return updated_node.with_changes(body=self._rewrite(original_node.body, updated_node.body))


#: Names of ``ray.train.lightning`` that Ray retired (2.7-2.9): a script still importing them was not converted.
RETIRED_RAY_NAMES = frozenset({"LightningTrainer", "LightningConfigBuilder", "LightningCheckpoint", "LightningPredictor"})


def uses_ray_lightning(module: cst.Module) -> bool:
    """Whether the module imports Ray's current Lightning integration (``ray.train.lightning``)."""
    found = False

    class Visit(cst.CSTVisitor):
        def visit_Import(self, node: cst.Import) -> None:
            nonlocal found
            found |= any(_dotted(a.name).startswith("ray.train.lightning") for a in node.names)

        def visit_ImportFrom(self, node: cst.ImportFrom) -> None:
            nonlocal found
            if node.module is not None and not node.relative and _dotted(node.module).startswith("ray.train.lightning"):
                found |= isinstance(node.names, cst.ImportStar) or any(
                    a.name.value not in RETIRED_RAY_NAMES for a in node.names if isinstance(a.name, cst.Name))

    module.visit(Visit())
    return found
