"""What running on Ray Train costs: the original's steps/s, the converted script's on 1 worker,
their ratio, and the start-up time of the Ray run (cluster up to first training step).

    python benchmarks/runtime_overhead.py [SAMPLE] [--max-steps N] [--offline-standins]

SAMPLE (default: ``fixtures/samples/transformers/module_level.py``) is converted with every
codemod; both scripts are then run the way ``migrate validate`` runs them: the original in plain
Python (``migrator.runtime.original``), the converted script through ``migrator.runtime.launch``
on a fresh embedded local cluster, one CPU worker, the same seed and the same step cap. Steps/s
count the optimizer steps between the first and the last one (start-up excluded), from the
timestamps the instrumented processes report; the steady-state line uses the median time between
two steps instead, which leaves out the pauses for evaluation and checkpoints (the converted
Transformers script saves, and reports to Ray, at every epoch's end).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from migrator.engine import convert_source  # noqa: E402
from migrator.options import ConvertOptions  # noqa: E402
from migrator.registry import all_codemods  # noqa: E402
from migrator.runtime import runner  # noqa: E402
from migrator.runtime.events import Tally  # noqa: E402


def timed_run(module: str, script: Path, flags: list[str], env: dict[str, str], cwd: Path) -> tuple[runner.Outcome, Tally, float]:
    tally = Tally()
    start = time.time()
    outcome = runner.run_module(module, str(script), flags, [], cwd=str(cwd), env=env, on_event=tally.add,
                                on_line=lambda line: None)
    if not outcome.ok:
        tail = "\n".join(outcome.output_tail[-30:])
        raise SystemExit(f"{module} {script.name} failed: {(outcome.summary or {}).get('error')}\n{tail}")
    return outcome, tally, start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sample", nargs="?", default=str(ROOT / "fixtures" / "samples" / "transformers" / "module_level.py"))
    parser.add_argument("--max-steps", type=int, default=30)
    parser.add_argument("--offline-standins", action="store_true")
    parser.add_argument("--original-threads", type=int, metavar="N",
                        help="Run the original with OMP_NUM_THREADS=N (Ray gives a 1-CPU worker 1 thread); default: as users run it.")
    options = parser.parse_args()
    sample = Path(options.sample).resolve()
    work = Path(tempfile.mkdtemp(prefix="migrate-bench-"))
    result = convert_source(sample.read_bytes(), all_codemods(), ConvertOptions(use_gpu=False), path=str(sample))
    if result.status != "converted":
        raise SystemExit(f"{sample} did not convert: {result.status} {result.error or ''}")
    converted = work / sample.name
    converted.write_bytes(result.output)
    common = ["--events", "--seed", "0", "--max-steps", str(options.max_steps)]
    if options.offline_standins:
        common.append("--offline-standins")
    env = runner.child_env(None, pythonpath=[str(sample.parent)])

    original_env = dict(env)
    if options.original_threads:
        original_env["OMP_NUM_THREADS"] = str(options.original_threads)
    _, original, _ = timed_run("migrator.runtime.original", sample, common, original_env, work)
    _, ray_run, launched = timed_run("migrator.runtime.launch", converted,
                                     [*common, "--local-cluster", "--num-workers", "1", "--cpu",
                                      "--storage-path", str(work / "results")], env, work)
    original_rate, ray_rate = original.steps_per_s(), ray_run.steps_per_s()
    print(f"sample:                          {os.path.relpath(sample, ROOT)}, {options.max_steps} steps, 1 CPU worker")
    threads = options.original_threads or f"default ({os.cpu_count()} cores)"
    print(f"original (plain Python):         {original_rate:.2f} steps/s ({original.steps(0)} steps, threads: {threads})")
    print(f"converted, 1 Ray worker:         {ray_rate:.2f} steps/s ({ray_run.steps(0)} steps, threads: 1, Ray's OMP_NUM_THREADS)")
    print(f"ratio (converted / original):    {ray_rate / original_rate:.3f}")
    steady_original, steady_ray = original.median_steps_per_s(), ray_run.median_steps_per_s()
    print(f"steady state (median step time): original {steady_original:.2f} steps/s, converted {steady_ray:.2f} steps/s, "
          f"ratio {steady_ray / steady_original:.3f}")
    print(f"start-up of the Ray run:         {ray_run.startup_s():.1f} s from cluster up to the first step")
    if ray_run.cluster_up_t is not None and ray_run.first_step_t is not None:
        print(f"  driver start to cluster up:    {ray_run.cluster_up_t - launched:.1f} s (ray.init, imports)")
        print(f"  driver start to first step:   {ray_run.first_step_t - launched:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
