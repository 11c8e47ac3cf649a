"""Events as text, what they add up to, and what the runtime tells from a script's source."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest

from migrator.runtime import events as ev
from migrator.runtime import preflight
from migrator.runtime.progress import Progress, error_block, interesting_metrics, render_summary


def test_an_event_survives_a_log_prefix_and_other_output() -> None:
    event = {"kind": "step", "rank": 1, "step": 3, "loss": 0.5, "t": 1.0}
    line = ev.encode(event).decode()
    assert line.endswith("\n") and ev.parse(line) == event
    assert ev.parse("(RayTrainWorker pid=12, ip=127.0.0.1) 100%|###| " + line) == event
    assert ev.parse("no event here") is None
    assert ev.parse(ev.MARKER + "{broken") is None
    assert ev.parse(ev.MARKER + '{"no": "kind"}') is None


def test_the_tally_adds_up_steps_rates_and_start_up() -> None:
    tally = ev.Tally().extend([
        {"kind": "cluster_up", "t": 100.0},
        {"kind": "fit_start", "num_workers": 2, "use_gpu": False, "t": 100.5},
        {"kind": "worker_up", "rank": 0, "world_size": 2},
        {"kind": "worker_up", "rank": 1, "world_size": 2},
        {"kind": "train_begin", "rank": 0, "total_steps": 3},
        *({"kind": "step", "rank": r, "step": s, "loss": 1.0 / s, "t": 110.0 + s} for s in (1, 2, 3) for r in (0, 1)),
        {"kind": "step", "rank": 1, "step": 4, "loss": "nan", "t": 114.0},
        {"kind": "metrics", "rank": 0, "metrics": {"eval_accuracy": 0.5}},
        {"kind": "metrics", "rank": 1, "metrics": {"eval_accuracy": 0.9}},
        {"kind": "report", "rank": 0, "metrics": {"loss": 0.3}, "checkpoint": True},
    ])
    figures = tally.figures()
    assert figures["steps"] == 3 and figures["steps_by_rank"] == {"0": 3, "1": 4}
    assert figures["steps_per_s"] == 1.0 and figures["startup_s"] == 11.0
    assert figures["latest_metrics"] == {"eval_accuracy": 0.5}  # rank 0's
    assert figures["nonfinite_losses"] == {"1": 1} and figures["checkpoints_reported"] == 1
    assert figures["scaling"] == {"num_workers": 2, "use_gpu": False}
    assert math.isclose(figures["last_loss"], 1 / 3)


def test_progress_prints_phases_and_steps_when_not_a_terminal(capsys: pytest.CaptureFixture) -> None:
    progress = Progress(stream=sys.stdout, interval_s=0)
    for event in [{"kind": "cluster_up", "cpus": 4, "gpus": 0}, {"kind": "fit_start", "num_workers": 2},
                  {"kind": "worker_up", "rank": 0}, {"kind": "worker_up", "rank": 1},
                  {"kind": "train_begin", "rank": 0, "total_steps": 10},
                  {"kind": "step", "rank": 0, "step": 4, "loss": 0.25, "t": 1},
                  {"kind": "metrics", "rank": 0, "metrics": {"eval_accuracy": 0.75, "train_runtime": 3}}]:
        progress.event(event)
    out = capsys.readouterr().out
    assert "cluster up (4 CPUs, 0 GPUs)" in out
    assert "training | workers 2/2 | step 4/10 | loss 0.2500 | eval_accuracy 0.75" in out
    assert "train_runtime" not in out


def test_summary_and_error_block() -> None:
    summary = {"scaling": {"num_workers": 2, "use_gpu": True, "resources_per_worker": {"GPU": 0.5}, "backend": "gloo"},
               "steps": 20, "steps_per_s": 4.0, "startup_s": 12.5, "metrics": {"eval_loss": 0.5, "epoch": 1.0},
               "checkpoint": "/r/ckpt", "latest_metrics": {"train_samples_per_second": 32.0}}
    text = render_summary(summary, {"wall time": "30.0 s"})
    assert "2 GPU worker(s), GPU 0.5 each, gloo backend" in text
    assert "20 on rank 0, 4.00 steps/s, 32.0 samples/s" in text and "12.5 s (cluster up to first step)" in text
    assert "eval_loss=0.5" in text and "epoch" not in text and "/r/ckpt" in text
    failed = {"worker_errors": [{"rank": 1, "type": "NameError", "message": "name 'x' is not defined", "t": 2,
                                 "traceback": "Traceback ...\nNameError: name 'x' is not defined"}],
              "error": "WorkerGroupError: ..."}
    block = error_block(failed, [])
    assert "worker rank 1 raised NameError" in block and block.count("NameError: name 'x'") == 1
    assert "without a summary" in error_block(None, ["last words"]) and "last words" in error_block(None, ["last words"])
    assert interesting_metrics({"loss": 1, "eval_acc": 2, "learning_rate": 3}) == [("eval_acc", 2), ("loss", 1)]


@pytest.mark.parametrize("source, expected", [
    ("from transformers import Trainer\nTrainer()", "transformers"),
    ("import transformers\nt = transformers.Seq2SeqTrainer()", "transformers"),
    ("from trl import SFTTrainer", "transformers"),
    ("from transformers import AutoModel\nfrom accelerate import Accelerator", "accelerate"),
    ("import lightning.pytorch as pl", "lightning"),
    ("import pytorch_lightning as pl", "lightning"),
    ("import torch", "torch"),
    ("def broken(:", "torch"),
])
def test_framework(source: str, expected: str) -> None:
    assert preflight.framework(source) == expected


LIGHTNING_CONVERTED = "import {pkg} as pl\nfrom ray.train.lightning import prepare_trainer\n"


def test_lightning_mismatch_in_both_directions() -> None:
    with_pl = LIGHTNING_CONVERTED.format(pkg="pytorch_lightning")
    message = preflight.lightning_mismatch(with_pl, lightning_installed=True)
    assert message is not None and "\n" not in message
    assert message.startswith("line 1: the script imports pytorch_lightning")
    assert "binds to lightning.pytorch" in message and "--lightning-package lightning" in message
    assert preflight.lightning_mismatch(with_pl, lightning_installed=False) is None
    with_lightning = LIGHTNING_CONVERTED.format(pkg="lightning.pytorch")
    assert preflight.lightning_mismatch(with_lightning, lightning_installed=True) is None
    reverse = preflight.lightning_mismatch(with_lightning, lightning_installed=False)
    assert reverse and "binds to pytorch_lightning" in reverse
    # Not converted yet (no ray.train.lightning): nothing to say.
    assert preflight.lightning_mismatch("import pytorch_lightning", lightning_installed=True) is None


def test_retired_ray_api_and_gpu_hints() -> None:
    assert "AccelerateTrainer" in preflight.retired_ray_api("from ray.train.huggingface import AccelerateTrainer")
    assert "LightningTrainer" in preflight.retired_ray_api("from ray.train.lightning import LightningTrainer")
    assert preflight.retired_ray_api("from ray.train.torch import TorchTrainer") is None
    assert preflight.gpu_hint("model.cuda()") == "line 1: .cuda()"
    assert preflight.gpu_hint("x = 1") is None


def test_string_keys_name_the_columns_a_script_reads() -> None:
    source = 'ds = load_dataset("x")\nds["train"].map(lambda b: tok(b["text"]), remove_columns=["text", "idx"])\ny = b["label"]'
    assert preflight.string_keys(source) == ["train", "text", "idx", "label"]


def test_the_commands_module_imports_nothing_heavy() -> None:
    code = ("import sys, migrator.runtime.commands, migrator.runtime.runner, migrator.runtime.progress; "
            "print(sorted({'ray', 'torch', 'transformers', 'lightning', 'accelerate'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
