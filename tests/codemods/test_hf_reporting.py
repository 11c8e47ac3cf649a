"""The report callback class every converted Transformers script carries (``codemods/_hf_reporting``).

Ray hears of metrics only when the Trainer saves, so the class makes the Trainer save after each
evaluation, and at each epoch's end when it neither saves nor evaluates, whatever the
TrainingArguments say. Checked on a real transformers Trainer, with a stand-in base class that
counts saves instead of reporting to Ray (which needs a Ray Train worker).
"""

from __future__ import annotations

import pytest

from codemods._hf_reporting import _CLASS

transformers = pytest.importorskip("transformers")
torch = pytest.importorskip("torch")


class _Counting(transformers.TrainerCallback):
    def __init__(self):
        self.saved_at: list[int] = []

    def on_save(self, args, state, control, **kwargs):
        self.saved_at.append(state.global_step)


class _Model(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(4, 2)

    def forward(self, x, labels=None):
        logits = self.layer(x)
        return {"loss": torch.nn.functional.cross_entropy(logits, labels), "logits": logits}


def _saves(tmp_path, **arguments) -> list[int]:
    namespace = {"torch": torch, "_Counting": _Counting}
    exec(_CLASS.format(name="Synced", base="_Counting"), namespace)
    callback = namespace["Synced"]()
    data = [{"x": torch.randn(4), "labels": torch.tensor(i % 2)} for i in range(16)]
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path), per_device_train_batch_size=4, per_device_eval_batch_size=4, num_train_epochs=2,
        report_to=[], use_cpu=True, logging_steps=100, **arguments,
    )
    trainer = transformers.Trainer(model=_Model(), args=args, train_dataset=data, eval_dataset=data[:8], callbacks=[callback])
    trainer.train()
    return callback.saved_at


@pytest.mark.parametrize(
    "arguments, expected",
    [
        ({"save_strategy": "no", "eval_strategy": "epoch"}, [4, 8]),  # Ray's guide pairs them; here they are not
        # The Trainer evaluates once more at the end of training, so that gets reported too.
        ({"save_strategy": "no", "eval_strategy": "steps", "eval_steps": 3}, [3, 6, 8]),
        ({"save_strategy": "no", "eval_strategy": "no"}, [4, 8]),  # at each epoch's end
        # The final save (step 8) comes before the last evaluation; saving after it reports the
        # evaluation's metrics, which the final save alone would keep from Ray.
        ({"save_strategy": "steps", "save_steps": 100, "eval_strategy": "epoch"}, [4, 8, 8]),
    ],
)
def test_the_trainer_saves_whenever_ray_needs_a_report(tmp_path, arguments, expected) -> None:
    assert _saves(tmp_path, **arguments) == expected
