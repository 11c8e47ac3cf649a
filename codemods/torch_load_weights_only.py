"""Load what the script saves itself as torch.load did before 2.6: ``weights_only=False``.

torch 2.6 made ``torch.load(f)`` default to ``weights_only=True``: it loads tensors and plain
containers of them, and refuses anything else with an ``UnpicklingError``. A script of the torch
1.x-2.5 era that saves a whole model (``torch.save(model, f)``, as PyTorch's word_language_model
example did) or a checkpoint that holds its argparse ``Namespace`` (``{"args": args, ...}``), and
loads it back to resume or to test the best model, stops at that load on today's torch.

Before::

    torch.save(model, "best.pt")
    ...
    model = torch.load("best.pt")

After::

    torch.save(model, "best.pt")
    ...
    model = torch.load("best.pt", weights_only=False)

Only in a file that itself saves such an object with ``torch.save``: the file it loads is then its
own. Such an object is the one saved, a value of the dict written at the call, or of a dict a name
saved was assigned, that is
* a module: a name the file also calls ``.parameters()``, ``.named_parameters()``, ``.state_dict()``,
  ``.train()`` or ``.eval()`` on, or an instance of a ``torch.nn.Module`` subclass;
* an argparse ``Namespace``: a name assigned from ``....parse_args(...)``.
A ``torch.load`` given ``weights_only=`` (or ``**kwargs``) is left as written, and so is every load in
a file that saves only state dicts, numbers and strings: a pretrained file loads under today's
safer default as it should.
"""

from __future__ import annotations

import libcst as cst

from codemods._keywords import kwarg
from codemods._lightning import append_items
from codemods._names import TableCodemod, nodes

MODULE_METHODS = frozenset({"parameters", "named_parameters", "state_dict", "train", "eval"})
NN_MODULE = frozenset({"torch.nn.Module", "torch.nn.modules.module.Module"})
PARSE_ARGS = frozenset({"parse_args", "parse_known_args"})


def _last_name(func: cst.BaseExpression) -> str | None:
    if isinstance(func, cst.Attribute):
        return func.attr.value
    return func.value if isinstance(func, cst.Name) else None


class TorchLoadWeightsOnly(TableCodemod):
    DESCRIPTION = "torch.load(...) of what the script saves itself (a whole model, a Namespace): weights_only=False, as before torch 2.6."
    # `save` as a whole name, in a file that imports torch: `torch.save(...)`, and also
    # `from torch import save, load` and `import torch as T; T.save(...)`, which the qualified
    # names resolve. (51 more of transformers' 2,860 files are parsed than with `torch.save`
    # alone, where the word is in a docstring; nothing_to_do settles them without scopes.)
    TRIGGERS = (b"save",)
    MODULES = (b"torch",)
    ORDER = 13

    def nothing_to_do(self, tree: cst.Module) -> bool:
        """No call of something named ``save`` and of something named ``load``: scopes not resolved."""
        called = {_last_name(c.func) for c in nodes(tree, (cst.Call,))}
        return not {"save", "load"} <= called

    def visit_Module(self, node: cst.Module) -> None:
        self._fix: set[cst.Call] = set()
        calls = list(nodes(node, (cst.Call,)))
        loads = [c for c in calls if c.args and "torch.load" in self.qnames(c.func) and self._open(c)]
        if not loads:
            return
        self._modules = {self.source(c.func.value) for c in calls
                         if isinstance(c.func, cst.Attribute) and c.func.attr.value in MODULE_METHODS and not c.args}
        for save in (c for c in calls if "torch.save" in self.qnames(c.func) and c.args):
            what = self._unpicklable(save.args[0].value)
            if what:
                self._why = f"{what} with torch.save (line {self.line_of(save)})"
                self._fix.update(loads)
                return

    @staticmethod
    def _open(call: cst.Call) -> bool:
        return not any(a.star == "**" or (a.keyword is not None and a.keyword.value == "weights_only") for a in call.args)

    def _unpicklable(self, expr: cst.BaseExpression, depth: int = 0) -> str | None:
        """What in ``expr`` a weights-only load refuses, said for the report; None if nothing known."""
        if depth > 3:
            return None
        if isinstance(expr, cst.Dict):
            for element in expr.elements:
                found = self._unpicklable(element.value, depth + 1) if isinstance(element, cst.DictElement) else None
                if found:
                    return found
            return None
        if not isinstance(expr, (cst.Name, cst.Attribute)):
            return None
        text = self.source(expr)
        values = (self.values_of(expr) or []) if isinstance(expr, cst.Name) else []
        # Any binding will do: a name that is a module where it is saved may be reloaded into later.
        if text in self._modules or any(self.instance_of(v, NN_MODULE) for v in [expr, *values]):
            return f"the module `{text}` itself rather than its state_dict"
        for value in values:
            if isinstance(value, cst.Call) and isinstance(value.func, cst.Attribute) and value.func.attr.value in PARSE_ARGS:
                return f"the argparse Namespace `{text}`"
            if isinstance(value, cst.Dict):
                found = self._unpicklable(value, depth + 1)
                if found:
                    return found
        return None

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.Call:
        if original_node not in self._fix:
            return updated_node
        self.change(original_node, f"`{self.source(original_node.func)}(...)` gets `weights_only=False`: since torch 2.6 it "
                                   f"loads only tensors and plain containers by default, and this script saves {self._why}, "
                                   "which such a load refuses (UnpicklingError). Load only files you trust this way.")
        args = append_items(updated_node.args, [kwarg("weights_only", "False")], updated_node.whitespace_before_args)
        return updated_node.with_changes(args=args)
