"""What ``migrator.runtime.local_runs`` saves: one converted sample, trained on a private local
cluster with Ray Train's defaults and with the local-run settings, in turn.

    python benchmarks/local_run_settings.py [SAMPLE] [--repeat N]

SAMPLE (default: ``fixtures/samples/pytorch/mlp_main_argparse.py``) is converted for 2 CPU
workers, then run through ``migrator.runtime.launch`` against one ``LocalCluster`` (as the
end-to-end tests and ``migrate validate`` run it), N times each way, alternating. Prints each
run's wall time (process start to exit), the medians and their ratio. Asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from migrator.engine import convert_source  # noqa: E402
from migrator.options import ConvertOptions  # noqa: E402
from migrator.registry import all_codemods  # noqa: E402
from migrator.runtime import local_runs  # noqa: E402
from migrator.runtime.cluster import LocalCluster  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sample", nargs="?", default=str(ROOT / "fixtures/samples/pytorch/mlp_main_argparse.py"))
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    sample = Path(args.sample)
    result = convert_source(sample.read_bytes(), all_codemods(), ConvertOptions(num_workers=2, use_gpu=False), str(sample))
    assert result.status == "converted", result.error or result.entries
    work = Path(tempfile.mkdtemp(prefix="migrate-bench-"))
    script = work / sample.name
    script.write_bytes(result.output)

    base = {k: v for k, v in os.environ.items() if k not in local_runs.SETTINGS}
    cluster = LocalCluster(num_cpus=4, num_gpus=0, env=base)
    start = time.perf_counter()
    address = cluster.ensure_started()
    print(f"cluster start: {time.perf_counter() - start:.1f} s")
    auth = {k: v for k, v in cluster.driver_env.items() if k not in local_runs.SETTINGS}
    times: dict[str, list[float]] = {"Ray's defaults": [], "local-run settings": []}
    try:
        for i in range(args.repeat):
            for label, extra in (("Ray's defaults", {}), ("local-run settings", local_runs.SETTINGS)):
                env = {**base, **auth, **extra, "RAY_ADDRESS": address,
                       "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), base.get("PYTHONPATH")]))}
                command = [sys.executable, "-m", "migrator.runtime.launch", str(script),
                           "--storage-path", str(work / "results"), "--summary", str(work / f"summary{i}.json")]
                start = time.perf_counter()
                done = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True)
                wall = time.perf_counter() - start
                if done.returncode != 0:
                    sys.exit(f"{label}: exit {done.returncode}\n{done.stderr[-3000:]}")
                times[label].append(wall)
                print(f"run {i + 1}, {label}: {wall:.1f} s")
    finally:
        cluster.stop()
    default, tuned = (statistics.median(t) for t in times.values())
    print(f"\n{sample.name} on 2 CPU workers, median of {args.repeat}:")
    print(f"  Ray's defaults      {default:6.1f} s")
    print(f"  local-run settings  {tuned:6.1f} s   ({default / tuned:.2f}x faster, {default - tuned:.1f} s less per run)")


if __name__ == "__main__":
    main()
