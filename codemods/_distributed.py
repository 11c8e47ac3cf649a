"""Hand-made distributed set-up that Ray Train now owns: reported, never silently rewritten.

Ray starts one process per worker, sets ``RANK``/``WORLD_SIZE``/``MASTER_ADDR``, creates the
process group and sets ``CUDA_VISIBLE_DEVICES``. A script that does any of that itself conflicts
with Ray (a second ``init_process_group`` raises) or fights it (device juggling), so each place
is a follow-up for a human. Shared by every framework codemod.
"""

from __future__ import annotations

import libcst as cst

from codemods._statements import root_name
from migrator.walks import nodes

_CALLS = {
    "init_process_group": "Ray Train creates the process group on every worker; remove this call",
    "set_device": "Ray Train assigns each worker its device; remove torch.cuda.set_device",
    "spawn": "Ray Train starts the worker processes; remove the multiprocessing spawn and call the training directly",
    "destroy_process_group": "Ray Train tears the process group down; remove this call",
}


class _Finder(cst.CSTVisitor):
    def __init__(self, local_rank: bool = True) -> None:
        self.hits: list[tuple[cst.CSTNode, str]] = []
        self._local_rank_reported = not local_rank

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        if isinstance(func, cst.Attribute) and func.attr.value in _CALLS:
            root = root_name(func)
            if func.attr.value != "spawn" or root in ("mp", "multiprocessing", "torch"):
                self.hits.append((node, _CALLS[func.attr.value]))

    def visit_SimpleString(self, node: cst.SimpleString) -> None:
        if "CUDA_VISIBLE_DEVICES" in node.value:
            self.hits.append((node, "Ray Train sets CUDA_VISIBLE_DEVICES for each worker; remove this device juggling"))
        elif node.value.strip("'\"").lstrip("-") in ("local_rank", "local-rank") and not self._local_rank_reported:
            self._report_local_rank(node)

    def visit_Attribute(self, node: cst.Attribute) -> None:
        if node.attr.value == "local_rank" and not self._local_rank_reported:
            self._report_local_rank(node)

    def visit_Arg(self, node: cst.Arg) -> None:
        if node.keyword is not None and node.keyword.value == "local_rank" and not self._local_rank_reported:
            self._report_local_rank(node)

    def _report_local_rank(self, node: cst.CSTNode) -> None:
        self._local_rank_reported = True
        self.hits.append(
            (node, "local_rank comes from Ray now (ray.train.get_context().get_local_rank()); drop the local_rank argument")
        )


def report_distributed_setup(codemod, module: cst.Module, local_rank: bool = True) -> None:
    """Add a follow-up for each place where the script sets up distribution by hand.

    ``local_rank=False`` for frameworks that keep handing out ranks under Ray (Lightning's
    ``self.local_rank`` comes from ``RayLightningEnvironment``).
    """
    finder = _Finder(local_rank)
    # What a walk would call the finder with, in the same order, from the module's recorded walk.
    visits = {cst.Call: finder.visit_Call, cst.SimpleString: finder.visit_SimpleString,
              cst.Attribute: finder.visit_Attribute, cst.Arg: finder.visit_Arg}
    for node in nodes(module, tuple(visits)):
        visits[type(node)](node)
    for node, message in finder.hits:
        codemod.follow_up(node, message)
