"""The ``*_epoch_end(self, outputs)`` hooks Lightning 2.0 removed, as the two hooks that replace them.

Lightning 1.x gathered what ``validation_step`` returned and handed the list to
``validation_epoch_end(self, outputs)``; 2.0 raises ``NotImplementedError`` at ``fit`` for a module
that still defines it. It still passes each step's return value to ``on_validation_batch_end``, so
the module can keep the list itself, and the old body runs in ``on_validation_epoch_end`` over it::

    # before
    def validation_epoch_end(self, outputs):
        self.log("val_loss", torch.stack([o["val_loss"] for o in outputs]).mean())

    # after
    def on_validation_batch_end(self, outputs, batch, batch_idx, dataloader_idx=0):
        # Lightning 2 no longer gathers what validation_step returns for the epoch's end: keep it here.
        if not hasattr(self, "validation_step_outputs"):
            self.validation_step_outputs = []
        self.validation_step_outputs.append(outputs)

    def on_validation_epoch_end(self):
        outputs = getattr(self, "validation_step_outputs", [])
        self.validation_step_outputs = []
        self.log("val_loss", torch.stack([o["val_loss"] for o in outputs]).mean())

The same for ``training_epoch_end`` and ``test_epoch_end``. Only where that is exactly 1.x's list:
the hook takes ``(self, outputs)`` alone, the step takes no ``dataloader_idx`` (with several
dataloaders 1.x passed a list per dataloader), and the class defines neither new hook already nor
uses the attribute for something else.
"""

from __future__ import annotations

import libcst as cst

from migrator.walks import nodes


def rewritable(klass: cst.ClassDef, hook: cst.FunctionDef, entry: dict) -> str | None:
    """Why ``hook`` cannot be rewritten as ``entry`` says, or None when it can."""
    params = hook.params
    if hook.decorators or params.star_arg is not cst.MaybeSentinel.DEFAULT or params.kwonly_params \
            or params.star_kwarg or params.posonly_params or len(params.params) != 2 \
            or any(p.default for p in params.params):
        return "it does not take (self, outputs) alone"
    methods = {s.name.value: s for s in klass.body.body if isinstance(s, cst.FunctionDef)}
    new = (entry["epoch_end"], entry["batch_end"].split("(", 1)[0])
    if any(name in methods for name in new):
        return f"the class defines {' or '.join(n for n in new if n in methods)} already"
    step = methods.get(entry["step"])
    if step is not None and any(p.name.value == "dataloader_idx" for p in step.params.params):
        return f"{entry['step']} takes dataloader_idx (with several dataloaders 1.x passed one list per dataloader)"
    attribute = _attribute(entry)
    if any(a.attr.value == attribute for a in nodes(klass, (cst.Attribute,))):
        return f"the class uses self.{attribute} already"
    return None


def rewrite(hook: cst.FunctionDef, entry: dict, module: cst.Module) -> list[cst.FunctionDef]:
    """``hook`` as the batch-end hook that keeps the outputs and the epoch-end hook that reads them."""
    attribute, outputs = _attribute(entry), hook.params.params[1].name.value
    unit = module.default_indent
    keep = cst.parse_statement(
        f"def {entry['batch_end']}:\n"
        f"{unit}# Lightning 2 no longer gathers what {entry['step']} returns for the epoch's end: keep it here.\n"
        f'{unit}if not hasattr(self, "{attribute}"):\n'
        f"{unit}{unit}self.{attribute} = []\n"
        f"{unit}self.{attribute}.append(outputs)\n",
        config=module.config_for_parsing)
    take = [cst.parse_statement(f'{outputs} = getattr(self, "{attribute}", [])\n', config=module.config_for_parsing),
            cst.parse_statement(f"self.{attribute} = []\n", config=module.config_for_parsing)]
    body = list(hook.body.body)
    at = 1 if hook.get_docstring(clean=False) is not None else 0
    read = hook.with_changes(
        name=cst.Name(entry["epoch_end"]),
        params=hook.params.with_changes(params=[hook.params.params[0].with_changes(comma=cst.MaybeSentinel.DEFAULT)]),
        body=hook.body.with_changes(body=[*body[:at], *take, *body[at:]]),
        leading_lines=[cst.EmptyLine(indent=False)],
    )
    return [keep.with_changes(leading_lines=hook.leading_lines), read]


def _attribute(entry: dict) -> str:
    return f"{entry['step']}_outputs"

