"""No silent miss: a file that trains with a framework and was not converted gets a follow-up.

Runs after every other codemod, on the code they produced, and changes nothing. What it looks for
is data (``codemods/data/training_audit.toml`` and ``retired_ray_trainers.toml``):

* A file that uses a training framework (a Transformers/trl ``Trainer``, an ``Accelerator``, a
  Lightning ``Trainer`` or ``LightningCLI``, ``torch.distributed`` process groups or DDP, a
  process launcher), does not launch with Ray Train (no ``TorchTrainer``), and about which no
  codemod said anything, gets one follow-up at the first such use: "left unconverted" when the
  file did not change, "partly converted" when it did.
* A retired Ray name (a retired trainer from any path it ever had, ``ray.ml``, a ``*Predictor``,
  ``ray.air.session``...) still used after the conversions gets a follow-up saying what replaces
  it, unless a codemod already flagged it.

Before (a Hydra app the Lightning codemod does not recognise)::

    @hydra.main(config_path="conf", config_name="train")
    def main(cfg):
        trainer = hydra.utils.instantiate(cfg.trainer)
        trainer.fit(model)

After: the same file, and in the report::

    follow-up app.py:4 [training_audit] left unconverted: trains with PyTorch Lightning
    (`trainer.fit()` here) but no codemod recognised how ...
"""

from __future__ import annotations

import re
from fnmatch import fnmatchcase

import libcst as cst
from libcst.helpers import get_full_name_for_node
from libcst.metadata import ParentNodeProvider

from codemods._names import TableCodemod, defines_any, load_table, spelled_names
from migrator.walks import nodes

TABLE = load_table("training_audit")
FRAMEWORKS: dict[str, dict] = TABLE["frameworks"]
CONVERTED: tuple[str, ...] = tuple(TABLE["converted"]["names"])
#: pattern -> its entry: the table's retired names and every retired trainer path (whose import fails,
#: and which the entry's ``codemod`` converts: its own follow-ups cover what it left).
RETIRED: dict[str, dict] = {
    **TABLE["retired"],
    **{path: {**e, "import_fails": True} for path, e in load_table("retired_ray_trainers")["trainers"].items()},
}
HOW = ("move the training into a train function and launch it with ray.train.torch.TorchTrainer "
       "(see the Ray Train guide for this framework), or convert the shape by hand")


def _literal(pattern: str) -> str:
    """The literal text a name pattern starts with, up to its first wildcard."""
    return re.split(r"[*?\[]", pattern, maxsplit=1)[0]


def spelled_part(pattern: str) -> str:
    """The part of a name pattern a file that uses such a name must spell: its last part, or for a
    pattern with a wildcard the last whole part before it (``trl`` for ``trl.*Trainer``)."""
    literal = _literal(pattern)
    if literal == pattern:
        return pattern.rsplit(".", 1)[-1]
    return literal.split(".")[:-1][-1]  # the piece after the last dot is cut by the wildcard


def matches(name: str, patterns) -> bool:
    return any(fnmatchcase(name, p) or (p.endswith(".*") and name == p[:-2]) for p in patterns)


def _with_prefixes(patterns) -> list[tuple[str, str]]:
    """Each pattern with the literal text it starts with."""
    return [(pattern, _literal(pattern)) for pattern in patterns]


_RETIRED_PREFIXES = _with_prefixes(RETIRED)
_FRAMEWORK_PREFIXES = _with_prefixes(p for framework in FRAMEWORKS.values() for p in framework.get("names", ()))
#: The first part of every name the audit looks for. A def or class of the file named like one
#: would give its own names qualified names that start with it (``trl.<locals>.SFTTrainer``).
_TOPS = frozenset(p.split(".", 1)[0] for p, _ in _RETIRED_PREFIXES + _FRAMEWORK_PREFIXES)


def _any_match(names: set[str], prefixed: list[tuple[str, str]]) -> bool:
    return any(name.startswith(prefix) and matches(name, (pattern,)) for pattern, prefix in prefixed for name in names)


def up_to_class(name: str) -> str:
    """``name`` up to its first capitalised part: ``a.b.BatchPredictor.from_checkpoint`` -> ``a.b.BatchPredictor``."""
    parts = name.split(".")
    cut = next((i for i, part in enumerate(parts) if part[:1].isupper()), len(parts) - 1)
    return ".".join(parts[: cut + 1])


class TrainingAudit(TableCodemod):
    DESCRIPTION = "Audit: a training script left unconverted or partly converted gets a follow-up (changes nothing)."
    # What the full audit could say something about, as the file must spell it: the last part of
    # every framework name in the table (a qualified name is made of parts the file spells: its
    # import names the last), the literal part before a wildcard's (`trl` for `trl.*Trainer`),
    # every framework method, and `ray` for the retired Ray names. Literal, so the registry reads
    # it without importing this module; test_training_audit_triggers derives it from the table.
    # A file that only imports torch or transformers (a library's own modules) is not parsed.
    TRIGGERS = (
        b"Accelerator", b"AutoExecutor", b"DistributedDataParallel", b"Fabric", b"LightningCLI", b"LocalExecutor",
        b"Seq2SeqTrainer", b"SlurmExecutor", b"Trainer", b"elastic_launch", b"fit", b"init_process_group", b"main",
        b"notebook_launcher", b"ray", b"spawn", b"start_processes", b"train", b"trainer", b"trl",
    )
    # ...and only a file that imports one: "we accelerate the loop" or "ray tracing" in prose does not.
    MODULES = (
        b"transformers", b"trl", b"accelerate", b"lightning", b"pytorch_lightning", b"lightning_fabric",
        b"torch", b"submitit", b"ray",
    )
    ORDER = 99
    METADATA_DEPENDENCIES = (*TableCodemod.METADATA_DEPENDENCIES, ParentNodeProvider)

    def nothing_to_do(self, tree: cst.Module) -> bool:
        """The converted tree's scopes cost more than the rest of a conversion: the full audit runs
        only where it could say something. Not where no name the file spells could be a retired
        one, and either a codemod already gave a follow-up, or the file launches with a Ray Train
        trainer imported at module level and bound nowhere else (every other mention of its name
        is a call of it), or nothing in it could be a framework's use: most files of a library
        that imports torch or transformers (a repository's own package, a vendored copy), which
        reach the audit through the pre-filter and cost up to seconds each in full."""
        if defines_any(tree, _TOPS):
            return False
        names = spelled_names(tree)
        names |= {up_to_class(name) for name in names}
        if _any_match(names, _RETIRED_PREFIXES):
            return False
        _, earlier = self.earlier
        if any(e.kind == "follow-up" for e in earlier) or self._launches_with_ray_train(tree):
            return True
        return not self._could_use_a_framework(tree, names)

    def _could_use_a_framework(self, tree: cst.Module, names: set[str]) -> bool:
        """Whether ``_first_framework_use`` could find something: a name the file spells matches a
        framework's names (a reference's qualified name is always one of those spelled), or the
        file imports a framework's module and calls one of its methods (what it checks itself)."""
        if _any_match(names, _FRAMEWORK_PREFIXES):
            return True
        imported = self._imported_tops(tree)
        methods = {m for f in FRAMEWORKS.values() if imported & set(f.get("modules", ())) for m in f.get("methods", ())}
        return bool(methods) and any(isinstance(call.func, cst.Attribute) and call.func.attr.value in methods
                                     for call in nodes(tree, (cst.Call,)))

    @staticmethod
    def _launches_with_ray_train(tree: cst.Module) -> bool:
        called = {id(call.func) for call in nodes(tree, (cst.Call,))}
        for line in tree.body:
            if not isinstance(line, cst.SimpleStatementLine):
                continue
            for imp in line.body:
                if not (isinstance(imp, cst.ImportFrom) and imp.module is not None and not imp.relative
                        and not isinstance(imp.names, cst.ImportStar)):
                    continue
                module = get_full_name_for_node(imp.module)
                for alias in imp.names:
                    if not matches(f"{module}.{get_full_name_for_node(alias.name)}", CONVERTED):
                        continue
                    bound = alias.asname.name if alias.asname is not None else alias.name
                    if not isinstance(bound, cst.Name):
                        continue
                    mentions = [n for n in nodes(tree, (cst.Name,)) if n.value == bound.value and n is not bound]
                    if mentions and all(id(n) in called for n in mentions):
                        return True
        return False

    def visit_Module(self, node: cst.Module) -> bool:
        source, earlier = self.earlier
        said = [e for e in earlier if e.kind == "follow-up"]
        refs = [n for n in nodes(node, (cst.Name, cst.Attribute)) if not self._in_import(n)]
        named = [(n, q) for n in refs for q in self.qnames(n)]
        if not any(matches(q, CONVERTED) for _, q in named) and not said:
            use = self._first_framework_use(node, named)
            if use is not None:
                where, what, label = use
                if source is None or node.code.encode(node.encoding) == source:
                    self.follow_up(where, f"left unconverted: trains with {label} ({what} here) but no codemod "
                                   f"recognised how this file trains, so nothing was converted: {HOW}")
                else:
                    self.follow_up(where, f"partly converted: trains with {label} ({what} here) and the codemods "
                                   f"changed some of it, but nothing launches it with Ray Train yet: {HOW}")
        self._retired(node, named, said)
        return False

    # -- frameworks ---------------------------------------------------------------------------
    def _first_framework_use(self, node: cst.Module, named) -> tuple[cst.CSTNode, str, str] | None:
        found = []
        for ref, q in named:
            for framework in FRAMEWORKS.values():
                if matches(q, framework.get("names", ())):
                    found.append((self.line_of(ref), ref, f"`{q}`", framework["label"]))
        imported = self._imported_tops(node)
        for framework in FRAMEWORKS.values():
            if not imported & set(framework.get("modules", ())):
                continue
            for call in nodes(node, (cst.Call,)):
                if not isinstance(call.func, cst.Attribute):
                    continue
                if call.func.attr.value in framework.get("methods", ()):
                    found.append((self.line_of(call), call, f"`{self.source(call.func)}()`", framework["label"]))
        if not found:
            return None
        _, where, what, label = min(found, key=lambda f: f[0])
        return where, what, label

    @staticmethod
    def _imported_tops(node: cst.Module) -> set[str]:
        tops = set()
        for imp in nodes(node, (cst.Import, cst.ImportFrom)):
            if isinstance(imp, cst.Import):
                tops |= {get_full_name_for_node(a.name).split(".")[0] for a in imp.names}
            elif imp.module is not None and not imp.relative:
                tops.add(get_full_name_for_node(imp.module).split(".")[0])
        return tops

    # -- retired Ray names --------------------------------------------------------------------
    def _retired(self, node: cst.Module, named, said) -> None:
        """One follow-up per retired name still used, at its first use (its import if it is only imported)."""
        uses: dict[str, list[tuple[int, cst.CSTNode]]] = {}
        for ref, q in named:
            if self._outermost(ref, q):
                uses.setdefault(up_to_class(q), []).append((self.line_of(ref), ref))
        for imp, full in self._imported_names(node):
            uses.setdefault(full, []).append((self.line_of(imp), imp))
        flagged_lines = {e.line for e in said}
        for name, places in sorted(uses.items(), key=lambda item: min(line for line, _ in item[1])):
            entry = next((RETIRED[p] for p in RETIRED if matches(name, [p])), None)
            if entry is None:
                continue
            short = name.rsplit(".", 1)[-1]
            if {line for line, _ in places} & flagged_lines or any(
                    short in e.message or e.codemod == entry.get("codemod") for e in said):
                continue  # a codemod already said what to do about it
            imported_only = all(self._in_import(where) for _, where in places)
            if imported_only and not entry["import_fails"]:
                continue  # an unused import of a name that still imports: harmless
            line, where = min(places, key=lambda p: (self._in_import(p[1]), p[0]))
            verb = "imported" if imported_only else "used"
            self.follow_up(where, f"`{name}` (retired in Ray {entry['version']}) is still {verb}: {entry['follow_up']}")

    def _outermost(self, ref: cst.CSTNode, q: str) -> bool:
        """Whether ``ref`` is the longest name here (``session.report``, not its ``session``)."""
        parent = self.get_metadata(ParentNodeProvider, ref, None)
        return not (isinstance(parent, cst.Attribute) and parent.value is ref and self.qnames(parent))

    @staticmethod
    def _imported_names(node: cst.Module):
        for imp in nodes(node, (cst.ImportFrom,)):
            if imp.relative or imp.module is None:
                continue
            module = get_full_name_for_node(imp.module)
            if isinstance(imp.names, cst.ImportStar):
                yield imp, module
                continue
            for alias in imp.names:
                yield imp, f"{module}.{get_full_name_for_node(alias.name)}"
        for imp in nodes(node, (cst.Import,)):
            for alias in imp.names:
                yield imp, get_full_name_for_node(alias.name)

    def _in_import(self, node: cst.CSTNode) -> bool:
        while node is not None and not isinstance(node, cst.BaseStatement):
            if isinstance(node, (cst.Import, cst.ImportFrom)):
                return True
            node = self.get_metadata(ParentNodeProvider, node, None)
        return False
