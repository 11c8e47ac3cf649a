"""What the plain PyTorch codemod rewrites inside the code that now runs on Ray Train workers.

Ray Train starts one process per worker, creates the process group and picks each worker's
device (``ray.train.torch.get_device()``), so in the worker code:

* ``dist.init_process_group(...)``, ``dist.destroy_process_group()`` and ``torch.cuda.set_device(...)``
  statements go; ``LOCAL_RANK``/``RANK``/``WORLD_SIZE`` reads become ``ray.train.get_context()``'s;
* ``torch.device("cuda" if ...)``, ``.cuda()``, ``.to("cuda")`` and ``.to(<rank>)`` follow
  ``ray.train.torch.get_device()``;
* ``DistributedDataParallel(model, ...)`` becomes ``ray.train.torch.prepare_model(model)``, and every
  ``DataLoader(...)`` is wrapped in ``ray.train.torch.prepare_data_loader`` (a ``DistributedSampler``
  the script built stays: the loader keeps it, and it reads Ray's process group);
* the model as prepared may be wrapped in DDP (several workers) or not (one): ``model.module``,
  ``model.state_dict()`` and ``model.load_state_dict()`` go through ``getattr(model, "module", model)``
  so the state dict is the bare model's either way.

Whatever is left that Ray cannot take over blindly (other samplers, model parallelism, unknown
``torch.distributed`` calls) is listed in ``unsupported``, for follow-ups.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import libcst as cst
import libcst.matchers as m
from libcst.metadata import ParentNodeProvider

from codemods._statements import root_name
from codemods._trainers import qualified_names
from migrator.walks import nodes

DDP = ("torch.nn.parallel.DistributedDataParallel", "torch.nn.parallel.distributed.DistributedDataParallel")
DATALOADER = ("torch.utils.data.DataLoader", "torch.utils.data.dataloader.DataLoader")
DIST_SAMPLER = ("torch.utils.data.DistributedSampler", "torch.utils.data.distributed.DistributedSampler")
#: Samplers of the whole dataset shuffled or in order, which prepare_data_loader's DistributedSampler
#: replaces with the same choice (shuffle unless the loader's sampler is a SequentialSampler).
RANDOM_SAMPLERS = ("torch.utils.data.RandomSampler", "torch.utils.data.sampler.RandomSampler")
ORDER_SAMPLERS = (*RANDOM_SAMPLERS, "torch.utils.data.SequentialSampler", "torch.utils.data.sampler.SequentialSampler")
REMOVED = {
    "init_process_group": "Ray Train creates the process group",
    "destroy_process_group": "Ray Train tears the process group down",
    "set_device": "Ray Train assigns each worker its device",
}
#: ``torch.distributed`` functions that work unchanged on the process group Ray Train creates.
KNOWN_DIST = frozenset({
    "all_reduce", "all_gather", "all_gather_object", "all_gather_into_tensor", "broadcast", "broadcast_object_list",
    "barrier", "reduce", "reduce_scatter", "gather", "gather_object", "scatter", "scatter_object_list", "get_rank",
    "get_world_size", "is_initialized", "is_available", "ReduceOp", "get_backend", "monitored_barrier",
    "init_process_group", "destroy_process_group", "all_to_all",
})
MODEL_PARALLEL = re.compile(r"FullyShardedDataParallel|fully_shard|DeviceMesh|init_device_mesh|pipelining|tensor\.parallel|\.rpc\b|Pipe\b")
ENV_RANKS = {"LOCAL_RANK": "get_local_rank", "RANK": "get_world_rank", "WORLD_SIZE": "get_world_size",
             "LOCAL_WORLD_SIZE": "get_local_world_size", "NODE_RANK": "get_node_rank"}
GET_DEVICE = "ray.train.torch.get_device()"


def _code(node: cst.CSTNode) -> str:
    return cst.Module([]).code_for_node(node)


def _expr(code: str) -> cst.BaseExpression:
    return cst.parse_expression(code)


@dataclass
class Edits:
    """What the rewriter did, for the report (the nodes are the original ones, for their lines)."""

    removed: list[tuple[cst.CSTNode, str]] = field(default_factory=list)
    ddp: list[cst.CSTNode] = field(default_factory=list)
    loaders: list[cst.CSTNode] = field(default_factory=list)
    devices: list[cst.CSTNode] = field(default_factory=list)
    ranks: list[cst.CSTNode] = field(default_factory=list)
    unwrapped: list[cst.CSTNode] = field(default_factory=list)
    unsupported: list[tuple[cst.CSTNode, str]] = field(default_factory=list)


class WorkerRewriter(cst.CSTTransformer):
    """Rewrites worker code (see the module docstring). ``models``: names holding the prepared model;
    ``ranks``: names that hold a process rank (``.to(rank)`` means the rank's GPU)."""

    def __init__(self, codemod, edits: Edits, models: set[str], ranks: set[str], samplers: set[str] = frozenset()) -> None:
        super().__init__()
        self.samplers = samplers
        self.codemod = codemod
        self.edits = edits
        self.models = models
        self.ranks = ranks

    def _is(self, node: cst.CSTNode, names: tuple[str, ...]) -> bool:
        return any(q in names for q in qualified_names(self.codemod, node))

    # -- statements that go ------------------------------------------------------------------
    def leave_SimpleStatementLine(self, original_node, updated_node):
        if len(original_node.body) == 1 and isinstance(original_node.body[0], cst.Expr):
            call = original_node.body[0].value
            # `dist.init_process_group(...)`, or the name imported: `init_process_group(...)`.
            name = (call.func.attr.value if isinstance(call.func, cst.Attribute) else
                    call.func.value if isinstance(call.func, cst.Name) else None) if isinstance(call, cst.Call) else None
            if name in REMOVED:
                names = qualified_names(self.codemod, call.func)
                if any(q.startswith("torch.") for q in names) or root_name(call.func) in ("dist", "torch"):
                    self.edits.removed.append((original_node, name))
                    return cst.RemoveFromParent()
        return updated_node

    #: (the epoch loop of a helper or class method, the report line to end its body with)
    epoch_report: tuple[cst.For, cst.BaseStatement] | None = None

    def leave_For(self, original_node: cst.For, updated_node: cst.For) -> cst.For:
        if self.epoch_report is not None and original_node is self.epoch_report[0]:
            body = updated_node.body.with_changes(body=[*updated_node.body.body, self.epoch_report[1]])
            return updated_node.with_changes(body=body)
        return updated_node

    def leave_IndentedBlock(self, original_node, updated_node):
        if not updated_node.body:  # every statement went: keep the block valid
            return updated_node.with_changes(body=[cst.SimpleStatementLine([cst.Pass()])])
        return updated_node

    # -- calls -------------------------------------------------------------------------------
    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression:
        func = original_node.func
        if self._is(func, DDP):
            self.edits.ddp.append(original_node)
            first = next((a.value for a in updated_node.args if a.keyword is None or a.keyword.value == "module"), None)
            if first is not None:
                return _expr(f"ray.train.torch.prepare_model({_code(first)})")
        if self._is(func, DATALOADER):
            self._check_sampler(original_node)
            self.edits.loaders.append(original_node)
            return cst.Call(_expr("ray.train.torch.prepare_data_loader"), [cst.Arg(updated_node)])
        if isinstance(func, cst.Attribute) and func.attr.value == "device" and "torch.device" in qualified_names(self.codemod, func):
            arg = original_node.args[0].value if original_node.args else None
            if not (isinstance(arg, cst.SimpleString) and arg.evaluated_value == "cpu"):
                self.edits.devices.append(original_node)
                return _expr(GET_DEVICE)
        if self._is(func, ("torch.accelerator.current_accelerator",)):
            # PyTorch 2.6+'s device choice (the MNIST example): Ray picked each worker's device.
            self.edits.devices.append(original_node)
            return _expr(GET_DEVICE)
        if isinstance(func, cst.Attribute) and func.attr.value == "cuda" and not _module_call(func):
            self.edits.devices.append(original_node)
            return updated_node.with_changes(func=updated_node.func.with_changes(attr=cst.Name("to")),
                                             args=[cst.Arg(_expr(GET_DEVICE))])
        if isinstance(func, cst.Attribute) and func.attr.value == "to" and original_node.args:
            arg = original_node.args[0]
            if arg.keyword in (None,) or arg.keyword.value == "device":
                if self._gpu_spec(arg.value):
                    self.edits.devices.append(original_node)
                    return updated_node.with_changes(args=[cst.Arg(_expr(GET_DEVICE)), *updated_node.args[1:]])
        env = _env_rank(original_node)
        if env is not None:
            self.edits.ranks.append(original_node)
            return _expr(f"ray.train.get_context().{env}()")
        if isinstance(func, cst.Attribute) and func.attr.value in ("state_dict", "load_state_dict"):
            inner = updated_node.func.value
            if isinstance(inner, cst.Name) and inner.value in self.models:
                self.edits.unwrapped.append(original_node)
                return updated_node.with_changes(func=updated_node.func.with_changes(value=_bare(inner.value)))
        names = qualified_names(self.codemod, func)
        for q in names:
            if q.startswith("torch.distributed.") and q.split(".")[2] not in KNOWN_DIST and not q.startswith("torch.distributed.DistributedSampler"):
                self.edits.unsupported.append((original_node, f"`{q}` is not mapped: it now runs on the process group Ray Train creates (gloo on CPU, nccl on GPU); check it still does what it should"))
            if MODEL_PARALLEL.search(q):
                self.edits.unsupported.append((original_node, f"model parallelism (`{q}`) is not converted: prepare_model gives data parallelism (DDP); keep your own wrapping with ray.train.torch.prepare_model(model, parallel_strategy=None) or use parallel_strategy=\"fsdp\""))
        return updated_node

    def leave_Attribute(self, original_node: cst.Attribute, updated_node: cst.Attribute) -> cst.BaseExpression:
        # `model.module`, or `self.model.module` where a method wrapped `self.model` in DDP.
        if (original_node.attr.value == "module" and isinstance(original_node.value, (cst.Name, cst.Attribute))
                and _code(original_node.value) in self.models):
            self.edits.unwrapped.append(original_node)
            return _bare(_code(original_node.value))
        return updated_node

    def leave_IfExp(self, original_node: cst.IfExp, updated_node: cst.IfExp) -> cst.BaseExpression:
        """``"cuda" if torch.cuda.is_available() else "cpu"``: the script's own device choice."""
        if any(isinstance(v, cst.SimpleString) and v.evaluated_value.startswith("cuda") for v in (original_node.body, original_node.orelse)):
            self.edits.devices.append(original_node)
            return _expr(GET_DEVICE)
        return updated_node

    def leave_Subscript(self, original_node: cst.Subscript, updated_node: cst.Subscript) -> cst.BaseExpression:
        env = _env_name(original_node)
        if env is not None and not isinstance(self.codemod.get_metadata(ParentNodeProvider, original_node, None), cst.AssignTarget):
            self.edits.ranks.append(original_node)
            return _expr(f"ray.train.get_context().{env}()")
        return updated_node

    def _gpu_spec(self, value: cst.BaseExpression) -> bool:
        if isinstance(value, cst.SimpleString):
            return value.evaluated_value.startswith("cuda")
        if isinstance(value, cst.FormattedString):
            return _code(value).lstrip("f\"'").startswith("cuda")
        if isinstance(value, cst.Name):
            return value.value in self.ranks
        if isinstance(value, cst.Attribute) and isinstance(value.value, cst.Name) and value.value.value == "self":
            return value.attr.value in self.ranks  # `.to(self.gpu_id)` in a trainer class
        return False

    def _check_sampler(self, call: cst.Call) -> None:
        for arg in call.args:
            if arg.keyword is None or arg.keyword.value not in ("sampler", "batch_sampler"):
                continue
            value = arg.value
            if isinstance(value, cst.Name) and value.value == "None":
                continue
            if isinstance(value, cst.Call) and self._is(value.func, DIST_SAMPLER):
                continue
            if isinstance(value, cst.Name) and value.value in self.samplers:
                continue
            if (arg.keyword.value == "sampler" and isinstance(value, cst.Call) and self._is(value.func, ORDER_SAMPLERS)
                    and len(value.args) == 1 and value.args[0].keyword is None and not value.args[0].star):
                continue  # RandomSampler(dataset) / SequentialSampler(dataset): see ORDER_SAMPLERS
            self.edits.unsupported.append((call, f"custom `{arg.keyword.value}=`: prepare_data_loader replaces it with a DistributedSampler on several workers; keep it with prepare_data_loader(..., add_dist_sampler=False) and split the data per worker yourself"))


def _module_call(func: cst.Attribute) -> bool:
    """``torch.cuda.x`` is a module function, not ``tensor.cuda()``."""
    return root_name(func) == "torch" and isinstance(func.value, cst.Name)


def _bare(name: str) -> cst.BaseExpression:
    return _expr(f'getattr({name}, "module", {name})')


def _env_key(node: cst.BaseExpression) -> str | None:
    if isinstance(node, cst.SimpleString) and node.evaluated_value in ENV_RANKS:
        return ENV_RANKS[node.evaluated_value]
    return None


def _env_name(node: cst.Subscript) -> str | None:
    """``os.environ["LOCAL_RANK"]``."""
    if m.matches(node.value, m.Attribute(value=m.Name("os"), attr=m.Name("environ"))) and len(node.slice) == 1:
        index = node.slice[0].slice
        if isinstance(index, cst.Index):
            return _env_key(index.value)
    return None


def _env_rank(call: cst.Call) -> str | None:
    """``int(os.environ["RANK"])``, ``os.environ.get("RANK", ...)``, ``os.getenv("RANK")``, ``int(...)`` of those."""
    func = call.func
    if isinstance(func, cst.Name) and func.value == "int" and len(call.args) == 1:
        inner = call.args[0].value
        if isinstance(inner, cst.Subscript):
            return _env_name(inner)
        if isinstance(inner, cst.Call):
            return _env_rank(inner)
        return None
    getter = (m.matches(func, m.Attribute(value=m.Attribute(value=m.Name("os"), attr=m.Name("environ")), attr=m.Name("get")))
              or m.matches(func, m.Attribute(value=m.Name("os"), attr=m.Name("getenv"))))
    if getter and call.args:
        return _env_key(call.args[0].value)
    return None


# -- finding things -------------------------------------------------------------------------------
def calls_in(node: cst.CSTNode) -> list[cst.Call]:
    # From the module's recorded walk: asked again and again of one tree and its statements.
    return list(nodes(node, (cst.Call,)))


def has_backward(node: cst.CSTNode) -> bool:
    return any(isinstance(c.func, cst.Attribute) and c.func.attr.value == "backward" for c in calls_in(node))


def called_names(node: cst.CSTNode) -> set[str]:
    return {c.func.value for c in calls_in(node) if isinstance(c.func, cst.Name)}


def main_guards(module: cst.Module) -> list[cst.If]:
    """The module's ``if __name__ == "__main__":`` blocks."""
    return [s for s in module.body if isinstance(s, cst.If) and "__main__" in _code(s.test)]


def training_functions(module: cst.Module) -> set[str]:
    """Top-level functions that run a backward pass, directly or through one another."""
    functions = {s.name.value: s for s in module.body if isinstance(s, cst.FunctionDef)}
    found = {name for name, fn in functions.items() if has_backward(fn.body)}
    while True:
        more = {name for name, fn in functions.items() if name not in found and called_names(fn.body) & found}
        if not more:
            return found
        found |= more


def reachable_functions(module: cst.Module, roots: list[cst.CSTNode], exclude: set[str]) -> set[str]:
    """Top-level functions the code in ``roots`` calls, directly or through one another."""
    functions = {s.name.value: s for s in module.body if isinstance(s, cst.FunctionDef)}
    todo = set().union(*(called_names(r) for r in roots)) if roots else set()
    found: set[str] = set()
    while todo:
        name = todo.pop()
        if name in found or name in exclude or name not in functions:
            continue
        found.add(name)
        todo |= called_names(functions[name].body)
    return found


def parameters_owner(call: cst.Call) -> str | None:
    """``model`` for ``SGD(model.parameters(), ...)`` (also param groups built from it)."""
    args = [a for a in call.args if a.keyword is None or a.keyword.value == "params"]
    if not args:
        return None
    for inner in calls_in(args[0].value):
        if isinstance(inner.func, cst.Attribute) and inner.func.attr.value in ("parameters", "named_parameters"):
            return root_name(inner.func.value)
    return None


# -- torchrun instructions -------------------------------------------------------------------------
_TORCHRUN = re.compile(r"(?:torchrun|python3?\s+-m\s+torch\.distributed\.(?:run|launch))\b([^\n]*)")
_SCRIPT = re.compile(r"(?:(?<=\s)|^)(?:[^\s-]\S*\.py\b)")
_TORCHRUN_FLAGS = frozenset({"--standalone", "--no-python", "--no_python", "--use_env", "--use-env", "-m", "--module",
                             "--run-path", "--run_path"})


@dataclass
class TorchrunText:
    processes: int | None = None
    nodes: int = 1
    dropped: list[str] = field(default_factory=list)

    def rewrite(self, text: str) -> str:
        return _TORCHRUN.sub(self._replace, text)

    def _replace(self, match: re.Match) -> str:
        rest = match.group(1)
        script = _SCRIPT.search(rest)
        if script is None:
            return match.group(0)
        tokens = rest[: script.start()].split()
        i = 0
        while i < len(tokens):
            option, _, value = tokens[i].partition("=")
            if not value and option not in _TORCHRUN_FLAGS and i + 1 < len(tokens):
                value = tokens[i + 1]
                i += 1
            self.dropped.append(f"{option} {value}".strip())
            if option in ("--nproc_per_node", "--nproc-per-node") and value.isdigit():
                self.processes = int(value)
            elif option == "--nnodes" and value.isdigit():
                self.nodes = int(value)
            i += 1
        return "python " + rest[script.start():]

    @property
    def workers(self) -> int | None:
        return self.processes * self.nodes if self.processes else None


class TorchrunTextRewriter(cst.CSTTransformer):
    """``torchrun ... x.py`` (and ``python -m torch.distributed.launch``) -> ``python x.py`` in comments and docstrings."""

    def __init__(self, text: TorchrunText) -> None:
        super().__init__()
        self.text = text
        self.hits: list[cst.CSTNode] = []

    def leave_Comment(self, original_node, updated_node):
        new = self.text.rewrite(updated_node.value)
        if new != updated_node.value:
            self.hits.append(original_node)
            return updated_node.with_changes(value=new)
        return updated_node

    def leave_SimpleString(self, original_node, updated_node):
        new = self.text.rewrite(updated_node.value)
        if new != updated_node.value:
            self.hits.append(original_node)
            return updated_node.with_changes(value=new)
        return updated_node
