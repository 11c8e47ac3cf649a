"""What every converted Transformers train function needs, whichever codemod writes it.

* ``SyncedRayTrainReportCallback``: ``RayTrainReportCallback`` copies the newest checkpoint in
  ``output_dir`` on every worker, but only the main process writes it and the Trainer has no
  barrier in between: another worker can copy (and Ray then store) a half-written checkpoint.
  Seen here: a stored checkpoint whose ``config.json`` was cut short, two workers sharing a folder.
* It also makes the Trainer save after every evaluation, and at each epoch's end when the
  Trainer neither saves nor evaluates: ``RayTrainReportCallback`` reports only in ``on_save``
  (RAY-FACTS.md), so ``save_strategy="no"`` or a schedule other than the evaluation's would keep
  metrics from Ray. Done at run time, it holds for arguments from a command line or a config
  file, which no codemod can read.
* The CPU prologue: without a GPU, the Trainer's Accelerate backend runs each worker alone
  (world size 1, all the data, no gradient sync) unless ``ACCELERATE_USE_CPU`` is set. Checked
  at run time, so the same file runs unchanged on GPU workers.
"""

from __future__ import annotations

from libcst.codemod.visitors import AddImportsVisitor

CALLBACK_MODULE = "ray.train.huggingface.transformers"
SYNCED_CALLBACK = "SyncedRayTrainReportCallback"

# One-line docstring: the class may be generated inside a function, and a string's own
# continuation lines would not follow the indentation.
_CLASS = '''class {name}({base}):
    """RayTrainReportCallback that reports once the main process has written the checkpoint."""

    def on_save(self, args, state, control, **kwargs):
        # Every worker copies the newest checkpoint to report it; only the main process writes it.
        if torch.distributed.is_initialized():
            torch.distributed.barrier()
        return super().on_save(args, state, control, **kwargs)

    def on_evaluate(self, args, state, control, **kwargs):
        # Ray hears of metrics only when the Trainer saves: save after every evaluation.
        control.should_save = True
        return control

    def on_epoch_end(self, args, state, control, **kwargs):
        # A Trainer that neither saves nor evaluates would report nothing: save each epoch.
        if args.save_strategy == "no" and args.eval_strategy == "no":
            control.should_save = True
        return control
'''

CPU_COMMENT = "# Without a GPU, the Trainer trains distributed only when told to use the CPU."
_CPU = 'if get_device().type == "cpu":\n    os.environ["ACCELERATE_USE_CPU"] = "true"\n'


def synced_callback_class(context, name: str = SYNCED_CALLBACK, base: str = "RayTrainReportCallback") -> str:
    """The class's code; imports what it uses (``base`` is imported by the caller if aliased)."""
    if base == "RayTrainReportCallback":
        AddImportsVisitor.add_needed_import(context, CALLBACK_MODULE, "RayTrainReportCallback")
    AddImportsVisitor.add_needed_import(context, "torch.distributed")
    return _CLASS.format(name=name, base=base)


def cpu_prologue(context) -> str:
    """The statement (with no comment) that makes CPU workers train distributed."""
    AddImportsVisitor.add_needed_import(context, "os")
    AddImportsVisitor.add_needed_import(context, "ray.train.torch", "get_device")
    return _CPU
