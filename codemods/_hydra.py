"""Hydra apps: compose on the driver, hand the config to the workers as a plain container.

``@hydra.main`` stays on the driver's entry point: Hydra reads the command line, composes the
config and sets up its output folder there. The config goes to the workers through
``train_loop_config`` as ``OmegaConf.to_container(cfg, resolve=True)`` (resolved on the driver,
where Hydra's own resolvers such as ``${hydra:runtime.cwd}`` work) and becomes a ``DictConfig``
again on the worker. A Lightning Trainer built by ``hydra.utils.instantiate(cfg.trainer, ...)``
is found here and gets Ray's pieces as keyword arguments of that call, which win over the config.
"""

from __future__ import annotations

import libcst as cst
from libcst.codemod.visitors import AddImportsVisitor

from codemods import _train_function as tf
from codemods import _hf_signature as hf_signature
from codemods._trainers import qualified_names
from migrator.walks import nodes

INSTANTIATE = ("hydra.utils.instantiate", "hydra.utils.call")
COMMENT = "# Composed by Hydra on the driver, handed over as a plain container."


def trainer_instantiations(codemod, module: cst.Module) -> frozenset[cst.Call]:
    """``hydra.utils.instantiate(cfg.trainer, ...)``: calls whose config names a trainer."""
    found: set[cst.Call] = set()
    for node in nodes(module, (cst.Call,)):
        if node.args and node.args[0].keyword is None and any(q in INSTANTIATE for q in qualified_names(codemod, node.func)):
            if "trainer" in cst.Module([]).code_for_node(node.args[0].value).lower():
                found.add(node)
    return frozenset(found)


def is_hydra_main(codemod, owner) -> bool:
    if not isinstance(owner, cst.FunctionDef):
        return False
    for decorator in owner.decorators:
        func = decorator.decorator.func if isinstance(decorator.decorator, cst.Call) else decorator.decorator
        if "hydra.main" in qualified_names(codemod, func):
            return True
    return False


def hand_over(codemod, planned: tf.SitePlan) -> tuple[list[cst.BaseStatement], list[tuple[str, str]]]:
    """For a ``@hydra.main`` owner: the worker-side lines and config items that carry its config.

    Takes the function's parameters out of ``planned.plan.config_names``; returns ``([], [])``
    when the owner is no Hydra app.
    """
    the_plan = planned.plan
    if not is_hydra_main(codemod, planned.owner):
        return [], []
    params = {p.name.value for p in planned.owner.params.params}
    names = [n for n in the_plan.config_names if n in params]
    if not names:
        return [], []
    AddImportsVisitor.add_needed_import(codemod.context, "omegaconf", "OmegaConf")
    the_plan.config_names = [n for n in the_plan.config_names if n not in names]
    the_plan.needs_param = True
    lines = [cst.parse_statement(f'{n} = OmegaConf.create({the_plan.param}["{n}"])') for n in names]
    lines[0] = lines[0].with_changes(leading_lines=[cst.EmptyLine(comment=cst.Comment(COMMENT))])
    codemod.change(planned.owner, f"@hydra.main stays on the driver; {', '.join(names)} reaches the workers as a resolved container (OmegaConf.to_container) and is rebuilt there")
    return lines, [(n, f"OmegaConf.to_container({n}, resolve=True)") for n in names]


def transformers_instantiations(codemod, module: cst.Module, is_training_arguments) -> tuple[frozenset[cst.Call], frozenset[cst.Call]]:
    """``instantiate(cfg.trainer, ...)`` calls split into (Transformers/trl Trainers, unknown trainers).

    The class is in the config, out of sight, so the call's arguments decide (``_hf_signature``);
    the rest could be any trainer with a ``train()`` method.
    """
    calls = trainer_instantiations(codemod, module)
    if not calls:
        return frozenset(), frozenset()
    known = frozenset(hf_signature.transformers_calls(codemod, module, calls, is_training_arguments))
    return known, calls - known


def unknown_trainer_message(var: str) -> str:
    return (f"`{var}` is built by hydra.utils.instantiate from the config and trained with `{var}.train()`, "
            "but nothing here says it is a Transformers/trl Trainer (its class is in the config): if it is one, "
            "pass its TrainingArguments as args= at this call and convert again; otherwise move the training "
            "into a train function launched by ray.train.torch.TorchTrainer")
