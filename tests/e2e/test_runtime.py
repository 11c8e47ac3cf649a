"""``migrate run`` and ``migrate validate`` end to end, through the real CLI, on real clusters.

One sample of each kind: the project's Transformers, Lightning and Accelerate samples converted by
the engine, the guide's own example, and small Lightning, Accelerate and retired-Ray
(AccelerateTrainer) scripts with hand-written conversions under ``data/runtime/`` (one of them
deliberately broken, one with a different learning rate). The cluster paths use the session's head node (``ray start --head`` on
127.0.0.1, dashboard on loopback, stopped at the end): ``--address HOST:PORT`` and the Jobs API
(``--address http://...``). ``migrate run`` with no address starts its own embedded cluster, and
``migrate validate`` with no address its own head node: each is exercised once.

Every run is capped (``--max-steps``) and tiny, to keep the suite's wall time modest.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from migrator.engine import convert_source
from migrator.options import ConvertOptions
from migrator.registry import all_codemods
from tests import drivers
from tests.e2e.listening import alive, assert_private, started_with_home, watching

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).parent / "data" / "runtime"
GUIDE = ROOT / "fixtures" / "samples" / "guide" / "transformers_first_tab.py"
TIMEOUT_S = 600

pytestmark = pytest.mark.e2e


def migrate(*args: str, cwd: Path, timeout: int = TIMEOUT_S, auth: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``migrate ARGS``. ``auth``: the variables a cluster's drivers need (its token: token
    authentication stays on); against the session's cluster, with the environment and home of the
    test process's runs, so that ``migrate validate`` forks its runs from the test process's warm
    interpreter (``tests/drivers.py``)."""
    if auth is not None and drivers.CURRENT is not None:
        env = drivers.CURRENT.env(auth, standins="--offline-standins" in args)
    else:
        env = {
            **os.environ,
            **(auth or {}),
            "HOME": str(cwd),  # ~/ray_results, caches: the test's own
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        }
    env.pop("RAY_ADDRESS", None)
    try:
        return subprocess.run([sys.executable, "-m", "migrator.cli", *args], cwd=cwd, env=env,
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        err = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else exc.stderr or ""
        pytest.fail(f"migrate {' '.join(args)} ran past {timeout} s; stderr ended with:\n{err[-3000:]}")


def run_json(*args: str, cwd: Path, auth: dict[str, str] | None = None) -> tuple[dict, subprocess.CompletedProcess]:
    done = migrate(*args, "--json", cwd=cwd, auth=auth)
    try:
        data = json.loads(done.stdout)
    except ValueError:
        pytest.fail(f"no JSON on stdout (exit {done.returncode}); stderr:\n{done.stderr[-4000:]}")
    return data, done


def assert_ok(data: dict, done: subprocess.CompletedProcess) -> None:
    assert done.returncode == 0 and data["ok"], f"exit {done.returncode}; stderr:\n{done.stderr[-4000:]}"


def converted_sample(name: str, tmp_path: Path) -> Path:
    sample = ROOT / "fixtures" / "samples" / "transformers" / name
    result = convert_source(sample.read_bytes(), all_codemods(), ConvertOptions(), path=str(sample))
    assert result.status == "converted"
    target = tmp_path / name
    target.write_bytes(result.output)  # use_gpu=True, as the converter writes it by default
    return target


# -- migrate run ----------------------------------------------------------------------------------
def test_run_transformers_sample_on_its_own_local_cluster(tmp_path: Path) -> None:
    """No address: an embedded cluster for the run, private (loopback only or token authentication
    on, ``test_private_clusters.py``); every override applied without editing the file.
    This is the converted module_level.py sample's training on 2 workers (test_transformers_samples
    does not run it again): each worker trains on its half of the data, 100 examples, batch 8, 3
    epochs: 21 steps each (39 in one process; CPU workers need ACCELERATE_USE_CPU, which the
    conversion sets, or each trains alone on all the data)."""
    script = converted_sample("module_level.py", tmp_path)
    storage = tmp_path / "results"
    with watching(started_with_home(str(tmp_path))) as sockets:  # the embedded cluster's, while it trains
        data, done = run_json("run", str(script), "--cpu", "--num-workers", "2",
                              "--storage-path", str(storage), cwd=tmp_path)
    assert_ok(data, done)
    assert_private(sockets)
    assert data["mode"] == "local"
    assert data["scaling"]["num_workers"] == 2 and data["scaling"]["use_gpu"] is False
    assert data["world_size"] == 2 and data["steps"] == 21 == data["total_steps"]
    assert data["checkpoint"].startswith(str(storage))
    assert data["final_metrics"] and data["steps_per_s"] and data["startup_s"] is not None
    assert "workers 2/2" in done.stderr and "step 21/21" in done.stderr
    assert "checkpoint:" in done.stderr and "steps/s" in done.stderr
    from transformers import AutoModel

    AutoModel.from_pretrained(Path(data["checkpoint"]) / "checkpoint")


def test_run_lightning_on_an_existing_cluster(ray_cluster, tmp_path: Path) -> None:
    data, done = run_json("run", str(DATA / "lightning_regression_converted.py"), "--address",
                          ray_cluster.ensure_started(), "--cpu", "--num-workers", "2", "--max-steps", "5",
                          "--storage-path", str(tmp_path / "results"), cwd=tmp_path, auth=ray_cluster.driver_env)
    assert_ok(data, done)
    assert data["mode"] == "address" and data["world_size"] == 2
    assert data["steps"] == 5, data["losses"]
    assert (Path(data["checkpoint"]) / "checkpoint.ckpt").is_file()


def test_run_accelerate_on_one_worker_is_capped(ray_cluster, tmp_path: Path) -> None:
    data, done = run_json("run", str(DATA / "accelerate_regression_converted.py"), "--address",
                          ray_cluster.ensure_started(), "--cpu", "--num-workers", "1", "--max-steps", "7",
                          "--storage-path", str(tmp_path / "results"), cwd=tmp_path, auth=ray_cluster.driver_env)
    assert_ok(data, done)
    assert data["world_size"] == 1
    # 14 batches an epoch, 3 epochs: the cap stops the training loader, the epochs still report.
    assert [step for step, _ in data["losses"]["0"]] == list(range(1, 8))
    assert data["final_metrics"]["epoch"] == 2


def test_run_as_a_ray_job(ray_cluster, tmp_path: Path) -> None:
    """An http:// address: the script's folder goes up as the job's working_dir, logs are followed."""
    script_dir = tmp_path / "job"
    script_dir.mkdir()
    script = script_dir / "train.py"
    script.write_bytes((DATA / "accelerate_regression_converted.py").read_bytes())
    data, done = run_json("run", str(script), "--address", ray_cluster.ensure_jobs_url(), "--cpu",
                          "--num-workers", "2", "--max-steps", "4", "--storage-path", str(tmp_path / "results"),
                          cwd=tmp_path, auth=ray_cluster.driver_env)
    assert_ok(data, done)
    assert data["mode"] == "job" and data["job_id"]
    assert data["world_size"] == 2 and data["steps"] == 4
    assert "workers 2/2" in done.stderr
    assert data["checkpoint"].startswith(str(tmp_path / "results"))


def test_run_failure_shows_the_worker_error(ray_cluster, tmp_path: Path) -> None:
    done = migrate("run", str(DATA / "broken_driver_name_converted.py"), "--address", ray_cluster.ensure_started(),
                   "--cpu", "--storage-path", str(tmp_path / "results"), cwd=tmp_path, auth=ray_cluster.driver_env)
    assert done.returncode == 1
    err = done.stderr
    assert "migrate run: FAILED" in err
    block = err[err.index("migrate run: FAILED"):]
    assert "raised NameError" in block and "NameError: name 'x' is not defined" in block
    assert "broken_driver_name_converted.py" in block  # the frame in the user's script
    assert "full output:" in block


# -- migrate validate -----------------------------------------------------------------------------
def validate_json(*args: str, cwd: Path, auth: dict[str, str] | None = None) -> tuple[dict, subprocess.CompletedProcess]:
    # --json before a `--`: what follows it is the script's own command line.
    cut = args.index("--") if "--" in args else len(args)
    done = migrate("validate", *args[:cut], "--json", *args[cut:], cwd=cwd, auth=auth)
    try:
        return json.loads(done.stdout), done
    except ValueError:
        pytest.fail(f"no JSON on stdout (exit {done.returncode}); stderr:\n{done.stderr[-4000:]}")


def verdicts(report: dict) -> dict[str, str]:
    return {check["name"]: check["verdict"] for check in report["checks"]}


def assert_all_pass(report: dict, done: subprocess.CompletedProcess) -> None:
    failed = [c for c in report["checks"] if c["verdict"] == "fail"]
    assert done.returncode == 0 and report["ok"] and not failed, f"{failed}\n{done.stderr[-4000:]}"


def assert_runs_forked(report: dict, runs: int = 3) -> None:
    """Every run started from the warm interpreter (``migrator.runtime.warm``), none refused; a
    validation against the session's cluster, from the test process's (``tests/drivers.py``)."""
    warm = report["figures"]["warm"]
    assert warm["runs"] == runs and warm["refused"] == [] and warm["imported"], warm
    if drivers.CURRENT is not None and drivers.CURRENT.socket:  # the test process's, against the session's cluster
        assert warm["shared"] in (drivers.CURRENT.socket, drivers.CURRENT.standins_socket), warm
        assert warm["shared"] is not None, warm


def assert_compared_in_one_process(report: dict) -> None:
    """The run compared with the original was made in Ray Train's local mode, with no fallback."""
    one = next(c for c in report["checks"] if c["name"] == "converted runs on 1 worker")
    assert one["verdict"] == "pass" and "local mode" in one["detail"], one
    assert not any("compared on 1 Ray worker instead" in note for note in report["notes"]), report["notes"]


def test_validate_the_guide_example_offline(tmp_path: Path) -> None:
    """The guide's first tab, verbatim: converted here, stand-ins for the hub, its own head node,
    private (loopback only or token authentication on, ``test_private_clusters.py``)."""
    script = tmp_path / GUIDE.name
    script.write_bytes(GUIDE.read_bytes())
    plot = tmp_path / "loss.png"
    started = started_with_home(str(tmp_path))
    with watching(started) as sockets:  # the private head's, while it serves
        report, done = validate_json(str(script), "--offline-standins", "--max-steps", "8", "--plot", str(plot),
                                     cwd=tmp_path)
    assert_all_pass(report, done)
    assert_private(sockets)
    assert not alive(started()), "validate left processes of its own running"  # its head was stopped
    assert set(verdicts(report).values()) == {"pass"}
    agreement = report["figures"]["loss_agreement"]
    assert agreement["original_steps"] == agreement["converted_steps"] == 8
    assert agreement["max_difference"] <= 1e-4
    assert any("eval_strategy" in note for note in report["notes"])  # evaluation_strategy, renamed to run
    assert plot.stat().st_size > 10_000
    assert "result: PASS" in done.stderr and "loss agreement (1 worker)" in done.stderr
    assert "BertForSequenceClassification.from_pretrained" in done.stderr
    assert_compared_in_one_process(report)


@pytest.mark.parametrize(("sample", "keys"), [("lightning/regression_module_level.py", {"val_loss", "epoch", "step"}),
                                            ("accelerate/regression_module_level.py", {"epoch", "train_loss", "val_loss"})],
                         ids=["lightning", "accelerate"])
def test_validate_converts_and_passes(sample: str, keys: set[str], ray_cluster, tmp_path: Path) -> None:
    """The project's own samples, converted by the codemods here and now. The run on 2 workers is
    the sample's training on Ray, not run again elsewhere: it reports the sample's metrics. The
    Lightning sample seeds with `pl.seed_everything(42)` above its class: the losses agree only if
    the copy of that call in the train function seeds the worker (not the harness's seed 0), and
    if Lightning's strategy does not seed again at set-up."""
    script = tmp_path / Path(sample).name
    script.write_bytes((ROOT / "fixtures" / "samples" / sample).read_bytes())
    report, done = validate_json(str(script), "--max-steps", "8", "--address", ray_cluster.ensure_started(), cwd=tmp_path, auth=ray_cluster.driver_env)
    assert_all_pass(report, done)
    assert report["figures"]["loss_agreement"]["max_difference"] <= 1e-4
    assert_compared_in_one_process(report)
    assert_runs_forked(report)
    checks = verdicts(report)
    assert checks["conversion"] == "pass" and checks["losses finite"] == "pass"
    assert checks["checkpoint loads"] in ("pass", "warn")  # an Accelerate loop may report no checkpoint
    run = report["figures"]["runs"]["converted_2_workers"]
    assert run["world_size"] == 2 and keys <= set(run["metrics"]), run
    if sample.startswith("lightning"):  # Ray's Lightning callback writes checkpoint.ckpt
        assert checks["checkpoint loads"] == "pass" and (Path(run["checkpoint"]) / "checkpoint.ckpt").is_file()


def test_validate_legacy_ray_script_runs_on_the_emulation(ray_cluster, warm_driver: drivers.Drivers,
                                                          tmp_path: Path) -> None:
    """The original builds its dataset with Ray Data at module level, which starts a Ray of its own
    in that process: as private as the others (``test_private_clusters.py``), measured while it runs.
    The runs start from the test process's warm interpreter, with its ``HOME``."""
    address = ray_cluster.ensure_started()
    with watching(started_with_home(str(warm_driver.home))) as sockets:
        report, done = validate_json(str(DATA / "legacy_accelerate_trainer.py"), "--converted",
                                     str(DATA / "legacy_accelerate_trainer_converted.py"), "--address",
                                     address, cwd=tmp_path, auth=ray_cluster.driver_env)
    assert_all_pass(report, done)
    print(sorted(sockets))
    assert_private(sockets)  # the original's own GCS and raylet: the session cluster's have another HOME
    checks = {c["name"]: c for c in report["checks"]}
    # AccelerateTrainer is gone from this Ray: the original runs on migrate's one-worker emulation,
    # Ray Data shard and ray.train.report included, and the losses agree step for step.
    assert checks["original runs"]["verdict"] == "pass", checks["original runs"]
    assert any("retired AccelerateTrainer" in note for note in report["notes"])
    assert checks["converted runs on 1 worker"]["verdict"] == "pass"
    assert checks["loss agreement (1 worker)"]["verdict"] == "pass", checks["loss agreement (1 worker)"]
    assert report["figures"]["loss_agreement"]["original_steps"] > 0
    assert_compared_in_one_process(report)
    assert checks["checkpoint loads"]["verdict"] == "pass"
    # The run on 2 workers is the converted script's training, checked here and not run again.
    run = report["figures"]["runs"]["converted_2_workers"]
    assert run["world_size"] == 2 and run["steps"] > 0
    assert (Path(run["checkpoint"]) / "model.pt").is_file()
    assert run["metrics"]["epoch"] == 1


def test_validate_fails_on_a_name_only_the_driver_defines(tmp_path: Path) -> None:
    report, done = validate_json(str(DATA / "accelerate_regression.py"), "--converted",
                                 str(DATA / "broken_driver_name_converted.py"), cwd=tmp_path)
    assert done.returncode == 1 and not report["ok"]
    checks = {c["name"]: c for c in report["checks"]}
    names = checks["names defined on the workers"]
    assert names["verdict"] == "fail"
    assert "`x` is read but defined nowhere the code runs" in names["detail"]
    assert checks["original runs"]["verdict"] == "skip"  # nothing ran: the static failure says it all
    assert "result: FAIL" in done.stderr


def test_validate_fails_when_the_losses_differ(ray_cluster, tmp_path: Path) -> None:
    report, done = validate_json(str(DATA / "accelerate_regression.py"), "--converted",
                                 str(DATA / "accelerate_regression_lossdiff_converted.py"), "--max-steps", "6",
                                 "--num-workers", "1", "--address", ray_cluster.ensure_started(), cwd=tmp_path, auth=ray_cluster.driver_env)
    assert done.returncode == 1 and not report["ok"]
    checks = {c["name"]: c for c in report["checks"]}
    agreement = checks["loss agreement (1 worker)"]
    assert agreement["verdict"] == "fail"
    assert "largest difference" in agreement["detail"] and "original" in agreement["detail"]
    assert report["figures"]["loss_agreement"]["max_difference"] > 1e-4
    assert checks["converted runs on 1 worker"]["verdict"] == "pass"
