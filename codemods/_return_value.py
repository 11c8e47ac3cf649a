"""A training function's return value, carried back to its callers through ``result.return_value``.

Old code often returns what it trained (lightning-hydra-template's ``return metric_dict,
object_dict``, a ``main()`` returning ``trainer.train()``) and its callers use it. Once the
training runs on Ray workers, Ray Train V2 hands rank 0's return value back as
``result.return_value``, but raises on tensors and models in it, and a value that cannot be
pickled fails the worker. So the moved ``return x`` becomes ``return for_the_driver(x)`` and
the launch returns ``result.return_value``::

    def train(cfg):                        def train_func(config):
        ...                                    ...
        trainer.fit(model)          ->         return for_the_driver((trainer.callback_metrics, objects))
        return trainer.callback_metrics, objects
                                           def train(cfg):
                                               result = TorchTrainer(train_func, ...).fit()
                                               return result.return_value
"""

from __future__ import annotations

from typing import Sequence

import libcst as cst

from codemods._module_code import defines
from migrator.walks import nodes

HELPER = "for_the_driver"
HELPER_SOURCE = f'''
def {HELPER}(value):
    """What the train function returns, as Ray Train hands it back to the driver (result.return_value):
    tensors become numpy arrays (.item() and float() still work); models, and objects that cannot be
    pickled, become None: the trained model is in the checkpoint."""
    import torch
    from ray import cloudpickle

    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        return (value.float() if value.is_floating_point() else value).numpy()
    if isinstance(value, torch.nn.Module):
        return None
    if isinstance(value, dict):
        return {{key: {HELPER}(item) for key, item in value.items()}}
    if isinstance(value, (list, tuple)):
        items = [{HELPER}(item) for item in value]
        return type(value)(*items) if hasattr(value, "_fields") else type(value)(items)
    try:
        cloudpickle.dumps(value)
    except Exception:
        return None
    return value
'''


def returns(statements: Sequence[cst.BaseStatement], *, with_value: bool = True) -> list[cst.Return]:
    """The ``return`` statements of ``statements`` (a function's body, a block), not of functions
    nested in them; with ``with_value=False`` the bare ``return`` too."""
    # Functions, classes and lambdas inside have returns of their own: their subtrees are skipped.
    return [
        node for stmt in statements
        for node in nodes(stmt, (cst.Return,), prune=(cst.FunctionDef, cst.ClassDef, cst.Lambda))
        if node.value is not None or not with_value
    ]


class _WrapReturns(cst.CSTTransformer):
    def __init__(self, targets: list[cst.Return]) -> None:
        self.targets = set(map(id, targets))

    def leave_Return(self, original_node: cst.Return, updated_node: cst.Return) -> cst.Return:
        if id(original_node) not in self.targets or updated_node.value is None:
            return updated_node
        value = updated_node.value
        if isinstance(value, cst.Tuple) and not value.lpar:  # `return a, b` returns one tuple
            value = value.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
        return updated_node.with_changes(value=cst.Call(func=cst.Name(HELPER), args=[cst.Arg(value)]))


def wrap_returns(stmt: cst.BaseStatement) -> cst.BaseStatement:
    """``stmt`` with each of its own ``return x`` turned into ``return for_the_driver(x)``."""
    found = returns([stmt])
    return stmt.visit(_WrapReturns(found)) if found else stmt


def helper_definitions(module: cst.Module) -> list[cst.BaseStatement]:
    """The helper's ``def``, unless the module has it already (a second training in the file)."""
    if defines(module, HELPER):
        return []
    return [cst.parse_statement(HELPER_SOURCE.strip() + "\n").with_changes(leading_lines=[cst.EmptyLine(), cst.EmptyLine()])]
