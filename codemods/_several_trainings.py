"""Several trainings in one block: a train function and a launch each, in the script's order.

Before::

    net = Net()
    pretrainer = pl.Trainer(max_epochs=1)
    pretrainer.fit(net, pretrain_data())
    finetuner = pl.Trainer(max_epochs=1)
    finetuner.fit(net, finetune_data())

After (Lightning's edits left out)::

    def train_func_1(config):
        net = Net()
        pretrainer = pl.Trainer(max_epochs=1)
        pretrainer.fit(net, pretrain_data())

    ray_trainer_1 = TorchTrainer(train_func_1, ...)
    result_1 = ray_trainer_1.fit()

    def train_func_2(config):
        net = Net()
        # Continue from train_func_1's result: its checkpoint, loaded into `net`.
        with config["checkpoint"].as_directory() as checkpoint_dir:
            net.load_state_dict(...)
        finetuner = pl.Trainer(max_epochs=1)
        finetuner.fit(net, finetune_data())

    ray_trainer_2 = TorchTrainer(train_func_2, train_loop_config={..., "checkpoint": result_1.checkpoint}, ...)
    result_2 = ray_trainer_2.fit()

Each training is planned by ``_train_function.plan`` over its own stretch of the block. What a
later training reads of an earlier stretch (``net = Net()``) is re-run in its function; a model an
earlier training trained is then loaded from that training's checkpoint, which its launch hands
over through ``train_loop_config``. A later training that needs anything else an earlier training
computed (its trainer, metrics it returned) cannot be split: ``Unsupported``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import libcst as cst
from libcst.metadata import ParentNodeProvider, PositionProvider, ScopeProvider

from codemods import _return_value as rv
from codemods import _train_function as tf
from codemods._statements import Metadata, analyse_block, root_name

#: Given the model's name and the config parameter, the statement that loads the checkpoint into it.
Loader = Callable[[str, str], str]


@dataclass
class Training:
    """One training of several: the calls that train, the statements that build its trainer."""

    var: str
    trained: list[cst.CSTNode]
    built: list[cst.BaseStatement]
    #: The name holding the model it trains, when that is a plain name.
    model: str | None = None
    #: The name an attribute or item it trains hangs from (``nets`` for ``nets["a"]``), which no checkpoint can refill.
    model_root: str | None = None


@dataclass
class Planned:
    training: Training
    plan: tf.Plan
    #: Statements of earlier trainings' stretches this one re-runs first (indices in the block).
    copies: list[int] = field(default_factory=list)
    #: Index (among the trainings) of the earlier training whose checkpoint this one loads.
    continues_from: int | None = None
    func: str = ""
    result: str = ""
    window: range = range(0)


def model_argument(call: cst.Call) -> cst.BaseExpression | None:
    """The model a ``Trainer(model=...)`` or ``trainer.fit(model, ...)`` call is given: ``model=``, else the first positional."""
    arg = next((a for a in call.args if a.keyword is not None and a.keyword.value == "model"), None)
    arg = arg or next((a for a in call.args if a.keyword is None and not a.star), None)
    return arg.value if arg is not None else None


def split(codemod, sites, model_of: Callable[[Training], cst.BaseExpression | None]) -> list[Training]:
    """One ``Training`` per train call: a trainer variable built and trained twice is two trainings."""
    def position(node: cst.CSTNode) -> tuple[int, int]:
        start = codemod.get_metadata(PositionProvider, node).start
        return start.line, start.column

    trainings: list[Training] = []
    for site in sites:
        if len(site.train_calls) == 1:
            trainings.append(Training(site.var, list(site.train_calls), [s for _, s in site.constructions]))
            continue
        built = sorted(site.constructions, key=lambda c: position(c[0]))
        for call in sorted(site.train_calls, key=position):
            before = [stmt for c, stmt in built if position(c) < position(call)]
            if not before:
                raise tf.Unsupported(f"`{site.var}` is trained before it is built")
            trainings.append(Training(site.var, [call], [before[-1]]))
    trainings.sort(key=lambda t: position(t.trained[0]))
    for t in trainings:
        model = model_of(t)
        if isinstance(model, (cst.Attribute, cst.Subscript)):
            t.model_root = root_name(model)
        elif isinstance(model, cst.Name):
            t.model = model.value
    return trainings


def plan_several(codemod, module: cst.Module, trainings: Sequence[Training]) -> tuple[tf.Owner, list[cst.BaseStatement], list[Planned]]:
    """Plan every training over its own stretch of their common block. Raises ``Unsupported``."""
    parents = Metadata(codemod, ParentNodeProvider)
    owners = [tf.owner_of(t.trained[0], module, parents, through_nested=True) for t in trainings]
    owner = owners[0]
    if any(o is not owner for o in owners):
        raise tf.Unsupported("the trainings sit in different functions; put them in one block (or convert each function alone)")
    block = tf.block_of(owner)
    seeds: list[set[int]] = []
    for t in trainings:
        found = {tf.statement_index(block, n, parents) for n in t.trained}
        for stmt in t.built:
            if tf.owner_of(stmt, module, parents, through_nested=True) is not owner:
                raise tf.Unsupported(f"`{t.var}` is built in one function and trained in another")
            found.add(tf.statement_index(block, stmt, parents))
        seeds.append(found)
    for k in range(1, len(seeds)):
        if min(seeds[k]) <= max(seeds[k - 1]):
            raise tf.Unsupported("the trainings are interleaved in one statement (a loop or a branch holds more than one)")

    facts = _facts(codemod, module, owner, block)
    planned: list[Planned] = []
    start = 0
    for k, t in enumerate(trainings):
        stop = min(seeds[k + 1]) if k + 1 < len(trainings) else len(block)
        the_plan = tf.plan(codemod, module, owner, seeds[k], window=range(start, stop))
        if k + 1 < len(trainings):
            # After the training, a statement binding what a later training reads prepares that
            # training (`classifier = Classifier(autoencoder.encoder)`): it starts the next stretch.
            later = set().union(*(f.reads for f in facts[stop:]))
            prepares = [j for j in the_plan.moved if j > max(seeds[k]) and facts[j].binds & later]
            if prepares:
                the_plan.moved = [j for j in the_plan.moved if j < prepares[0]]
        planned.append(Planned(t, the_plan, window=range(start, stop)))
        start = max(the_plan.moved) + 1
    seed_of = {i: k for k, s in enumerate(seeds) for i in s}
    for k, p in enumerate(planned[1:], start=1):
        _copies(p, k, planned, facts, seed_of, block, codemod)
    return owner, block, planned


def _facts(codemod, module, owner, block):
    scopes = Metadata(codemod, ScopeProvider)
    scope = scopes[module] if not isinstance(owner, cst.FunctionDef) else scopes[block[0]]
    return analyse_block(block, scope, module)


def _copies(p: Planned, k: int, planned: list[Planned], facts, seed_of: dict[int, int], block, codemod) -> None:
    """What training ``k`` re-runs of the earlier stretches, and whose checkpoint it loads."""
    earlier = sorted(set().union(*(q.plan.moved for q in planned[:k])))
    moved = p.plan.moved
    wanted = {name for name in set().union(*(facts[i].reads for i in moved)) if _read_first(name, moved, facts)}
    positions = Metadata(codemod, PositionProvider)
    copies: set[int] = set()
    todo = list(wanted)
    while todo:
        name = todo.pop()
        for i in earlier:
            if i in copies or name not in (facts[i].binds | facts[i].mutates):
                continue
            if i in seed_of:
                if name not in facts[i].binds:
                    continue  # the earlier training itself: its result comes as a checkpoint
                j = seed_of[i]
                raise tf.Unsupported(
                    f"training {k + 1} uses `{name}`, which training {j + 1} builds with its trainer (line {positions[block[i]].start.line})"
                )
            trainers = {q.training.var for q in planned[:k]}
            uses = facts[i].reads & trainers
            if uses:
                raise tf.Unsupported(
                    f"training {k + 1} uses `{name}`, which line {positions[block[i]].start.line} computes from an earlier "
                    f"training's `{sorted(uses)[0]}`: pass it on by hand"
                )
            copies.add(i)
            todo.extend(facts[i].reads - wanted)
            wanted |= facts[i].reads
    p.copies = sorted(copies)
    # Work after the training that reads what the copies rebuilt (the model) goes with it.
    bound = set().union(*(facts[i].binds for i in copies))
    moved_set = set(moved)
    for j in range(max(moved) + 1, p.window.stop):
        stmt = block[j]
        if j in moved_set or tf.is_structural(stmt, j) or isinstance(stmt, (cst.FunctionDef, cst.ClassDef)):
            continue
        if (facts[j].reads | facts[j].mutates) & bound:
            moved_set.add(j)
            bound |= facts[j].binds
    p.plan.moved = sorted(moved_set)
    reads = wanted | set().union(*(facts[i].reads for i in copies))
    for j, q in enumerate(planned[:k]):
        if q.training.model_root and q.training.model_root in reads:
            raise tf.Unsupported(
                f"training {k + 1} uses `{q.training.model_root}`, which holds the model training {j + 1} trained: "
                f"assign that model to a name of its own, so it can be reloaded from training {j + 1}'s checkpoint"
            )
    continued = [j for j, q in enumerate(planned[:k]) if q.training.model and q.training.model in reads]
    if len({planned[j].training.model for j in continued}) > 1:
        names = ", ".join(f"`{planned[j].training.model}`" for j in continued)
        raise tf.Unsupported(f"training {k + 1} continues from several earlier models ({names}): hand their checkpoints over by hand")
    p.continues_from = continued[-1] if continued else None
    # The copies may read what the function imports: those imports run again in the train function
    # as well (``tf.Plan.imports``), where no other statement binds the same names.
    rebound = set().union(*(facts[i].binds for i, st in enumerate(block) if not tf.is_import_line(st)))
    imports = tf.imports_to_copy(block, facts, range(min(moved)), reads & p.plan.provided, rebound)
    if imports:
        p.plan.imports = sorted({line[0]: line for line in [*p.plan.imports, *imports]}.values(), key=lambda line: line[0])
        p.plan.provided = p.plan.provided - set().union(*(names for _, _, names in imports))
    # The copies may read what the driver parsed: hand that over too.
    extra = sorted((reads & p.plan.provided) - set(p.plan.config_names))
    model = planned[p.continues_from].training.model if continued else None
    if model and model not in extra + p.plan.config_names and not any(model in facts[i].binds for i in copies):
        extra.append(model)  # a global the loader rebinds: it must be local to the function
    p.plan.config_names = p.plan.config_names + extra
    p.plan.needs_param = p.continues_from is not None


def _read_first(name: str, moved: Sequence[int], facts) -> bool:
    """``name`` is read in ``moved`` before (or in the same statement as) its first binding there."""
    reads = [i for i in moved if name in facts[i].reads]
    binds = [i for i in moved if name in facts[i].binds]
    return bool(reads) and (not binds or reads[0] <= binds[0])


def apply_several(
    codemod,
    module: cst.Module,
    owner: tf.Owner,
    planned: list[Planned],
    options,
    rewrite: tf.Rewrite,
    load: Loader,
    *,
    prologue: Sequence[cst.BaseStatement] = (),
    rebuild: dict[str, str] | None = None,
    definitions: Sequence[cst.BaseStatement] = (),
    run_config: Sequence[str] = (),
    intended_workers: int | None = None,
) -> cst.Module:
    """Rewrite ``module``: each training's function and launch, placed where its training ended."""
    index = planned[0].plan.owner_index  # ``module`` may be edited: find the owner by position
    current: tf.Owner = module if index is None else module.body[index]
    block = tf.block_of(current)
    taken: set[str] = set()

    def fresh(name: str) -> str:
        name = tf.unique_name(module, name)
        while name in taken:
            name += "_"
        taken.add(name)
        return name

    functions: list[cst.BaseStatement] = []
    launches: dict[int, list[cst.BaseStatement]] = {}
    returned = [p for p in planned if p.plan.returns_value] if index is not None else []
    if returned:
        # What the block returned comes back from rank 0 of the training that returns it.
        definitions = [*definitions, *rv.helper_definitions(module)]
    for k, p in enumerate(planned, start=1):
        p.func, p.result = fresh(f"train_func_{k}"), fresh(f"result_{k}")
        before = [block[i] for i in p.copies]
        extra_config: list[tuple[str, str]] = []
        if p.continues_from is not None:
            source = planned[p.continues_from]
            model = source.training.model
            statement = cst.parse_statement(load(model, p.plan.param)).with_changes(
                leading_lines=[tf._comment(f"# Continue from {source.func}'s result: its checkpoint, loaded into `{model}`.")]
            )
            binding = [n for n, i in enumerate(p.copies) if model in _binds(block[i])]
            at = binding[-1] + 1 if binding else 0
            before = before[:at] + [statement] + before[at:]
            extra_config.append(("checkpoint", f"{source.result}.checkpoint"))
        func_def, config_items = tf.build_function(
            p.func, p.plan, block, options, tf._wrapping_returns(rewrite) if p in returned else rewrite,
            prologue=prologue, rebuild=rebuild, before_moved=before,
        )
        launch = tf._launch_statements(
            p.func, fresh(f"ray_trainer_{k}"), p.result, config_items + extra_config, options, list(run_config),
            options.workers(intended_workers), blank=1 if index is not None else 2,
        )
        if index is None:
            launch = [func_def, *launch]
            if k == 1:
                launch = [*definitions, *launch]
        else:
            functions.append(func_def)
        launches[max(p.plan.moved)] = launch
    tf.launch_imports(codemod, options, run_config)

    moved = set().union(*(p.plan.moved for p in planned))
    imports = list({line[0]: line for p in planned for line in p.plan.imports}.values())
    kept = tf.without_copied_imports(codemod, current, block, [i for i in range(len(block)) if i not in moved], imports,
                                     [stmt for launch in launches.values() for stmt in launch], trainings=len(planned))
    new_block: list[cst.BaseStatement] = []
    for i, stmt in enumerate(block):
        if i in kept:
            new_block.append(stmt)
        new_block.extend(launches.get(i, ()))
    if index is None:
        return module.with_changes(body=new_block)
    if returned and not tf._ends_block(new_block[-1]):
        new_block.append(cst.parse_statement(f"return {returned[-1].result}.return_value"))
    for p in returned:
        tf.report_return(codemod, p.training.trained[0])
    if new_block[0] is not block[0] and hasattr(new_block[0], "leading_lines"):
        new_block[0] = new_block[0].with_changes(leading_lines=tf._strip_lines(new_block[0].leading_lines))
    new_owner = current.with_changes(body=current.body.with_changes(body=new_block))
    body: list[cst.BaseStatement] = []
    for stmt in module.body:
        if stmt is current:
            body += [*definitions, *functions]
            body.append(new_owner.with_changes(leading_lines=[*tf._blank(2), *tf._strip_lines(current.leading_lines)]))
        else:
            body.append(stmt)
    return module.with_changes(body=body)


def _binds(stmt: cst.BaseStatement) -> set[str]:
    names: set[str] = set()

    class Visit(cst.CSTVisitor):
        def visit_AssignTarget(self, node: cst.AssignTarget) -> None:
            if isinstance(node.target, cst.Name):
                names.add(node.target.value)

    stmt.visit(Visit())
    return names
