"""``migrate validate``: does the converted script train like the original?

Three groups of checks, each a row of the verdict table:

1. **static**: the converted file parses; its train function reads no name that will be missing
   on a worker and parses no command line (``migrator.checks``); the Lightning package matches
   Ray's; the train function and its config pickle small (measured when the script launches).
2. **runs**: the original in plain Python (``migrator.runtime.original``) and the converted script
   on 1 worker, both seeded the same way and capped at the same number of steps, log the same
   per-step training loss (on CPU the 1-worker run is made in one process, in Ray Train's local
   mode, unless ``--num-workers 1`` makes it the scaling run too; see ``one_worker_run``): the largest difference must stay within the tolerance, relative to
   ``max(1, |loss|)``. An original written for Ray's retired trainers (``AccelerateTrainer``,
   ``TransformersTrainer``, ``LightningTrainer``, ``ray.air``'s session and dict checkpoints) runs
   on their one-worker emulation (``retired_ray``), and the notes say so; one that needs a retired
   class with no emulation or a GPU this machine lacks is reported as not runnable here,
   and the other checks still run. An original that only fails
   on APIs the installed libraries removed is run with those rewritten (``REMOVED_API_CODEMODS``),
   and the table says so. A plain PyTorch original that starts N processes of its own
   (``torch.multiprocessing.spawn``/``start_processes``; every one of them is recorded, see
   ``migrator.runtime.spawned``) is not compared with 1 worker but, in the next group, with the
   N-worker run: "loss agreement (N workers)", each rank against the Ray worker of the same rank,
   same tolerance; skipped, saying why, when ``--num-workers`` is not N.
3. **scales**: on N workers the converted script finishes, every worker's losses are finite, and
   the checkpoint it reported loads back (``from_pretrained``, ``load_from_checkpoint``, or the
   saved tensors). With ``--num-workers 1`` that is the 1-worker run, not run a second time.

The converted runs share one private head node (``cluster.LocalCluster``) unless ``--address``
names a cluster; it starts while the original runs. On CPU the runs (the original, the local-mode
run, the driver of the N-worker run) fork from one interpreter that has imported the scripts'
libraries once (``migrator.runtime.warm``, see ``warm_interpreter``).
"""

from __future__ import annotations

import ast
import math
import os
import re
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from migrator.runtime import preflight, retired_ray, runner, workspace
from migrator.runtime.events import finite
from migrator.runtime.progress import final_metrics

PASS, FAIL, WARN, SKIP = "pass", "fail", "warn", "skip"
GPU_ERRORS = re.compile(
    r"CUDA|cuda|NVIDIA driver|No CUDA GPUs|not compiled with CUDA|GPU available|no GPU|MisconfigurationException: .*gpu",
)


@dataclass
class Settings:
    original: Path
    converted: Path | None = None
    script_args: list[str] = field(default_factory=list)
    max_steps: int = 20
    seed: int = 0
    tolerance: float = 1e-4
    num_workers: int = 2
    use_gpu: bool | None = None
    standins: bool = False
    address: str | None = None
    storage_path: str | None = None
    pickle_warn_mb: float = 5.0
    keep_going: bool = False
    plot: Path | None = None
    verbose: bool = False


@dataclass
class Check:
    group: str
    name: str
    verdict: str
    detail: str = ""


@dataclass
class Report:
    original: str
    converted: str | None
    checks: list[Check] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)
    losses: dict[str, list] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add(self, group: str, name: str, verdict: str, detail: str = "") -> Check:
        check = Check(group, name, verdict, detail)
        self.checks.append(check)
        return check

    @property
    def ok(self) -> bool:
        """No check failed. A warning passes; so does a skip, which only ever stands for something
        that cannot run here (a failure that makes later checks skip is itself a FAIL row)."""
        return any(c.verdict == PASS for c in self.checks) and not any(c.verdict == FAIL for c in self.checks)


def _say(settings: Settings, text: str) -> None:
    print(f"migrate validate: {text}", file=sys.stderr, flush=True)


#: Device files a CUDA (NVIDIA) or ROCm (AMD) GPU shows on Linux, in containers and WSL2 too.
GPU_DEVICE_FILES = ("/dev/nvidiactl", "/dev/nvidia0", "/dev/kfd", "/dev/dxg")


def _gpu_available() -> bool:
    """Whether torch sees a GPU. On Linux with none of ``GPU_DEVICE_FILES`` it cannot: that is
    told without importing torch (about 2 CPU-s of every validate on a CPU machine)."""
    if sys.platform.startswith("linux") and not any(os.path.exists(f) for f in GPU_DEVICE_FILES):
        return False
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


# -- converting -----------------------------------------------------------------------------------
def convert(original: Path, use_gpu: bool, workdir: Path, report: Report) -> Path | None:
    from migrator.engine import convert_source
    from migrator.options import ConvertOptions
    from migrator.registry import all_codemods

    result = convert_source(original.read_bytes(), all_codemods(), ConvertOptions(use_gpu=use_gpu), path=str(original))
    if result.status == "failed":
        report.add("static", "conversion", FAIL, f"cannot convert: {result.error}")
        return None
    if result.status == "unchanged":
        report.add("static", "conversion", FAIL, "nothing to convert: no training this tool migrates was found")
        return None
    target = workdir / original.name
    target.write_bytes(result.output)
    follow_ups = [e for e in result.follow_ups]
    detail = f"converted to {target}"
    if follow_ups:
        detail += f"; {len(follow_ups)} follow-up(s), first: line {follow_ups[0].line}: {follow_ups[0].message}"
    report.add("static", "conversion", PASS, detail)
    return target


#: Codemods that only replace what the installed libraries removed (no Ray change): the original
#: runs with them applied when it needs them, so its losses can still be compared.
REMOVED_API_CODEMODS = ("transformers_renamed_arguments", "hf_removed_apis", "lightning_removed_arguments",
                        "torch_load_weights_only")


def baseline(original: Path, workdir: Path, report: Report) -> Path:
    """The original as it can run here: with removed-API rewrites (transformers 5 keywords, Lightning 2.0
    arguments...) applied if it needs them."""
    from migrator.engine import convert_source
    from migrator.registry import codemod_ids, select

    try:
        codemods = select(only=tuple(c for c in REMOVED_API_CODEMODS if c in codemod_ids()))
    except KeyError:
        return original
    result = convert_source(original.read_bytes(), codemods, path=str(original))
    if result.status != "converted":
        return original
    target = workdir / f"original_{original.name}"
    target.write_bytes(result.output)
    changes = [f"line {e.line}: {e.message.split(' (')[0]}" for e in result.changes]
    report.notes.append("the original uses APIs the installed libraries removed, so it ran with them rewritten: " + "; ".join(changes[:4]))
    return target


# -- static ---------------------------------------------------------------------------------------
def static_checks(original_source: str, converted_source: str, report: Report) -> bool:
    try:
        ast.parse(converted_source)
    except SyntaxError as exc:
        report.add("static", "converted file parses", FAIL, f"line {exc.lineno}: {exc.msg}")
        return False
    report.add("static", "converted file parses", PASS)
    from migrator.checks import check_converted

    problems = check_converted(converted_source, original_source)
    names = [p for p in problems if "defined nowhere" in p.message]
    argv = [p for p in problems if "command line" in p.message]
    report.add("static", "names defined on the workers", FAIL if names else PASS,
               "; ".join(f"line {p.line}: {p.message}" for p in names[:3]))
    report.add("static", "no argument parsing in the train function", FAIL if argv else PASS,
               "; ".join(f"line {p.line}: {p.message}" for p in argv[:3]))
    mismatch = preflight.lightning_mismatch(converted_source)
    if preflight.framework(converted_source) == "lightning" or mismatch:
        report.add("static", "Lightning package matches Ray's", FAIL if mismatch else PASS, mismatch or "")
    return not (names or argv or mismatch)


def pickled_check(summary: dict[str, Any] | None, warn_mb: float, report: Report) -> None:
    pickled = (summary or {}).get("pickled")
    if not pickled:
        report.add("static", "train function pickles small", SKIP, "measured when the converted script launches; it did not")
        return
    total = pickled["function_bytes"] + pickled["config_bytes"]
    detail = (f"{pickled['function']}: {pickled['function_bytes'] / 1024:.1f} KiB, config {pickled['config_bytes'] / 1024:.1f} KiB"
              f" (warn past {warn_mb:g} MiB)")
    report.add("static", "train function pickles small", WARN if total > warn_mb * 1024**2 else PASS, detail)


# -- runs -----------------------------------------------------------------------------------------
def _run(settings: Settings, module: str, script: Path, flags: list[str], env: dict[str, str], label: str,
         outputs: workspace.RunOutputs | None = None, warm: runner.WarmInterpreter | None = None) -> runner.Outcome:
    _say(settings, f"running {label}...")

    def on_line(text: str) -> None:
        if settings.verbose:
            print(text, file=sys.stderr)

    start = time.monotonic()
    outcome = runner.run_module(module, str(script), flags, settings.script_args, cwd=os.getcwd(), env=env,
                                on_event=lambda e: None, on_line=on_line, warm=warm)
    _say(settings, f"{label}: {'ok' if outcome.ok else 'failed'} in {time.monotonic() - start:.1f} s")
    if outputs is not None:
        outputs.set_aside(label)
    return outcome


def failure_text(outcome: runner.Outcome) -> str:
    summary = outcome.summary or {}
    errors = summary.get("worker_errors") or []
    if errors:
        first = errors[0]
        tb = (first.get("traceback") or "").strip().splitlines()
        where = next((line.strip() for line in reversed(tb) if line.strip().startswith("File ")), "")
        return f"worker rank {first.get('rank')}: {first.get('type')}: {first.get('message')}" + (f" ({where})" if where else "")
    if summary.get("error"):
        return str(summary["error"])
    tail = [line for line in outcome.output_tail if line.strip()][-3:]
    return f"exit {outcome.returncode}: " + " / ".join(tail)


def compare_losses(original: list, converted: list, tolerance: float) -> tuple[bool, str, dict[str, Any]]:
    a = [(int(s), float(v)) for s, v in original]
    b = [(int(s), float(v)) for s, v in converted]
    figures: dict[str, Any] = {"original_steps": len(a), "converted_steps": len(b), "tolerance": tolerance}
    if not a or not b:
        return False, f"no losses recorded (original {len(a)} steps, converted {len(b)})", figures
    if len(a) != len(b):
        return False, f"the original logged {len(a)} steps, the converted script {len(b)}", figures
    worst, at = 0.0, a[0][0]
    for (step, x), (_, y) in zip(a, b):
        if not (math.isfinite(x) and math.isfinite(y)):
            diff = 0.0 if x == y or (math.isnan(x) and math.isnan(y)) else math.inf
        else:
            diff = abs(x - y) / max(1.0, abs(x))
        if diff > worst:
            worst, at = diff, step
    figures.update(max_difference=worst, at_step=at)
    ok = worst <= tolerance
    detail = f"{len(a)} steps, largest difference {worst:.3g} at step {at} (tolerance {tolerance:g})"
    if not ok:
        detail += f": original {dict(a)[at]:.6g} vs converted {dict(b)[at]:.6g}"
    return ok, detail, figures


def spawned_processes(summary: dict[str, Any] | None) -> int:
    """How many processes the original started itself (``mp.spawn``), 0 when it trained alone."""
    spawned = (summary or {}).get("spawned") or {}
    return int(spawned.get("processes") or 0)


def spawned_agreement(original: dict[str, Any], many: runner.Outcome, settings: Settings, report: Report) -> None:
    """An original that ran N processes of its own against the converted script on N workers, rank by rank."""
    processes = spawned_processes(original)
    name = f"loss agreement ({processes} workers)"
    if processes != settings.num_workers:
        report.add("scales", name, SKIP, f"the original starts {processes} processes of its own and the scaling run "
                                         f"had {settings.num_workers} workers: --num-workers {processes} compares them")
        return
    if not (many.ok and many.summary):
        report.add("scales", name, SKIP, f"the converted script did not run on {processes} workers")
        return
    theirs, ours = original.get("losses") or {}, many.summary.get("losses") or {}
    results = {rank: compare_losses(theirs.get(rank, []), ours.get(rank, []), settings.tolerance)
               for rank in map(str, range(processes))}
    failed = [(rank, r) for rank, r in results.items() if not r[0]]
    rank, (ok, detail, figures) = failed[0] if failed else max(
        results.items(), key=lambda item: item[1][2].get("max_difference", 0.0))
    detail = (f"rank {rank}: {detail}" if failed else
              f"ranks 0-{processes - 1} each against the same Ray worker rank; worst, rank {rank}: {detail}")
    report.add("scales", name, FAIL if failed else PASS, detail)
    report.figures["loss_agreement"] = {**figures, "workers": processes, "rank": int(rank),
                                        "by_rank": {r: res[2] for r, res in results.items()}}
    report.losses["original"] = theirs.get("0", [])


def run_validation(settings: Settings) -> Report:
    from migrator.runtime.cluster import LocalCluster

    original = settings.original.resolve()
    report = Report(str(original), None)
    workdir = Path(tempfile.mkdtemp(prefix="migrate-validate-"))
    use_gpu = settings.use_gpu if settings.use_gpu is not None else _gpu_available()
    original_source = original.read_text(encoding="utf-8")

    # 1. static
    converted = settings.converted.resolve() if settings.converted else convert(original, use_gpu, workdir, report)
    report.converted = str(converted) if converted else None
    static_ok = False
    if converted is not None:
        static_ok = static_checks(original_source, converted.read_text(encoding="utf-8"), report)
    if converted is None or (not static_ok and not settings.keep_going):
        why = "no converted script" if converted is None else "a static check failed (--keep-going runs them anyway)"
        for group, name in (("static", "train function pickles small"), ("runs", "original runs"),
                            ("runs", "converted runs on 1 worker"), ("runs", "loss agreement (1 worker)"),
                            ("scales", f"finishes on {settings.num_workers} workers")):
            report.add(group, name, SKIP, why)
        return report

    # A private cluster for both converted runs, starting while the original runs.
    cluster = None
    started = threading.Event()
    cluster_error: list[BaseException] = []
    if not settings.address:
        cluster = LocalCluster(num_cpus=max(os.cpu_count() or 1, settings.num_workers + 2, 4), num_gpus=None,
                               warm_workers=worker_preloads(settings, [original, converted], use_gpu))

        def start() -> None:
            try:
                cluster.start()
            except BaseException as exc:  # reported when the cluster is needed
                cluster_error.append(exc)
            finally:
                started.set()

        threading.Thread(target=start, daemon=True).start()
    storage = settings.storage_path or str(workdir / "ray_results")
    outputs = workspace.RunOutputs(Path.cwd(), workdir)
    pythonpath = [str(original.parent)]
    warm = warm_interpreter(settings, [original, converted], use_gpu, pythonpath)
    try:
        # 2. runs: the original
        retired = preflight.retired_ray_api(original_source)
        not_emulated = retired and retired_ray.unsupported(original_source)
        original_summary = None
        if not_emulated:
            report.add("runs", "original runs", SKIP,
                       f"cannot run here: it uses a retired Ray API ({retired}) that migrate does not emulate ({not_emulated})")
        else:
            runnable = baseline(original, workdir, report)
            flags = ["--events", "--seed", str(settings.seed), "--max-steps", str(settings.max_steps)]
            if settings.standins:
                flags.append("--offline-standins")
            outcome = _run(settings, "migrator.runtime.original", runnable, flags,
                           runner.child_env(None, pythonpath=pythonpath), "the original (plain Python)", outputs, warm)
            original_summary = outcome.summary
            # What the runtime changed to run the original here (fp32 for a GPU's mixed precision...).
            report.notes.extend(f"the original: {w}" for w in (outcome.summary or {}).get("warnings") or [])
            emulated = (outcome.summary or {}).get("emulated") or {}
            report.notes.extend(f"the original uses Ray's retired {name}: {retired_ray.NOTES[kind]}" for name, kind in emulated.items())
            if retired and not emulated:
                report.notes.append(f"the original uses a retired Ray API ({retired}): it ran with migrate's one-worker emulation of ray.air's session and checkpoints")
            if outcome.ok:
                detail = f"{outcome.summary.get('steps')} steps in {outcome.summary.get('wall_s')} s"
                if spawned_processes(original_summary):
                    detail += f" ({spawned_processes(original_summary)} processes of its own, torch.multiprocessing)"
                report.add("runs", "original runs", PASS, detail)
            else:
                text = failure_text(outcome)
                hint = preflight.gpu_hint(original_source)
                if GPU_ERRORS.search(text) and not _gpu_available():
                    report.add("runs", "original runs", SKIP, f"cannot run here: it needs a GPU ({hint or text[:200]})")
                else:
                    report.add("runs", "original runs", FAIL, text)
                original_summary = None

        # The converted script, on 1 worker then on N.
        if cluster is not None:
            started.wait()
            if cluster_error:
                first = str(cluster_error[0]).strip().splitlines()
                reason = f"could not start a local Ray cluster: {first[-1] if first else cluster_error[0]!r}"
                for group, name in (("runs", "converted runs on 1 worker"), ("runs", "loss agreement (1 worker)"),
                                    ("scales", f"finishes on {settings.num_workers} workers")):
                    report.add(group, name, FAIL if name.startswith("converted") else SKIP, reason)
                return report
        address = settings.address or cluster.address
        env = runner.child_env(address, extra=cluster.driver_env if cluster is not None else None, pythonpath=pythonpath)
        common = runner.RunOptions(use_gpu=use_gpu, storage_path=storage, max_steps=settings.max_steps,
                                   seed=settings.seed, standins=settings.standins, pickle_warn_mb=settings.pickle_warn_mb)
        # With --num-workers 1 the scaling run would be this run again: it loads the checkpoint too.
        alone = settings.num_workers == 1
        one, in_process = one_worker_run(settings, converted, common, env, outputs, alone, report, warm)
        pickled_check(one.summary, settings.pickle_warn_mb, report)
        if trained(one):
            where = " (in one process: Ray Train's local mode)" if in_process else ""
            report.add("runs", "converted runs on 1 worker", PASS,
                       f"{one.summary.get('steps')} steps, fit {one.summary['fits'][-1]['wall_s']} s{where}")
        else:
            report.add("runs", "converted runs on 1 worker", FAIL, why_not_trained(one))
        if original_summary is None:
            report.add("runs", "loss agreement (1 worker)", SKIP, "the original did not run here")
        elif spawned_processes(original_summary) > 1:
            report.add("runs", "loss agreement (1 worker)", SKIP,
                       f"the original starts {spawned_processes(original_summary)} processes of its own "
                       "(torch.multiprocessing): compared with as many workers below")
        elif not one.ok:
            report.add("runs", "loss agreement (1 worker)", SKIP, "the converted script did not run")
        elif "transformers" in (original_summary.get("emulated") or {}).values():
            report.add("runs", "loss agreement (1 worker)", SKIP,
                       "the retired TransformersTrainer fed Ray Data batches, its emulation Hugging Face datasets: "
                       "the examples come in another order, so losses are not compared step by step")
        else:
            a = original_summary.get("losses", {}).get("0", [])
            b = one.summary.get("losses", {}).get("0", [])
            ok, detail, figures = compare_losses(a, b, settings.tolerance)
            report.add("runs", "loss agreement (1 worker)", PASS if ok else FAIL, detail)
            report.figures["loss_agreement"] = {**figures, "workers": 1}
            report.losses = {"original": a, "converted_1_worker": b}

        # 3. scales
        if alone:
            many = one
        else:
            n_flags = runner.RunOptions(**{**asdict(common), "num_workers": settings.num_workers,
                                           "check_checkpoint": True}).launch_flags()
            many = _run(settings, "migrator.runtime.launch", converted, n_flags, env,
                        f"the converted script on {settings.num_workers} workers", outputs, warm)
        scale_checks(many, settings.num_workers, report)
        if spawned_processes(original_summary) > 1:
            spawned_agreement(original_summary, many, settings, report)
        report.figures["runs"] = {
            "original": _figures(original_summary),
            "converted_1_worker": _figures(one.summary),
            f"converted_{settings.num_workers}_workers": _figures(many.summary),
        }  # with one worker, one run under both names
        if many.summary and many.summary.get("losses"):
            report.losses[f"converted_{settings.num_workers}_workers_rank0"] = many.summary["losses"].get("0", [])
    finally:
        if warm is not None:
            warm.close()
            report.figures["warm"] = {"imported": warm.imported, "runs": warm.runs, "refused": warm.refusals,
                                      "shared": warm.shared}
        if outputs.note():
            report.notes.append(outputs.note())
        if cluster is not None:
            started.wait()
            cluster.stop()
    if settings.plot is not None:
        draw(report, settings.plot)
    return report


def warm_interpreter(settings: Settings, scripts: list[Path], use_gpu: bool,
                     pythonpath: list[str]) -> runner.WarmInterpreter | None:
    """One interpreter that imports the scripts' libraries once, for the runs to fork from
    (``migrator.runtime.warm``): a fresh interpreter per run imports them again, ~5 CPU-seconds
    each for a Transformers script. ``MIGRATE_WARM_SERVER``: the socket of one already serving
    (``python -m migrator.runtime.warm --listen SOCKET``), used if it takes runs like these. Not
    with GPUs: a library may initialise CUDA when imported, and CUDA does not survive a fork; nor
    when ``MIGRATE_FRESH_PROCESSES=1`` asks for fresh ones."""
    if not _may_fork(use_gpu):
        return None
    from migrator.runtime.warm import SHARED

    env = runner.child_env(None, pythonpath=pythonpath)
    shared = os.environ.get(SHARED)
    if shared:  # one that has imported them already, if it takes these runs
        attached = runner.WarmInterpreter.attach(shared)
        if attached is not None and attached.accepts(env, os.getcwd(), settings.standins):
            _say(settings, f"every run starts from the warm interpreter at {shared}")
            return attached
        why = (attached.refusals or ["it took no run"])[0] if attached is not None else "nothing answers there"
        _say(settings, f"not using the warm interpreter at {shared}: {why}")
        if attached is not None:
            attached.close()
    warm = runner.WarmInterpreter([str(s) for s in scripts], env=env, cwd=os.getcwd(), standins=settings.standins)
    _say(settings, "importing the scripts' libraries once, for every run to start from")
    return warm


def _may_fork(use_gpu: bool) -> bool:
    from migrator.runtime.warm import OFF

    return not use_gpu and os.environ.get(OFF) != "1"


def worker_preloads(settings: Settings, scripts: list[Path], use_gpu: bool) -> list[str] | None:
    """What the private cluster's Ray workers find imported (``migrator.runtime.warm_workers``):
    the scripts' libraries, as for the runs' own interpreter (``warm_interpreter``), on the same
    conditions; None for fresh workers."""
    from migrator.runtime.warm import preload_statements
    from migrator.runtime.warm_workers import STANDINS

    if not _may_fork(use_gpu):
        return None
    sources = [s.read_text(encoding="utf-8", errors="replace") for s in scripts]
    return preload_statements(sources) + ([STANDINS] if settings.standins else [])


#: A converted script that talks to torch.distributed itself needs the process group that a Ray
#: worker has and local mode does not start ("Default process group has not been initialized").
#: The conversion's own calls (``torch.distributed.barrier()`` under ``is_initialized()``) need none.
PROCESS_GROUP = re.compile(r"\bDistributedSampler\(|\bdist\.(?:get_rank|get_world_size|barrier|all_reduce|"
                           r"all_gather|broadcast|reduce|new_group)\(")


def trained(outcome: runner.Outcome) -> bool:
    return outcome.ok and bool((outcome.summary or {}).get("fit_calls"))


def why_not_trained(outcome: runner.Outcome) -> str:
    return failure_text(outcome) if not outcome.ok else "the script never called TorchTrainer.fit()"


def one_worker_run(settings: Settings, converted: Path, common: runner.RunOptions, env: dict[str, str],
                   outputs: workspace.RunOutputs, alone: bool, report: Report,
                   warm: runner.WarmInterpreter | None = None) -> tuple[runner.Outcome, bool]:
    """The converted script's run that the original's losses are compared with: world size 1, the
    original's sampler. Returns the outcome and whether it ran in one process.

    On CPU, unless it is also the scaling run (``--num-workers 1``), it runs in Ray Train's local mode
    (``ScalingConfig(num_workers=0)``): the train function runs in the driver, with the same Ray
    Train API (context, ``report``, ``prepare_*``) and world size 1, and no controller or worker
    processes to start, each of which imports Ray Train, torch and the script's libraries again.
    Measured on this project's samples: the same losses, to the last digit, as on 1 Ray worker,
    in 9 s instead of 20 and 4.7 CPU-seconds less. The N-worker run that follows is the run on Ray
    workers (pickling, names, the process group). Should local mode fail, the run is made again
    on 1 Ray worker and the notes say why, so a limit of local mode never fails a validation.
    A script that uses ``torch.distributed`` itself (a ``DistributedSampler``, ``dist.get_rank()``)
    runs on 1 Ray worker too: local mode starts no process group.
    With GPUs it runs on 1 Ray worker: the driver holds no GPU of Ray's, so local mode would put
    ``ray.train.torch.get_device()`` on the CPU while the original trains on the GPU.
    """
    def run(workers: int, label: str) -> runner.Outcome:
        flags = runner.RunOptions(**{**asdict(common), "num_workers": workers, "same_sampler": True,
                                     "check_checkpoint": alone}).launch_flags()
        return _run(settings, "migrator.runtime.launch", converted, flags, env, label, outputs, warm)

    if alone or common.use_gpu or PROCESS_GROUP.search(converted.read_text(encoding="utf-8")):
        return run(1, "the converted script on 1 worker"), False
    local = run(0, "the converted script on 1 worker (in one process: Ray Train's local mode)")
    if trained(local):
        return local, True
    why = why_not_trained(local)
    report.notes.append(f"in Ray Train's local mode the converted script did not train ({why.splitlines()[0][:300]}): "
                        "compared on 1 Ray worker instead")
    return run(1, "the converted script on 1 worker"), False


def _figures(summary: dict[str, Any] | None) -> dict[str, Any] | None:
    if not summary:
        return None
    keys = ("wall_s", "steps", "steps_per_s", "startup_s", "last_loss", "checkpoint", "world_size")
    # What the run reported last (Result.metrics, else what the workers logged): the figures a
    # reader of the JSON checks a run by, as after `migrate run`.
    return {**{k: summary.get(k) for k in keys if k in summary}, "metrics": final_metrics(summary)}


def scale_checks(outcome: runner.Outcome, workers: int, report: Report) -> None:
    summary = outcome.summary or {}
    name = f"finishes on {workers} workers"
    if not trained(outcome):
        report.add("scales", name, FAIL, why_not_trained(outcome))
        report.add("scales", "losses finite", SKIP, "the run failed")
        report.add("scales", "checkpoint loads", SKIP, "the run failed")
        return
    report.add("scales", name, PASS, f"{summary.get('world_size')} workers up, {summary.get('steps')} steps on rank 0, "
                                     f"fit {summary['fits'][-1]['wall_s']} s")
    steps = summary.get("steps_by_rank") or {}
    bad = summary.get("nonfinite_losses") or {}
    missing = [str(r) for r in range(workers) if not steps.get(str(r))]
    if bad:
        report.add("scales", "losses finite", FAIL, "non-finite losses on rank(s) " + ", ".join(f"{r} ({n})" for r, n in bad.items()))
    elif missing:
        report.add("scales", "losses finite", FAIL, f"no training step recorded on rank(s) {', '.join(missing)}")
    else:
        last = [s[-1][1] for s in (summary.get("losses") or {}).values() if s]
        report.add("scales", "losses finite", PASS,
                   f"{sum(int(v) for v in steps.values())} steps over {len(steps)} ranks; last losses "
                   + ", ".join(f"{v:.4g}" for v in last if finite(v)))
    processes = summary.get("framework_processes") or {}
    for framework, seen in processes.items():
        world = summary.get("world_size") or workers
        if seen == world:
            report.add("scales", "workers share the work", PASS, f"{framework} runs {seen} processes, one per worker")
        else:
            report.add("scales", "workers share the work", WARN,
                       next((w for w in summary.get("warnings") or [] if framework in w),
                            f"{framework} sees {seen} process(es) on {world} workers"))
    load = summary.get("checkpoint_load") or {}
    if load.get("ok"):
        report.add("scales", "checkpoint loads", PASS, f"{load.get('how')}: {summary.get('checkpoint')}")
    elif summary.get("checkpoint") or summary.get("framework") in ("transformers", "lightning"):
        # Transformers and Lightning conversions report through RayTrainReportCallback: no
        # checkpoint there means the callback never fired.
        report.add("scales", "checkpoint loads", FAIL, load.get("error") or "no checkpoint was reported")
    else:
        report.add("scales", "checkpoint loads", WARN,
                   "the script reports no checkpoint to Ray (ray.train.report(..., checkpoint=...)): nothing to load")


# -- output ---------------------------------------------------------------------------------------
def render_table(report: Report) -> str:
    rows = [(c.group, c.name, c.verdict.upper(), c.detail) for c in report.checks]
    widths = [max([len(r[i]) for r in rows] + [len(h)]) for i, h in enumerate(("group", "check", "verdict"))]
    lines = [f"migrate validate: {report.original}", f"  converted: {report.converted or '(none)'}"]
    for note in report.notes:
        lines.append(f"  note: {note}")
    header = f"{'group':<{widths[0]}}  {'check':<{widths[1]}}  {'verdict':<{widths[2]}}  detail"
    lines += ["", header, "-" * len(header)]
    for group, name, verdict, detail in rows:
        lines.append(f"{group:<{widths[0]}}  {name:<{widths[1]}}  {verdict:<{widths[2]}}  {detail}")
    counts = {v: sum(c.verdict == v for c in report.checks) for v in (PASS, WARN, FAIL, SKIP)}
    verdict = "PASS" if report.ok else "FAIL"
    lines += ["", f"result: {verdict} ({counts[PASS]} passed, {counts[WARN]} warning(s), {counts[FAIL]} failed, "
                  f"{counts[SKIP]} skipped)"]
    return "\n".join(lines)


def to_json(report: Report) -> dict[str, Any]:
    return {
        "ok": report.ok,
        "exit_code": 0 if report.ok else 1,
        "original": report.original,
        "converted": report.converted,
        "notes": report.notes,
        "checks": [asdict(c) for c in report.checks],
        "figures": report.figures,
        "losses": report.losses,
    }


def draw(report: Report, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    styles = {"original": ("original (plain Python)", "-", "o"), "converted_1_worker": ("converted, 1 Ray worker", "--", "x")}
    workers = report.figures.get("loss_agreement", {}).get("workers", 1)
    if workers > 1:  # an original that started its own processes: compared with as many workers, rank 0 drawn
        styles = {"original": (f"original (plain Python, {workers} processes), rank 0", "-", "o"),
                  f"converted_{workers}_workers_rank0": (f"converted, {workers} Ray workers, rank 0", "--", "x")}
    for key, (label, style, marker) in styles.items():
        series = report.losses.get(key) or []
        if series:
            ax.plot([s for s, _ in series], [v for _, v in series], style, marker=marker, label=label, markersize=4)
    agreements = [c for c in report.checks if c.name.startswith("loss agreement")]
    agreement = next((c for c in agreements if c.verdict != SKIP), agreements[0] if agreements else None)
    title = f"{Path(report.original).name}: loss agreement {agreement.verdict.upper() if agreement else 'n/a'}"
    if agreement and agreement.detail:
        title += f"\n{agreement.detail}"
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("training loss")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
