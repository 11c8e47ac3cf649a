"""Convert every Transformers sample with the engine and train it under Ray Train on CPU workers.

Each converted script must finish, report metrics, and leave a checkpoint holding a model that
``from_pretrained`` can load. ``module_level_converted.py`` (converted by hand, following the
guide) proves the harness itself.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from migrator.engine import convert_source
from migrator.options import ConvertOptions
from migrator.registry import all_codemods

ROOT = Path(__file__).resolve().parents[2]
# module_level.py trains on 2 workers in test_runtime's `migrate run` on its own local cluster, checked there.
SAMPLES = sorted(p for p in (ROOT / "fixtures" / "samples" / "transformers").glob("*.py") if p.stem != "module_level")
DATA = Path(__file__).parent / "data"

# Command lines the samples are run with, as their users would: the HfArgumentParser script is
# never run bare, and its defaults (logging_steps=500, no eval) would report empty metrics. It
# turns saving off, as people do to spare disk: no codemod can see a command line, and the report
# callback still makes the Trainer save (so report to Ray) after each evaluation.
SCRIPT_ARGS = {
    "argparse_args": ["--epochs", "1", "--output-dir", "argparse_out"],
    "hf_argparser": ["--output_dir", "hf_out", "--num_train_epochs", "2", "--logging_steps", "4",
                     "--eval_strategy", "epoch", "--save_strategy", "no"],
}
#: Metrics each sample's last report must hold, beyond assert_trained's checks.
REPORTED = {"hf_argparser": {"eval_loss", "epoch"}}

pytestmark = pytest.mark.e2e


def assert_trained(summary: dict) -> None:
    from transformers import AutoModel

    assert summary["error"] is None
    assert summary["fit_calls"] >= 1, "the script never called TorchTrainer.fit()"
    assert summary["metrics"], "the run reported no metrics (RayTrainReportCallback reports on save)"
    assert summary["checkpoint"], "the run left no checkpoint"
    hf_checkpoint = Path(summary["checkpoint"]) / "checkpoint"
    assert hf_checkpoint.is_dir(), f"no checkpoint/ folder in {summary['checkpoint']}"
    AutoModel.from_pretrained(hf_checkpoint)


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.stem)
def test_converted_sample_trains(sample: Path, tmp_path: Path, run_converted) -> None:
    result = convert_source(
        sample.read_bytes(), all_codemods(), ConvertOptions(num_workers=2, use_gpu=False), path=str(sample)
    )
    assert result.status == "converted", f"{sample.name} came out {result.status}: {result.error or 'no changes'}"
    script = tmp_path / sample.name
    script.write_bytes(result.output)
    summary = run_converted(script, *SCRIPT_ARGS.get(sample.stem, ()))
    assert_trained(summary)
    assert REPORTED.get(sample.stem, set()) <= set(summary["metrics"])


def test_hand_converted_module_level_trains(tmp_path: Path, run_converted) -> None:
    script = tmp_path / "module_level_converted.py"
    shutil.copy(DATA / "module_level_converted.py", script)
    assert_trained(run_converted(script))
