"""``migrate run`` and ``migrate validate``: the click commands.

Importing this module imports neither ray, torch nor transformers (``migrate convert`` imports it
to register the commands): the run happens in a child process (``migrator.runtime.launch``) or
as a Ray Job, and the commands only read their events.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import click

from migrator.runtime import preflight

EXIT_OK, EXIT_FAILED = 0, 1

_ADDRESS_HELP = (
    "The Ray cluster to run on: HOST:PORT (or ray://...) for an existing cluster, or http://HOST:8265 to "
    "submit the script as a Ray Job (Jobs API, with the script's folder as working_dir) and follow its logs. "
    "Default: RAY_ADDRESS, else a local cluster started for the run (dashboard off, loopback only)."
)


def _scaling_options(function):
    options = [
        click.option("--num-workers", type=click.IntRange(min=1), help="Number of Ray Train workers, overriding the script's ScalingConfig."),
        click.option("--gpu/--cpu", "use_gpu", default=None,
                     help="Run the workers on GPUs (use_gpu=True) or on CPUs, overriding the script's ScalingConfig. "
                          "With fewer GPUs than workers, workers share them (fractional GPUs, gloo backend)."),
        click.option("--gpus-per-worker", type=click.FloatRange(min=0, min_open=True), metavar="F",
                     help="GPUs per worker, fractional allowed (0.5: two workers share a GPU); implies --gpu."),
        click.option("--storage-path", metavar="URI", help="Where Ray Train keeps results and checkpoints, overriding the script's RunConfig."),
        click.option("--max-steps", type=click.IntRange(min=1), metavar="N",
                     help="Cap training at N optimizer steps: TrainingArguments.max_steps for Transformers, "
                          "Trainer(max_steps=) for Lightning, training DataLoaders for Accelerate and plain PyTorch loops."),
        click.option("--offline-standins", is_flag=True,
                     help="Make from_pretrained, load_dataset and evaluate.load return tiny random stand-ins of the same kind (no network needed)."),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def _read_source(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise click.ClickException(f"cannot read {path}: {exc}") from None


def _script_of_notebook(path: Path) -> Path:
    """A notebook runs as its code cells joined into a script (IPython lines skipped, with a note)."""
    if path is None or path.suffix.lower() != ".ipynb":
        return path
    from migrator import notebooks

    try:
        text, skipped = notebooks.script_of(path.read_bytes())
    except (OSError, notebooks.NotebookError) as exc:
        raise click.ClickException(f"cannot read {path}: {exc}") from None
    target = Path(tempfile.mkdtemp(prefix="migrate-nb-")) / f"{path.stem}.py"
    target.write_text(text, encoding="utf-8")
    click.echo(f"note: {path} runs as its code cells ({target}); {skipped} IPython-only line(s) skipped", err=True)
    return target


def _preflight(path: Path, source: str) -> None:
    """Refuse, in one line and before anything starts, a script that cannot work."""
    mismatch = preflight.lightning_mismatch(source)
    if mismatch:
        click.echo(f"error: {path}: {mismatch}", err=True)
        sys.exit(EXIT_FAILED)


@click.command("run", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("script", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("script_args", nargs=-1, type=click.UNPROCESSED)
@click.option("--address", envvar="RAY_ADDRESS", metavar="ADDRESS", help=_ADDRESS_HELP)
@_scaling_options
@click.option("--seed", type=int, help="Seed random, numpy and torch on the driver and at the start of the train function on every worker.")
@click.option("--num-cpus", type=click.IntRange(min=1), help="Logical CPUs of the local cluster (default: the machine's cores, at least 4).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout.")
@click.option("--log-file", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the script's full output (driver and workers) here. Default: a temporary file, named in the summary.")
@click.option("-v", "--verbose", is_flag=True, help="Also stream the script's output to stderr while it runs.")
def run(script: Path, script_args: tuple[str, ...], address: str | None, num_workers: int | None, use_gpu: bool | None,
        gpus_per_worker: float | None, storage_path: str | None, max_steps: int | None, offline_standins: bool,
        seed: int | None, num_cpus: int | None, as_json: bool, log_file: Path | None, verbose: bool) -> None:
    """Run a converted SCRIPT as __main__ on Ray Train workers.

    Arguments after `--` go to the script. The script's ScalingConfig and RunConfig are overridden
    by the options given, without editing the file. Progress is shown while it trains, then a
    summary (final metrics, checkpoint, wall time, throughput). Exit code 0 when training
    finished, 1 when it failed (the worker's error is shown).
    """
    from migrator.runtime import runner
    from migrator.runtime.progress import Progress, error_block, final_metrics, render_summary

    notebook_folder = [str(script.resolve().parent)] if script.suffix.lower() == ".ipynb" else None
    script = _script_of_notebook(script)
    source = _read_source(script)
    _preflight(script, source)
    if not preflight.uses_torch_trainer(source):
        click.echo(f"warning: {script} builds no TorchTrainer; convert it first (migrate convert {script})", err=True)
    options = runner.RunOptions(
        num_workers=num_workers, use_gpu=use_gpu, gpus_per_worker=gpus_per_worker, storage_path=storage_path,
        max_steps=max_steps, seed=seed, standins=offline_standins, num_cpus=num_cpus,
    )
    jobs = runner.is_jobs_address(address)
    if log_file is None:
        handle, name = tempfile.mkstemp(prefix="migrate-run-", suffix=".log")
        os.close(handle)
        log_file = Path(name)
    progress = Progress(enabled=True)
    where = f"Ray Job at {address}" if jobs else (f"cluster {address}" if address else "a local Ray cluster")
    click.echo(f"migrate run: {script} on {where}", err=True)
    start = time.monotonic()
    with log_file.open("w", encoding="utf-8") as log:
        def on_line(text: str) -> None:
            log.write(text + "\n")
            if verbose:
                progress.close()
                click.echo(text, err=True)

        try:
            if jobs:
                outcome = runner.submit_job(address, str(script), options.launch_flags(), list(script_args),
                                            on_event=progress.event, on_line=on_line)
            else:
                flags = options.launch_flags() + ([] if address else ["--local-cluster"])
                outcome = runner.run_module("migrator.runtime.launch", str(script.resolve()), flags, list(script_args),
                                            cwd=os.getcwd(), env=runner.child_env(address, pythonpath=notebook_folder),
                                            on_event=progress.event,
                                            on_line=on_line)
        except KeyboardInterrupt:
            progress.close()
            click.echo("migrate run: interrupted", err=True)
            sys.exit(130)
        finally:
            progress.close()
    wall = time.monotonic() - start
    summary = outcome.summary
    ok = outcome.ok
    if ok and summary is not None and not summary.get("fit_calls"):
        ok = False
        summary = {**summary, "ok": False, "error": "the script never called TorchTrainer.fit(): was it converted?"}
    if as_json:
        data = {
            "ok": ok,
            "exit_code": EXIT_OK if ok else EXIT_FAILED,
            "mode": outcome.mode,
            "job_id": outcome.job_id,
            "wall_s": round(wall, 2),
            "log": str(log_file),
            "final_metrics": final_metrics(summary or {}),
            **{k: (summary or {}).get(k) for k in (
                "fit_calls", "checkpoint", "path", "steps", "total_steps", "steps_per_s", "startup_s", "world_size",
                "scaling", "devices", "framework_processes", "error", "worker_errors", "error_traceback", "pickled", "warnings", "last_loss",
                "latest_metrics", "losses")},
        }
        click.echo(json.dumps(data, indent=2, default=repr))
    if ok:
        click.echo(f"migrate run: finished in {wall:.1f} s ({summary.get('fit_calls')} fit call(s))", err=True)
        click.echo(render_summary(summary, {"wall time": f"{wall:.1f} s", "log": str(log_file)}), err=True)
        sys.exit(EXIT_OK)
    reason = (summary or {}).get("error") or f"the driver exited with code {outcome.returncode}"
    click.echo(f"migrate run: FAILED after {wall:.1f} s: {reason}", err=True)
    click.echo(error_block(summary, outcome.output_tail), err=True)
    click.echo(f"  full output: {log_file}", err=True)
    sys.exit(EXIT_FAILED)


@click.command("validate", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("original", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("script_args", nargs=-1, type=click.UNPROCESSED)
@click.option("--converted", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The converted script to check. Default: convert ORIGINAL now (the result is kept in a temporary folder).")
@click.option("--max-steps", type=click.IntRange(min=2), default=20, show_default=True,
              help="Steps each run trains for (the same cap for the original and the converted script).")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed for random, numpy and torch, set at the start of the original and of the train function on every worker.")
@click.option("--tolerance", type=click.FloatRange(min=0), default=1e-4, show_default=True,
              help="Largest allowed per-step loss difference between the original and 1 worker, relative to max(1, |loss|).")
@click.option("--num-workers", type=click.IntRange(min=1), default=2, show_default=True,
              help="Workers for the scaling check.")
@click.option("--gpu/--cpu", "use_gpu", default=None,
              help="Run the converted script's workers on GPUs or CPUs. Default: GPUs when this machine has one.")
@click.option("--offline-standins", is_flag=True,
              help="Tiny random stand-ins for from_pretrained, load_dataset and evaluate.load, in every run.")
@click.option("--address", metavar="HOST:PORT", help="An existing Ray cluster for the converted runs (default: a private local one).")
@click.option("--storage-path", metavar="URI", help="Where the converted runs keep results (default: a temporary folder).")
@click.option("--pickle-warn-mb", type=click.FloatRange(min=0), default=5.0, show_default=True,
              help="Warn when the pickled train function and its config are larger than this.")
@click.option("--keep-going", is_flag=True, help="Run the scripts even when a static check failed.")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), help="Draw both loss curves into this image (PNG, SVG, PDF).")
@click.option("--json", "as_json", is_flag=True, help="Print the verdicts and figures as JSON on stdout.")
@click.option("-v", "--verbose", is_flag=True, help="Stream the runs' output to stderr.")
def validate(original: Path, script_args: tuple[str, ...], converted: Path | None, max_steps: int, seed: int,
             tolerance: float, num_workers: int, use_gpu: bool | None, offline_standins: bool, address: str | None,
             storage_path: str | None, pickle_warn_mb: float, keep_going: bool, plot: Path | None, as_json: bool,
             verbose: bool) -> None:
    """Check that a conversion of ORIGINAL trains like ORIGINAL, and print a table of verdicts.

    1. Static: the converted file parses, its train function reads no name missing on a worker,
    parses no command line, and captures nothing large. 2. Runs: the original (plain Python) and
    the converted script on 1 worker, seeded alike and capped at --max-steps, log the same
    per-step training loss within --tolerance (an original that starts N processes itself with
    torch.multiprocessing.spawn is compared rank by rank with N workers instead, in step 3).
    3. Scales: on --num-workers workers the converted script finishes, its losses are finite and
    its checkpoint loads back. Arguments after `--`
    go to both scripts. Exit code 0 only when every check passes.
    """
    from migrator.runtime.validate import Settings, render_table, run_validation, to_json

    original, converted = _script_of_notebook(original), _script_of_notebook(converted)
    settings = Settings(
        original=original, converted=converted, script_args=list(script_args), max_steps=max_steps, seed=seed,
        tolerance=tolerance, num_workers=num_workers, use_gpu=use_gpu, standins=offline_standins,
        address=address, storage_path=storage_path, pickle_warn_mb=pickle_warn_mb, keep_going=keep_going,
        plot=plot, verbose=verbose,
    )
    report = run_validation(settings)
    if as_json:
        click.echo(json.dumps(to_json(report), indent=2, default=repr))
    click.echo(render_table(report), err=True)
    sys.exit(EXIT_OK if report.ok else EXIT_FAILED)
