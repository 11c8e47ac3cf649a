"""What every converted Transformers train function needs, whichever codemod writes it.

* ``SyncedRayTrainReportCallback``: ``RayTrainReportCallback`` copies the newest checkpoint in
  ``output_dir`` on every worker, but only the main process writes it and the Trainer has no
  barrier in between: another worker can copy (and Ray then store) a half-written checkpoint.
  Seen here: a stored checkpoint whose ``config.json`` was cut short, two workers sharing a folder.
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
