"""The audit that no training file is left without a word, and its report sections."""

from __future__ import annotations

import json
import textwrap

import pytest

from codemods._names import load_table
from codemods.training_audit import FRAMEWORKS, RETIRED, TrainingAudit
from migrator.engine import applicable
from migrator.registry import all_codemods, index
from migrator.report import Report
from tests.golden import FIXTURES, convert_text

#: The shapes issue 9 found left unchanged without a word; other codemods may convert them later.
ISSUE_SHAPES = ["lightning_cli_subcommands", "hydra_instantiate_trainer", "launcher_sibling_module",
                "ray_ml_huggingface_trainer", "ray_ml_unconvertible", "torch_ddp_script", "lightning_fabric_script",
                "sibling_trainer_subclass"]


def convert(source: str, path: str = "case.py"):
    return convert_text(textwrap.dedent(source), path=path)


def audit_entries(result):
    return [e for e in result.entries if e.codemod == "training_audit"]


@pytest.mark.parametrize("case", ISSUE_SHAPES)
def test_every_shape_the_issue_names_is_converted_or_followed_up(case):
    source = (FIXTURES / "training_audit" / f"{case}.input.py").read_text()
    result = convert_text(source, path=f"{case}.py")
    launched = result.status == "converted" and "TorchTrainer(" in result.text("output")
    assert launched or result.follow_ups
    for entry in result.follow_ups:
        assert 1 <= entry.line <= len(source.splitlines())


def test_an_unchanged_training_file_is_named_with_its_line():
    source = (FIXTURES / "training_audit" / "lightning_fabric_script.input.py").read_text()
    result = convert_text(source, path="fabric.py")
    assert result.status == "unchanged"
    [entry] = audit_entries(result)
    assert entry.line == 6 and entry.kind == "follow-up"
    assert entry.message.startswith("left unconverted: trains with PyTorch Lightning (`lightning.fabric.Fabric` here)")


def test_plain_torch_is_not_training_with_a_framework():
    result = convert("""\
        import torch

        model = torch.nn.Linear(2, 1)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        model.train()
        """)
    assert result.entries == ()


def test_a_script_that_already_launches_torchtrainer_gets_nothing():
    result = convert("""\
        import torch.distributed as dist
        from ray.train import ScalingConfig
        from ray.train.torch import TorchTrainer


        def train_func():
            dist.barrier()


        TorchTrainer(train_func, scaling_config=ScalingConfig(num_workers=2)).fit()
        """)
    assert result.status == "unchanged" and result.entries == ()


def test_a_file_another_codemod_already_flagged_gets_no_second_word():
    source = (FIXTURES / "lightning_trainer" / "second_reads_first_trainer.input.py").read_text()
    result = convert_text(source)
    assert result.follow_ups and not audit_entries(result)


def test_partly_converted_when_something_changed_but_nothing_launches():
    result = convert("""\
        from transformers import Trainer, TrainingArguments


        def make(model, data):
            return Trainer(model=model, args=TrainingArguments("out", evaluation_strategy="epoch"), train_dataset=data)
        """)
    assert result.status == "converted"  # evaluation_strategy -> eval_strategy
    if "TorchTrainer(" not in result.text("output"):
        assert result.follow_ups
        assert any(e.message.startswith("partly converted:") for e in audit_entries(result)) or \
            any(e.codemod != "training_audit" for e in result.follow_ups)


def test_predictors_after_fit_are_named_with_their_replacement():
    result = convert("""\
        from ray.air import ScalingConfig
        from ray.train.huggingface import HuggingFacePredictor
        from ray.train.batch_predictor import BatchPredictor

        scaling = ScalingConfig(num_workers=2)
        predictor = BatchPredictor.from_checkpoint(checkpoint, HuggingFacePredictor)
        """)
    found = [(e.line, e.message) for e in audit_entries(result)]
    assert [line for line, _ in found] == [6, 6]
    assert all("ray.data.Dataset.map_batches" in message for _, message in found)
    assert sorted(message.split(" is still used")[0] for _, message in found) == [
        "`ray.train.batch_predictor.BatchPredictor` (retired in Ray 2.9)",
        "`ray.train.huggingface.HuggingFacePredictor` (retired in Ray 2.9)",
    ]


@pytest.mark.parametrize("module", ["ray.train.transformers", "ray.ml.train.integrations.huggingface"])
def test_the_issue_half_conversion_is_now_whole(module):
    """Issue 9: the ray.air names were renamed and the retired trainer stayed, without a word."""
    result = convert(f"""\
        from ray.air import RunConfig
        from {module} import {"TransformersTrainer" if "transformers" in module else "HuggingFaceTrainer"} as Legacy


        def init(train_dataset, eval_dataset, **config):
            ...


        trainer = Legacy(init, scaling_config={{"num_workers": 2}}, run_config=RunConfig(name="x"))
        trainer.fit()
        """)
    output = result.text("output")
    assert "TorchTrainer(" in output and module not in output and "ray.air" not in output
    assert "scaling_config=ScalingConfig(num_workers=2)" in output


def test_an_unused_import_that_still_imports_is_harmless_one_that_fails_is_not():
    quiet = convert("from ray.air import session\nimport ray\n")
    assert not audit_entries(quiet)
    loud = convert("from ray.ml.checkpoint import Checkpoint\n")
    [entry] = audit_entries(loud)
    assert entry.line == 1 and "is still imported" in entry.message and "ray.ml" in entry.message


def test_the_pre_filter_lets_every_framework_use_through():
    audit = [info for info in index() if info.id == "training_audit"]
    for source in ("import lightning as L\nL.Trainer()", "import pytorch_lightning as pl\npl.Trainer().fit(m)",
                   "from transformers import Trainer", "from trl import SFTTrainer", "from accelerate import Accelerator",
                   "import torch.distributed as dist\ndist.init_process_group('gloo')",
                   "from torch.nn.parallel import DistributedDataParallel", "import torch.multiprocessing as mp\nmp.spawn(f)",
                   "from torch.distributed import run\nrun.main()", "import lightning as L\nL.Fabric()",
                   "from ray.ml.train.integrations.huggingface import HuggingFaceTrainer",
                   "import submitit\nsubmitit.AutoExecutor(folder='x')", "import transformers\nmodel.train()"):
        assert applicable(audit, source.encode()), source
    assert not applicable(audit, b"import torch\nmodel = torch.nn.Linear(2, 1)\n")
    # A framework imported and never used: nothing the audit could say, so nothing to parse.
    assert not applicable(audit, b"import lightning as L\nimport torch.distributed as dist\ndist.barrier()\n")


def test_triggers_cover_the_tables():
    names = [n for f in FRAMEWORKS.values() for n in f["names"]] + list(RETIRED)
    for name in names:
        assert any(trigger.decode() in name for trigger in TrainingAudit.TRIGGERS), name


def test_the_audit_runs_last_and_changes_nothing():
    assert all_codemods()[-1] is TrainingAudit
    source = (FIXTURES / "training_audit" / "lightning_fabric_script.input.py").read_text()
    result = convert_text(source)
    assert result.status == "unchanged" and audit_entries(result)


def test_every_retired_trainer_path_is_known_to_a_codemod():
    codemods = {cls.id(): cls for cls in all_codemods()}
    for path, entry in load_table("retired_ray_trainers")["trainers"].items():
        module, cls = path.rsplit(".", 1)
        assert (module, cls) in codemods[entry["codemod"]].LEGACY, path


# -- the report's sections -------------------------------------------------------------------------
def _report():
    report = Report()
    for case in ("lightning_fabric_script", "ray_ml_unconvertible", "ray_ml_huggingface_trainer", "plain_torch_only"):
        source = (FIXTURES / "training_audit" / f"{case}.input.py").read_text()
        report.add(convert_text(source, path=f"{case}.py"))
    return report


def test_the_report_lists_unfinished_files_in_sections_of_their_own():
    report = _report()
    text = report.to_text()
    assert "Left unconverted (1):\n  lightning_fabric_script.py:6 (1 follow-up) left unconverted" in text
    assert "Partly converted (1):\n  ray_ml_unconvertible.py:7 (1 follow-up) HuggingFaceTrainer" in text
    data = json.loads(report.to_json())
    assert [f["file"] for f in data["left_unconverted"]] == ["lightning_fabric_script.py"]
    assert data["partly_converted"] == [{"file": "ray_ml_unconvertible.py", "line": 7, "follow_ups": 1}]
    markdown = report.to_markdown()
    assert "## Left unconverted\n\n- `lightning_fabric_script.py` line 6: left unconverted" in markdown
    assert "## Partly converted\n\n- `ray_ml_unconvertible.py` line 7:" in markdown
    unfinished = markdown.split("## Left unconverted")[1].split("## `")[0]
    assert "ray_ml_huggingface_trainer.py" not in unfinished  # converted cleanly: not listed
