"""The machinery every framework codemod shares: turn a script's training into a ``train_func``.

Given the block that trains (the module body, the body of ``if __name__ == "__main__":`` or a
top-level function such as ``main()``) and the statements that must run on the workers (the
seeds: building the trainer and training it), this module decides what moves and builds::

    def train_func(config):                      # runs on every Ray worker
        args = config["args"]                    # parsed on the driver, handed over
        os.chdir(config["launch_dir"])           # relative paths resolve as before
        ...the moved statements, comments kept...

    ray_trainer = TorchTrainer(train_func, train_loop_config={...}, scaling_config=...)
    result = ray_trainer.fit()

What stays on the driver: imports, the docstring, functions and classes defined before the
training, literal constants before it, argument parsing (``parse_args``, ``HfArgumentParser``,
``sys.argv``: workers have other argv) with everything it depends on, and - at module level -
every statement binding a name that something left at module level still reads (so a global
function keeps finding its globals). Statements after the training that use none of what moved
stay on the driver and run after ``fit()``.
"""

from __future__ import annotations

import builtins
import re
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

import libcst as cst
from libcst.codemod.visitors import AddImportsVisitor
from libcst.metadata import ParentNodeProvider, PositionProvider, ScopeProvider

from codemods import _return_value as rv
from codemods._statements import Metadata, StatementFacts, analyse_block
from codemods._torch_loop import calls_in
from codemods._trainers import qualified_names
from migrator import walks

#: Calls that read the command line (argparse, HfArgumentParser, trl's TrlParser, and friends).
ARGV_CALLS = frozenset(
    {"parse_args", "parse_known_args", "parse_args_into_dataclasses", "parse_json_file", "parse_yaml_file",
     "parse_args_and_config"}
)

Owner = cst.Module | cst.FunctionDef | cst.If
#: Given a moved statement's index in the block and the statement, what goes into train_func.
Rewrite = Callable[[int, cst.BaseStatement], Sequence[cst.BaseStatement]]


class Unsupported(Exception):
    """The training cannot be moved safely; the message says why (it becomes a follow-up)."""


@dataclass
class Plan:
    #: Index of the owning statement in ``module.body``; None when the module itself trains.
    owner_index: int | None
    moved: list[int]
    config_names: list[str]
    param: str
    returns_value: bool = False
    kept_reasons: dict[int, str] = field(default_factory=dict)
    #: Names the driver binds before the training (what ``config_names`` is chosen from).
    provided: set[str] = field(default_factory=set)
    #: The train function takes its config even when no name is unpacked from it.
    needs_param: bool = False
    #: Seeding calls the driver keeps before the training, as (index in the block, statement as
    #: planned); index None for one at module level above a function or guard that trains: they
    #: run again in the train function (``seeding_left_behind``).
    seeding: list[tuple[int | None, cst.BaseStatement]] = field(default_factory=list)
    #: Import lines of the owning function that the moved code needs (``from trl import
    #: SFTTrainer`` inside ``main()``), as (index in the block, line as planned, names it binds):
    #: run again first thing in the train function, rather than their modules and classes
    #: handed over through the config.
    imports: list[tuple[int, cst.BaseStatement, frozenset[str]]] = field(default_factory=list)


# -- finding the block -------------------------------------------------------------------------
def is_main_guard(node: cst.CSTNode) -> bool:
    if not isinstance(node, cst.If) or not isinstance(node.test, cst.Comparison):
        return False
    test = node.test
    parts = [test.left] + [c.comparator for c in test.comparisons]
    names = {p.value for p in parts if isinstance(p, cst.Name)}
    strings = {p.evaluated_value for p in parts if isinstance(p, cst.SimpleString)}
    return "__name__" in names and "__main__" in strings


def owner_of(node: cst.CSTNode, module: cst.Module, parents, *, through_nested: bool = False) -> Owner:
    """The block that holds ``node`` at statement level: a top-level function, the main guard, or the module.

    With ``through_nested``, a function nested in another (``@find_executable_batch_size``'s inner
    loop, a ``train()`` defined inside ``main()``) counts as part of the function around it: the
    outer function's block holds its ``def`` and its call, and both move together.
    """
    current = node
    while current is not module:
        parent = parents[current]
        if through_nested and isinstance(parent, cst.FunctionDef) and parents[parent] is not module and _in_function(parent, module, parents):
            current = parent
            continue
        if isinstance(parent, (cst.FunctionDef, cst.Lambda, cst.ClassDef)):
            if isinstance(parent, cst.FunctionDef) and parents[parent] is module:
                if not isinstance(parent.body, cst.IndentedBlock):
                    raise Unsupported(f"{parent.name.value}() is written on one line")
                return parent
            kind = "a class" if isinstance(parent, cst.ClassDef) else "a nested function or lambda"
            holder = parents[parents[parent]] if isinstance(parent, cst.FunctionDef) and isinstance(parents[parent], cst.IndentedBlock) else None
            if isinstance(holder, cst.ClassDef):  # a method: a train function cannot take its `self`
                kind = f"the method {parent.name.value}() of class {holder.name.value}"
                raise Unsupported(f"the training runs inside {kind}; move it into a top-level function that takes what it uses of `self` as arguments")
            raise Unsupported(f"the training runs inside {kind}; move it into a top-level function first")
        if is_main_guard(parent) and parents[parent] is module and isinstance(parent.body, cst.IndentedBlock):
            return parent
        current = parent
    return module


def enclosing_method(node: cst.CSTNode, module: cst.Module, parents) -> tuple[cst.ClassDef, cst.FunctionDef] | None:
    """The method of a module-level class that ``node`` sits in (at any depth), or None."""
    current = node
    while current is not module:
        parent = parents[current]
        if isinstance(parent, cst.FunctionDef) and isinstance(parents[parent], cst.IndentedBlock):
            holder = parents[parents[parent]]
            if isinstance(holder, cst.ClassDef) and parents[holder] is module:
                return holder, parent
        current = parent
    return None


@dataclass(frozen=True)
class MethodCall:
    """A training inside ``method`` of the script's own class ``cls``, and what runs it: the one
    ``call`` of that method outside the class and the statements that build its instance."""

    cls: cst.ClassDef
    method: cst.FunctionDef
    call: cst.Call
    built: list[cst.BaseStatement]


def method_call(node: cst.CSTNode, module: cst.Module, parents) -> MethodCall | None:
    """A training inside a method of a class of this module (``MRCTrainer.train()`` that builds and
    trains a Trainer): the one call of that method outside the class, on an instance built beside it
    (``MRCTrainer(args).train()``, or ``t = MRCTrainer(args)`` then ``t.train()`` in one block), and
    the statement that builds the instance. Moving those two moves the whole training, the way a
    call of a top-level function that trains does. None when there is no such single call.
    """
    found = enclosing_method(node, module, parents)
    if found is None:
        return None
    cls, method = found
    calls = []
    for call in calls_in(module):
        if not (isinstance(call.func, cst.Attribute) and call.func.attr.value == method.name.value):
            continue
        if enclosing_method(call, module, parents) is not None:
            continue  # called from a method (`self.train()`): the call of that one would be the site
        target = call.func.value
        if isinstance(target, cst.Call) and isinstance(target.func, cst.Name) and target.func.value == cls.name.value:
            calls.append(MethodCall(cls, method, call, []))
        elif isinstance(target, cst.Name):
            try:
                block = block_of(owner_of(call, module, parents))
            except Unsupported:
                continue
            at = statement_index(block, call, parents)
            built = [s for s in block[:at] if _builds(s, target.value, cls.name.value)]
            if built:
                calls.append(MethodCall(cls, method, call, built[-1:]))
    return calls[0] if len(calls) == 1 else None


def report_method_call(codemod, site, via: MethodCall) -> None:
    codemod.change(via.call, f"`{site.var}` trains in {via.cls.name.value}.{via.method.name.value}(), which this call runs: "
                   "the call, with what it needs, runs on every worker")


def _builds(stmt: cst.BaseStatement, var: str, cls: str) -> bool:
    """``var = cls(...)`` (one target)."""
    if not isinstance(stmt, cst.SimpleStatementLine) or len(stmt.body) != 1 or not isinstance(stmt.body[0], cst.Assign):
        return False
    assign = stmt.body[0]
    return (len(assign.targets) == 1 and isinstance(assign.targets[0].target, cst.Name)
            and assign.targets[0].target.value == var and isinstance(assign.value, cst.Call)
            and isinstance(assign.value.func, cst.Name) and assign.value.func.value == cls)


def _in_function(node: cst.CSTNode, module: cst.Module, parents) -> bool:
    """Whether ``node`` sits inside a function, not directly in a class."""
    current = parents[node]
    while current is not module:
        if isinstance(current, cst.ClassDef):
            return False
        if isinstance(current, cst.FunctionDef):
            return True
        current = parents[current]
    return False


def block_of(owner: Owner) -> list[cst.BaseStatement]:
    if isinstance(owner, cst.Module):
        return list(owner.body)
    return list(owner.body.body)  # IndentedBlock, checked in owner_of


def statement_index(statements: Sequence[cst.BaseStatement], node: cst.CSTNode, parents) -> int:
    current = node
    while True:
        for i, stmt in enumerate(statements):
            if stmt is current:
                return i
        current = parents[current]


# -- classifying statements ------------------------------------------------------------------
def _is_literal(node: cst.BaseExpression) -> bool:
    if isinstance(node, (cst.SimpleString, cst.ConcatenatedString, cst.Integer, cst.Float, cst.Imaginary)):
        return True
    if isinstance(node, cst.Name):
        return node.value in ("True", "False", "None")
    if isinstance(node, cst.UnaryOperation):
        return _is_literal(node.expression)
    if isinstance(node, (cst.Tuple, cst.List, cst.Set)):
        return all(isinstance(e, cst.Element) and _is_literal(e.value) for e in node.elements)
    if isinstance(node, cst.Dict):
        return all(isinstance(e, cst.DictElement) and _is_literal(e.key) and _is_literal(e.value) for e in node.elements)
    return False


def is_constant(stmt: cst.BaseStatement) -> bool:
    """``NAME = <literal>``: configuration the driver may keep; train_func reads it as a global."""
    if not isinstance(stmt, cst.SimpleStatementLine) or len(stmt.body) != 1:
        return False
    small = stmt.body[0]
    if isinstance(small, cst.Assign):
        return all(isinstance(t.target, cst.Name) for t in small.targets) and _is_literal(small.value)
    if isinstance(small, cst.AnnAssign):
        return isinstance(small.target, cst.Name) and small.value is not None and _is_literal(small.value)
    return False


def is_import_line(stmt: cst.BaseStatement) -> bool:
    return isinstance(stmt, cst.SimpleStatementLine) and all(isinstance(s, (cst.Import, cst.ImportFrom)) for s in stmt.body)


def imports_to_copy(statements, facts: list[StatementFacts], lines: Iterable[int], reads: set[str],
                    rebound: set[str]) -> list[tuple[int, cst.BaseStatement, frozenset[str]]]:
    """Of ``lines``, the import lines that bind a name in ``reads`` and none in ``rebound`` (names
    another statement or a parameter binds too): what a train function imports again itself."""
    return [(i, statements[i], frozenset(facts[i].binds)) for i in lines
            if is_import_line(statements[i]) and facts[i].binds & reads and not facts[i].binds & rebound]


def is_structural(stmt: cst.BaseStatement, index: int) -> bool:
    """Imports, the docstring and the main guard never move."""
    if isinstance(stmt, cst.SimpleStatementLine):
        if is_import_line(stmt):
            return True
        if index == 0 and len(stmt.body) == 1 and isinstance(stmt.body[0], cst.Expr):
            return isinstance(stmt.body[0].value, (cst.SimpleString, cst.ConcatenatedString))
    return is_main_guard(stmt)


class _ArgvFinder(cst.CSTVisitor):
    def __init__(self, argv_functions: set[str]) -> None:
        self.argv_functions = argv_functions
        self.found = False

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        name = func.attr.value if isinstance(func, cst.Attribute) else func.value if isinstance(func, cst.Name) else None
        if name in ARGV_CALLS or (isinstance(func, cst.Name) and name in self.argv_functions):
            self.found = True

    def visit_Attribute(self, node: cst.Attribute) -> None:
        if isinstance(node.value, cst.Name) and node.value.value == "sys" and node.attr.value == "argv":
            self.found = True


def reads_argv(node: cst.CSTNode, argv_functions: set[str]) -> bool:
    # What _ArgvFinder would meet, from the module's recorded walk (asked of every statement).
    finder = _ArgvFinder(argv_functions)
    for found in walks.nodes(node, (cst.Call, cst.Attribute)):
        if type(found) is cst.Call:
            finder.visit_Call(found)
        else:
            finder.visit_Attribute(found)
        if finder.found:
            return True
    return False


def argv_functions(module: cst.Module) -> set[str]:
    """Top-level functions that parse the command line, directly or through one another."""
    functions = {s.name.value: s for s in module.body if isinstance(s, cst.FunctionDef)}
    found: set[str] = set()
    while True:
        more = {name for name, fn in functions.items() if name not in found and reads_argv(fn.body, found)}
        if not more:
            return found
        found |= more


# -- planning ----------------------------------------------------------------------------------
def plan(
    codemod: cst.codemod.Codemod,
    module: cst.Module,
    owner: Owner,
    seeds: set[int],
    window: range | None = None,
) -> Plan:
    """Decide which statements of ``owner`` move into the train function. Raises ``Unsupported``.

    ``window`` limits what may move to one stretch of the block, when several trainings share it
    (see ``_several_trainings``): what lies outside moves into the other trainings' functions, so
    it neither stays on the driver nor provides names to this one.
    """
    positions = Metadata(codemod, PositionProvider)
    scopes = Metadata(codemod, ScopeProvider)
    statements = block_of(owner)
    module_level = not isinstance(owner, cst.FunctionDef)
    scope = scopes[module] if module_level else scopes[statements[0]]
    facts = analyse_block(statements, scope, module)
    parsing = argv_functions(module)

    driver = _driver_statements(statements, facts, parsing)
    if driver & seeds:
        # `Runner(parser.parse_args()).train()`: the workers cannot parse the driver's argv.
        raise Unsupported("the statement that trains also reads the command line: parse it into a name on a line of its own first")
    window = window or range(len(statements))
    first_work = min(seeds)
    for i, stmt in enumerate(statements):
        if i not in window:
            continue
        if i in driver or is_structural(stmt, i):
            continue
        if module_level and (isinstance(stmt, (cst.FunctionDef, cst.ClassDef)) or is_constant(stmt)):
            continue
        first_work = min(first_work, i)
        break
    def movable(i: int) -> bool:
        return i in window and i not in driver and not is_structural(statements[i], i)

    def definition(i: int) -> bool:
        return module_level and isinstance(statements[i], (cst.FunctionDef, cst.ClassDef))

    # Everything from the first real work to the training moves, except (at module level)
    # functions and classes: those move only when they read something that moved (as
    # `tokenize_function` reads the tokenizer in Ray's guide); the others stay global.
    moved: set[int] = {i for i in range(first_work, max(seeds) + 1) if movable(i) and not definition(i)}
    bound = set().union(*(facts[i].binds for i in moved))
    # Work after the training that uses anything that moved goes with it (evaluate, save_model...).
    # What such work changes in place follows it too (`plt.plot(...)` then `plt.show()`): the
    # state it changed lives on the workers.
    for j in range(max(seeds) + 1, window.stop):
        if movable(j) and (facts[j].reads | facts[j].mutates) & bound:
            moved.add(j)
            bound |= facts[j].binds | facts[j].mutates
    # Statements between moved ones move too, or they would run out of order.
    for j in range(first_work, max(moved) + 1):
        if movable(j) and not definition(j) and j not in moved:
            moved.add(j)
            bound |= facts[j].binds
    changed = True
    while changed:
        changed = False
        for j in range(first_work, max(moved) + 1):
            if j not in moved and movable(j) and definition(j) and facts[j].reads & bound:
                moved.add(j)
                bound |= facts[j].binds
                changed = True

    # Statements of the other trainings' stretches that move into their functions.
    elsewhere = {
        i for i in range(len(statements))
        if i not in window and i not in driver and not is_structural(statements[i], i)
        and not (module_level and (isinstance(statements[i], (cst.FunctionDef, cst.ClassDef)) or is_constant(statements[i])))
    }
    kept_reasons: dict[int, str] = {}
    if module_level:
        _keep_globals_needed(module, owner, statements, facts, moved, driver, scopes, positions, kept_reasons, elsewhere)
    lost = seeds - moved
    if lost:
        i = min(lost)
        raise Unsupported(
            f"line {positions[statements[i]].start.line} must run on the workers, but "
            f"{kept_reasons.get(i, 'the driver needs it too')}"
        )

    kept_before = [i for i in range(len(statements)) if i not in moved and i not in elsewhere and i < max(moved)]
    reads = set().union(*(facts[i].reads for i in moved))
    binds = set().union(*(facts[i].binds for i in moved))
    imports: list[tuple[int, cst.BaseStatement, frozenset[str]]] = []
    if module_level:  # the train function reads the module's imports as globals, as before
        provided = set().union(*(facts[i].binds for i in driver))
    else:
        provided = set().union(*(facts[i].binds for i in kept_before)) | _params(owner)
        # A function's own imports run again in the train function, where no other kept statement
        # or parameter binds the same name: a module or class is no value to hand over.
        rebound = set().union(*(facts[i].binds for i in kept_before if not is_import_line(statements[i]))) | _params(owner)
        imports = imports_to_copy(statements, facts, kept_before, reads, rebound)
        provided -= set().union(*(names for _, _, names in imports))
    order = {name: k for k, name in enumerate(_param_list(owner))} if not module_level else {}
    for i in (sorted(driver) if module_level else kept_before):
        for name, at in sorted(facts[i].bound_at.items(), key=lambda item: item[1]):
            order.setdefault(name, len(order))
    seeding = seeding_left_behind(codemod, module, statements, facts, moved, elsewhere, provided)
    needed = reads | set().union(*(facts[i].reads for i in seeding))
    above = [] if module_level else _seeding_above(codemod, module, owner, reads | binds | needed | _params(owner))
    config_names = sorted(needed & provided, key=lambda name: order.get(name, len(order)))
    # The parameter must not collide with anything the moved code or the seeding copies use
    # (scripts often have a model `config` of their own).
    taken = needed | binds | set(config_names) | set().union(*(copy_reads for _, copy_reads in above))
    param = next(p for p in ("config", "loop_config", "ray_train_config") if p not in taken)
    returns_value = bool(rv.returns([statements[i] for i in moved]))
    owner_index = None if isinstance(owner, cst.Module) else list(module.body).index(owner)
    return Plan(owner_index, sorted(moved), config_names, param, returns_value, kept_reasons, provided,
                seeding=[*((None, st) for st, _ in above), *((i, statements[i]) for i in seeding)], imports=imports)


@dataclass
class SitePlan:
    """Where one training lives and what of it moves: the step every framework codemod starts with."""

    owner: Owner
    block: list[cst.BaseStatement]
    plan: Plan

    @property
    def where(self) -> str:
        """The owner in words, for the report: ``main()``, ``main guard``, ``module level``."""
        if isinstance(self.owner, cst.If):
            return "main guard"
        return f"{self.owner.name.value}()" if isinstance(self.owner, cst.FunctionDef) else "module level"


def plan_for_site(
    codemod: cst.codemod.Codemod,
    module: cst.Module,
    trained: Sequence[cst.CSTNode],
    built: Sequence[cst.BaseStatement],
    *,
    what: str = "Trainer",
    verb: str = "trained",
) -> SitePlan:
    """Trained site -> owner -> seeds -> plan, for one training. Raises ``Unsupported``.

    ``trained`` are the calls that train (``trainer.fit(...)``, every ``accelerator.prepare(...)``);
    the first decides the owner. ``built`` are the statements that build the trainer; they must
    sit in the same block. A training inside a nested function moves with the function around it.
    """
    parents = Metadata(codemod, ParentNodeProvider)
    owner = owner_of(trained[0], module, parents, through_nested=True)
    block = block_of(owner)
    seeds = {statement_index(block, node, parents) for node in trained}
    for stmt in built:
        if owner_of(stmt, module, parents, through_nested=True) is not owner:
            raise Unsupported(f"the {what} is built in one function and {verb} in another")
        seeds.add(statement_index(block, stmt, parents))
    return SitePlan(owner, block, plan(codemod, module, owner, seeds))


def plan_or_follow_up(codemod, module: cst.Module, trained, built, **words) -> SitePlan | None:
    """``plan_for_site``, or a follow-up on the training (and None) when it cannot move."""
    try:
        return plan_for_site(codemod, module, trained, built, **words)
    except Unsupported as exc:
        codemod.follow_up(trained[0], f"not converted: {exc}")
        return None


def plan_trained_site(codemod, module: cst.Module, site, parents, **words) -> tuple[SitePlan | None, MethodCall | None]:
    """``plan_or_follow_up`` for one trained site of a ``TrainerFinder``: its train calls and the
    statements that build it, or, when it sits in a method of the script's own class, the one call
    of that method and what builds its instance (``method_call``, returned too)."""
    via = method_call(site.train_call, module, parents)
    trained, built = ([via.call], via.built) if via else (site.train_calls, [stmt for _, stmt in site.constructions])
    return plan_or_follow_up(codemod, module, trained, built, **words), via


def _param_list(fn: cst.FunctionDef) -> list[str]:
    p = fn.params
    names = [x.name.value for x in (*p.posonly_params, *p.params, *p.kwonly_params)]
    for star in (p.star_arg, p.star_kwarg):
        if isinstance(star, cst.Param):
            names.append(star.name.value)
    return names


def _params(fn: cst.FunctionDef) -> set[str]:
    return set(_param_list(fn))


def _driver_statements(statements, facts: list[StatementFacts], parsing: set[str]) -> set[int]:
    """Statements that parse the command line, and every earlier statement they depend on."""
    driver = {i for i, s in enumerate(statements) if not is_structural(s, i) and reads_argv(s, parsing)}
    todo = sorted(driver)
    while todo:
        i = todo.pop()
        for j in range(i):
            if j in driver or is_structural(statements[j], j):
                continue
            if facts[j].binds & facts[i].reads or facts[j].mutates & facts[i].reads:
                if isinstance(statements[j], (cst.FunctionDef, cst.ClassDef)):
                    continue  # a def costs nothing to keep reachable; it is not driver work
                driver.add(j)
                todo.append(j)
    return driver


def _keep_globals_needed(module, owner, statements, facts, moved, driver, scopes, positions, reasons, elsewhere=frozenset()) -> None:
    """At module level, names that what stays behind reads must stay global."""
    module_facts = analyse_block(list(module.body), scopes[module], module)
    staying = [f for f in module_facts if f.node is not owner] if owner is not module else []
    staying += [f for f in facts if f.index not in moved and f.index not in elsewhere]
    needed: dict[str, str] = {}  # name -> who needs it, for the follow-up

    def need(fact: StatementFacts) -> None:
        for name in fact.reads:
            needed.setdefault(name, _label(fact.node, positions))

    for fact in staying:
        need(fact)
    # A name bound both by what stays and by what moves becomes local to train_func: that is
    # only wrong where the moved code reads it before binding it (`x = x + 1`).
    order = sorted(moved)
    for fact in staying:
        for name in fact.binds - needed.keys():
            reads_at = [i for i in order if name in facts[i].reads]
            binds_at = [i for i in order if name in facts[i].binds]
            if binds_at and reads_at and reads_at[0] <= binds_at[0]:
                needed[name] = _label(fact.node, positions)
    changed = True
    while changed:
        changed = False
        for i in sorted(moved):
            hit = (facts[i].binds | facts[i].mutates) & needed.keys()
            if hit:
                name = sorted(hit)[0]
                reasons[i] = f"`{name}` is also used by {needed[name]}, which stays at module level"
                moved.discard(i)
                need(facts[i])
                changed = True


#: Calls that seed the random draws a training makes (model initialisation, shuffling, dropout) or
#: make them deterministic. Process-wide state: set on the driver, it never reaches the workers.
SEED_CALLS = frozenset({
    "torch.manual_seed", "torch.random.manual_seed", "torch.cuda.manual_seed", "torch.cuda.manual_seed_all",
    "torch.use_deterministic_algorithms", "random.seed", "numpy.random.seed",
    "transformers.set_seed", "transformers.trainer_utils.set_seed", "transformers.enable_full_determinism",
    "transformers.trainer_utils.enable_full_determinism", "accelerate.utils.set_seed",
    "accelerate.utils.random.set_seed", "trl.set_seed",
})
#: Lightning's ``seed_everything``, from any of its packages and modules.
_LIGHTNING_ROOTS = ("lightning.", "pytorch_lightning.", "lightning_fabric.")


def is_seeding(name: str) -> bool:
    return name in SEED_CALLS or (name.startswith(_LIGHTNING_ROOTS) and name.endswith(".seed_everything"))


def seeding_left_behind(codemod, module: cst.Module, statements, facts: list[StatementFacts], moved: set[int],
                        elsewhere: set[int], provided: set[str]) -> list[int]:
    """Seeding calls amid the training that stay on the driver (``pl.seed_everything(args.seed)``
    at module level, kept global because the definitions after it read ``pl``): without them the
    workers build the model and draw the data order unseeded. Those whose every name is there in
    the train function (a global, a builtin, or a driver name handed over in its config) run
    there again, where they stood among the moved statements; the caller adds the driver names
    to the config."""
    gone = set().union(*(facts[i].binds for i in moved | elsewhere))  # local to train_func, unbound at its start
    scopes = Metadata(codemod, ScopeProvider)
    globals_ = {a.name for a in scopes[module].assignments} | _BUILTINS
    found = []
    for i in range(max(moved)):
        if i in moved or i in elsewhere or not _only_seeds(codemod, statements[i]):
            continue
        if not facts[i].reads & gone and facts[i].reads <= globals_ | provided:
            found.append(i)
    return found


def _seeding_above(codemod, module: cst.Module, owner: Owner, local: set[str]) -> list[tuple[cst.BaseStatement, set[str]]]:
    """Seeding calls at module level that run before the function (or main guard) that trains:
    above it, or in the main guard before the guard calls it (``pl.seed_everything(args.seed)``
    then ``main(args)``). They seed the driver, and the workers, which get ``train_func`` without
    running the module, never. Those that read no name the train function binds itself (but a
    parameter the call hands the same name) run first in it; each comes with the names it reads."""
    body = list(module.body)
    scope = Metadata(codemod, ScopeProvider)[module]
    before = [(st, local) for st in body[:body.index(owner)]]
    if isinstance(owner, cst.FunctionDef):
        for guard in body:
            if is_main_guard(guard) and isinstance(guard.body, cst.IndentedBlock):
                before += _before_the_call(list(guard.body.body), owner, local)
    # Only the seeding lines are analysed: the statements above a training function are most of a module.
    candidates = [(st, unavailable) for st, unavailable in before if _only_seeds(codemod, st)]
    facts = analyse_block([st for st, _ in candidates], scope, module)
    return [(st, fact.reads) for (st, unavailable), fact in zip(candidates, facts) if not fact.reads & unavailable]


def _before_the_call(block: list[cst.BaseStatement], fn: cst.FunctionDef, local: set[str]):
    """The statements of ``block`` before its first call of ``fn``, each with the names a copy of it
    in the train function could not read: the function's own, but for the parameters the call
    passes a name of the same name (``main(args)``: ``args`` is the same object there)."""
    params = _param_list(fn)
    for i, stmt in enumerate(block):
        call = next((c for c in calls_in(stmt) if isinstance(c.func, cst.Name) and c.func.value == fn.name.value), None)
        if call is None:
            continue
        same = {param for param, arg in zip(params, [a for a in call.args if a.keyword is None and not a.star])
                if isinstance(arg.value, cst.Name) and arg.value.value == param}
        same |= {a.keyword.value for a in call.args
                 if a.keyword is not None and isinstance(a.value, cst.Name) and a.value.value == a.keyword.value}
        return [(st, local - same) for st in block[:i]]
    return []


def _only_seeds(codemod, stmt: cst.BaseStatement) -> bool:
    """A line of seeding calls and nothing else. (An ``if`` around them never stays behind: only
    calls on a module's attribute keep a statement global, see ``_statements._mutated_roots``.)"""
    return isinstance(stmt, cst.SimpleStatementLine) and all(
        isinstance(small, cst.Expr) and isinstance(small.value, cst.Call)
        and any(is_seeding(q) for q in qualified_names(codemod, small.value.func)) for small in stmt.body)


_BUILTINS = frozenset(dir(builtins))


def _label(node: cst.CSTNode, positions) -> str:
    line = positions[node].start.line
    if isinstance(node, (cst.FunctionDef, cst.ClassDef)):
        return f"{node.name.value} (line {line})"
    return f"line {line}"


# -- building ----------------------------------------------------------------------------------
def unique_name(module: cst.Module, preferred: str, taken: Iterable[str] = ()) -> str:
    """``preferred``, or ``preferred_2``...: a name ``module`` does not use, nor ``taken`` (names handed out already)."""
    used = _all_names(module) | set(taken)
    if preferred not in used:
        return preferred
    n = 2
    while f"{preferred}_{n}" in used:
        n += 1
    return f"{preferred}_{n}"


def _all_names(*nodes: cst.CSTNode) -> set[str]:
    """Every name ``nodes`` (a module, statements) bind or read."""
    names: set[str] = set()
    for node in nodes:
        names.update(name.value for name in walks.nodes(node, (cst.Name,)))
    return names


def apply(
    codemod: cst.codemod.Codemod,
    module: cst.Module,
    the_plan: Plan,
    options,
    rewrite: Rewrite = lambda i, s: [s],
    *,
    run_config: Sequence[str] = (),
    intended_workers: int | None = None,
    prologue: Sequence[cst.BaseStatement] = (),
    rebuild: dict[str, str] | None = None,
    definitions: Sequence[cst.BaseStatement] = (),
    extra_config: Sequence[tuple[str, str]] = (),
) -> cst.Module:
    """Rewrite ``module`` according to ``the_plan``; ``rewrite`` may expand each moved statement.

    ``module`` may have been edited since planning, as long as the owner's block kept its length.
    ``run_config`` holds extra ``RunConfig`` keyword arguments as code (the caller imports what
    they name); ``intended_workers`` is the worker count the script itself asked for, used when
    the user gave no ``--num-workers``. ``prologue`` statements open the train function (after the
    ``chdir``); ``rebuild`` maps a config name to an expression template that rebuilds the value
    on the worker (``"dataclasses.replace({})"``), for objects that must not be used as pickled.
    ``definitions`` are module-level statements (helper classes) placed right before the function.
    ``extra_config`` holds more ``train_loop_config`` items (key, driver-side expression) that the
    moved code reads from its config itself (``sys.argv[1:]`` for a CLI).
    """
    func = unique_name(module, "train_func")
    ray_trainer = unique_name(module, "ray_trainer")
    result = unique_name(module, "result")
    owner: Owner = module if the_plan.owner_index is None else module.body[the_plan.owner_index]
    statements = block_of(owner)
    moved = set(the_plan.moved)
    returns = the_plan.returns_value and not isinstance(owner, cst.Module)
    if returns:
        # The callers get what the training returned, from rank 0, through result.return_value.
        rewrite = _wrapping_returns(rewrite)
        definitions = [*definitions, *rv.helper_definitions(module)]
    func_def, config_items = build_function(func, the_plan, statements, options, rewrite, prologue=prologue, rebuild=rebuild)
    launch = _launch_statements(
        func, ray_trainer, result, [*config_items, *extra_config], options, list(run_config), options.workers(intended_workers),
        blank=1 if the_plan.owner_index is not None else 2,
    )

    kept = without_copied_imports(codemod, owner, statements, [i for i in range(len(statements)) if i not in moved],
                                  the_plan.imports, launch)
    last = max(moved)
    new_block = [statements[i] for i in kept if i < last] + launch + [statements[i] for i in kept if i > last]
    if returns and not _ends_block(new_block[-1]):
        new_block.append(cst.parse_statement(f"return {result}.return_value"))
    if new_block[0] is launch[0]:  # no blank line right after `def ...:` or `if ...:`
        new_block[0] = launch[0].with_changes(leading_lines=_strip_lines(launch[0].leading_lines))
    launch_imports(codemod, options, run_config)
    if the_plan.seeding:
        calls = ", ".join(f"`{_calls_code(st)}`" for _, st in the_plan.seeding)
        codemod.change(the_plan.seeding[0][1], f"{calls} also run{'s' if len(the_plan.seeding) == 1 else ''} first thing in "
                                              "the train function: the workers build the model and draw the data order "
                                              "seeded as the original did")

    if isinstance(owner, cst.Module):
        first = min(moved)
        before = [statements[i] for i in kept if i < first]
        between = [statements[i] for i in kept if first < i < last]
        after = [statements[i] for i in kept if i > last]
        # What stays (definitions, constants, argument parsing) comes first, then the function
        # and its launch, so the script still reads top to bottom.
        return module.with_changes(body=before + between + [*definitions, func_def] + launch + after)
    new_owner = owner.with_changes(body=owner.body.with_changes(body=new_block))
    new_body: list[cst.BaseStatement] = []
    for stmt in module.body:
        if stmt is owner:
            new_body.extend(definitions)
            new_body.append(func_def)
            new_body.append(new_owner.with_changes(leading_lines=[*_blank(2), *_strip_lines(owner.leading_lines)]))
        else:
            new_body.append(stmt)
    return module.with_changes(body=new_body)


def without_copied_imports(codemod, owner: Owner, statements, kept: list[int],
                           imports: Sequence[tuple[int, cst.BaseStatement, frozenset[str]]],
                           launches: Sequence[cst.BaseStatement], trainings: int = 1) -> list[int]:
    """``kept`` less the import lines copied into the train functions (``Plan.imports``) that
    nothing left on the driver names (a name anywhere in the kept statements or the launches
    keeps a line), and the change entry that says so."""
    if not imports:
        return kept
    copied = {i: names for i, _, names in imports}
    left = _all_names(*(statements[i] for i in kept if i not in copied), *launches)
    trimmed = [i for i in kept if i not in copied or copied[i] & left]
    where = f"{owner.name.value}()" if isinstance(owner, cst.FunctionDef) else "the function"
    what = ("the training uses also run first thing in the train function" if trainings == 1
            else "the trainings use also run first thing in their train functions")
    codemod.change(min(imports, key=lambda line: line[0])[1],
                   f"the imports in {where} that {what}: no module or class is passed through train_loop_config"
                   + (f"; {where} keeps only those it still uses" if len(trimmed) < len(kept) else ""))
    return trimmed


def _calls_code(stmt: cst.SimpleStatementLine) -> str:
    """``a(1); b(2)``: the calls of a line of seeding calls, for its report entry."""
    return "; ".join(cst.Module([]).code_for_node(small.value) for small in stmt.body if isinstance(small, cst.Expr))


def _wrapping_returns(rewrite: Rewrite) -> Rewrite:
    return lambda i, stmt: [rv.wrap_returns(s) for s in rewrite(i, stmt)]


def _ends_block(stmt: cst.BaseStatement) -> bool:
    return isinstance(stmt, cst.SimpleStatementLine) and isinstance(stmt.body[-1], (cst.Return, cst.Raise))


def report_return(codemod, node: cst.CSTNode) -> None:
    """The change entry for a training whose return value now comes back through the launch."""
    codemod.change(node, f"the training code's return value now comes back from rank 0 as result.return_value, through "
                         f"{rv.HELPER}(): tensors as numpy arrays; models, and objects that cannot be pickled, as None")


def launch_imports(codemod, options, run_config: Sequence[str] = ()) -> None:
    """What a train function and its launch use: TorchTrainer, ScalingConfig, RunConfig, os."""
    AddImportsVisitor.add_needed_import(codemod.context, "ray.train", "ScalingConfig")
    AddImportsVisitor.add_needed_import(codemod.context, "ray.train.torch", "TorchTrainer")
    if options.storage_path is not None or run_config:
        AddImportsVisitor.add_needed_import(codemod.context, "ray.train", "RunConfig")
    if options.storage_path is None:
        AddImportsVisitor.add_needed_import(codemod.context, "os")


def build_function(
    func: str,
    the_plan: Plan,
    statements: Sequence[cst.BaseStatement],
    options,
    rewrite: Rewrite = lambda i, s: [s],
    *,
    prologue: Sequence[cst.BaseStatement] = (),
    rebuild: dict[str, str] | None = None,
    before_moved: Sequence[cst.BaseStatement] = (),
) -> tuple[cst.FunctionDef, list[tuple[str, str]]]:
    """The train function for ``the_plan`` and the ``train_loop_config`` items its launch hands it.

    ``before_moved`` statements run after the config is unpacked, before the moved ones (what a
    later training re-runs of an earlier one, see ``_several_trainings``).
    """
    chdir = options.storage_path is None
    config_items = ([("launch_dir", "os.getcwd()")] if chdir else []) + [(n, n) for n in the_plan.config_names]
    # The function's own imports first, as they were grouped (no blank line above the first).
    body: list[cst.BaseStatement] = [
        statements[i].with_changes(leading_lines=_collapse_blank(
            [line for line in statements[i].leading_lines if line.comment or k]))
        for k, (i, _, _) in enumerate(the_plan.imports)
    ]
    p = the_plan.param
    if chdir:
        body.append(
            cst.parse_statement(f'os.chdir({p}["launch_dir"])').with_changes(
                leading_lines=[
                    *_blank(1 if body else 0),
                    _comment("# Ray starts each worker in a directory of its own: go back to where the script"),
                    _comment("# was launched, so relative paths (output_dir, data files) resolve as before."),
                ]
            )
        )
    body.extend(prologue)
    # Unpacked after the prologue: a value rebuilt here may depend on what the prologue set up.
    rebuild = rebuild or {}
    for name in the_plan.config_names:
        value = f'{p}["{name}"]'
        stmt = cst.parse_statement(f"{name} = {rebuild.get(name, '{}').format(value)}")
        if name in rebuild:
            stmt = stmt.with_changes(leading_lines=[_comment("# Rebuilt on the worker: the driver's copy carries the driver's device set-up.")])
        body.append(stmt)
    above = [st for i, st in the_plan.seeding if i is None]
    seeding = [i for i, _ in the_plan.seeding if i is not None]

    def seeding_before(limit: int) -> list[cst.BaseStatement]:
        due = [i for i in seeding if i < limit]
        seeding[:] = [i for i in seeding if i >= limit]
        return [statements[i] for i in due]

    first = min(the_plan.moved)
    for stmt in [*above, *seeding_before(first), *before_moved,
                 *(s for i in the_plan.moved for s in [*seeding_before(i), *rewrite(i, statements[i])])]:
        stmt = stmt.visit(_CleanBlankLines())
        if hasattr(stmt, "leading_lines"):
            stmt = stmt.with_changes(leading_lines=_collapse_blank(stmt.leading_lines))
        body.append(stmt)
    body = _strip_leading_blank(body) if not the_plan.config_names and not chdir and not the_plan.imports else body
    params = f"{p}" if config_items or the_plan.needs_param else ""
    func_def = cst.parse_statement(f"def {func}({params}):\n    pass\n").with_changes(
        body=cst.IndentedBlock(body=body),
        leading_lines=[*_blank(2), _comment("# Ray Train runs this function on every worker.")],
    )
    return func_def, config_items


class _CleanBlankLines(cst.CSTTransformer):
    """Blank lines carry no indentation once moved into the function (no trailing spaces)."""

    def leave_EmptyLine(self, original_node: cst.EmptyLine, updated_node: cst.EmptyLine) -> cst.EmptyLine:
        if updated_node.comment is None:
            return updated_node.with_changes(indent=False, whitespace=cst.SimpleWhitespace(""))
        return updated_node


def _collapse_blank(lines: Sequence[cst.EmptyLine]) -> list[cst.EmptyLine]:
    """At most one blank line in a row inside the function (module code often has two)."""
    out: list[cst.EmptyLine] = []
    for line in lines:
        if line.comment is None and out and out[-1].comment is None:
            continue
        out.append(line)
    return out


def _blank(n: int) -> list[cst.EmptyLine]:
    return [cst.EmptyLine(indent=False) for _ in range(n)]


def _comment(text: str) -> cst.EmptyLine:
    return cst.EmptyLine(comment=cst.Comment(text))


def _strip_lines(lines: Sequence[cst.EmptyLine]) -> list[cst.EmptyLine]:
    lines = list(lines)
    while lines and lines[0].comment is None:
        lines.pop(0)
    return lines


def _strip_leading_blank(body: list[cst.BaseStatement]) -> list[cst.BaseStatement]:
    if body and hasattr(body[0], "leading_lines"):
        body[0] = body[0].with_changes(leading_lines=_strip_lines(body[0].leading_lines))
    return body


def _launch_statements(
    func: str, ray_trainer: str, result: str, config_items, options, run_config: list[str], workers: int, blank: int
) -> list[cst.BaseStatement]:
    config = ", ".join(f'"{k}": {v}' for k, v in config_items)
    lines = [f"{ray_trainer} = TorchTrainer(", f"    {func},"]
    if config_items:
        lines.append(f"    train_loop_config={{{config}}},")
    lines.append(f"    scaling_config=ScalingConfig(num_workers={workers}, use_gpu={options.gpu()}),")
    if options.storage_path is not None:
        run_config = [f"storage_path={options.storage_path!r}", *run_config]
    elif run_config:
        lines.append("    # For multi-node clusters, add persistent storage that every worker can reach:")
        lines.append('    # RunConfig(storage_path="s3://...", ...).')
    else:
        lines.append("    # For multi-node clusters, configure persistent storage that every worker can reach:")
        lines.append('    # run_config=RunConfig(storage_path="s3://..."),')
    if run_config:
        lines.append(f"    run_config=RunConfig({', '.join(run_config)}),")
    lines.append(")")
    lines.append(f"{result} = {ray_trainer}.fit()")
    simple = (options.storage_path is None and all(_SIMPLE_VALUE.match(v) for _, v in config_items)
              and (not run_config or (len(run_config) == 1 and _CHECKPOINT_CONFIG.match(run_config[0]))))
    code = (_as_black_formats(lines, [f'"{k}": {v}' for k, v in config_items]) if simple else None) \
        or _black("\n".join(lines) + "\n")
    statements = list(cst.parse_module(code).body)
    statements[0] = statements[0].with_changes(
        leading_lines=[*_blank(blank), _comment(f"# Launch {func} on Ray Train workers.")]
    )
    return statements


#: Black's default line length, which the launch is formatted to.
LINE_LENGTH = 88
#: Config values black leaves as they are: names, dotted names, argv, and calls of a dotted name
#: whose arguments are such names or ``keyword=name``, written ", " apart (``os.getcwd()``,
#: ``OmegaConf.to_container(cfg, resolve=True)``).
_DOTTED = r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*"
_SIMPLE_VALUE = re.compile(rf"{_DOTTED}(?:\((?:(?:\w+=)?{_DOTTED}(?:, (?:\w+=)?{_DOTTED})*)?\))?\Z|sys\.argv\[1:\]\Z")


#: The ``RunConfig`` argument the Lightning codemods write: literal numbers and plain strings.
_CHECKPOINT_CONFIG = re.compile(r'checkpoint_config=CheckpointConfig\(((?:\w+=(?:\d+|"[^"\\,]*"))(?:, \w+=(?:\d+|"[^"\\,]*"))*)\)\Z')


def _run_config_lines(line: str) -> list[str]:
    """``run_config=RunConfig(checkpoint_config=CheckpointConfig(...)),`` as black splits it when
    too long: each call's arguments on a line of their own, one a line (with a trailing comma)
    only where they do not fit together."""
    match = _CHECKPOINT_CONFIG.match(line[len("    run_config=RunConfig("):-len("),")])
    if match is None:
        return [line]
    args = match.group(1).split(", ")
    inner = f"        checkpoint_config=CheckpointConfig({', '.join(args)})"
    if len(inner) <= LINE_LENGTH:
        return ["    run_config=RunConfig(", inner, "    ),"]
    together = "            " + ", ".join(args)
    body = [together] if len(together) <= LINE_LENGTH else [f"            {arg}," for arg in args]
    return ["    run_config=RunConfig(", "        checkpoint_config=CheckpointConfig(", *body, "        )", "    ),"]


def _as_black_formats(lines: list[str], items: list[str]) -> str | None:
    """The launch ``lines`` as black formats them, where that is known without black (whose
    import is 0.1 s of every cold conversion): the call keeps one argument a line (it ends in a
    comma), and a ``train_loop_config`` line too long for that becomes one item a line with a
    trailing comma, as black splits a collection (a lone item keeps its line, without a comma);
    the Lightning codemods' ``RunConfig(checkpoint_config=...)`` splits as black splits calls.
    None for anything else (a line still too long), which black formats.
    ``tests/codemods/test_launch_format.py`` compares the two."""
    out: list[str] = []
    for line in lines:
        if len(line) > LINE_LENGTH and line.startswith("    train_loop_config={"):
            # A lone item has no comma to split at: black keeps it whole, without one.
            body = [f"        {items[0]}"] if len(items) == 1 else [f"        {item}," for item in items]
            out += ["    train_loop_config={", *body, "    },"]
        elif len(line) > LINE_LENGTH and line.startswith("    run_config=RunConfig("):
            out += _run_config_lines(line)
        else:
            out.append(line)
    if any(len(line) > LINE_LENGTH for line in out):
        return None
    return "\n".join(out) + "\n"


def _black(code: str) -> str:
    import black  # imported only when a launch needs it

    return black.format_str(code, mode=black.Mode())


def cpu_note(codemod, node: cst.CSTNode, how: str) -> None:
    """A script that says it trains on CPU gets CPU workers, unless the user asked for GPUs."""
    if codemod.options.use_gpu:
        codemod.follow_up(node, f"the script trains on CPU ({how}), but ScalingConfig asks for a GPU per worker (--use-gpu): convert without it")
    elif codemod.options.use_gpu is None:
        codemod.change(node, f"the script trains on CPU ({how}): ScalingConfig(use_gpu=False) (--use-gpu asks for GPUs)")
