"""The audit's way around scopes (``TrainingAudit._nothing_to_say``) never changes a result.

``training_audit`` runs last, on the converted tree, and resolving scopes and qualified names
there cost more than the rest of a conversion. It now skips them where it can tell, from the
names the file spells, that the full audit would say nothing. For every golden input and every
runnable sample where it takes the shortcut, the full audit, run on the same tree with the same
earlier entries, must say nothing; and the shortcut must be taken on converted samples (or it
saves nothing).
"""

from __future__ import annotations

from pathlib import Path

import libcst as cst
import pytest
from libcst.codemod import CodemodContext

from codemods.training_audit import TrainingAudit, _spelled_names
from migrator.codemod import EARLIER
from migrator.engine import convert_source
from migrator.registry import all_codemods
from tests.golden import cases, converted_bytes, options_for

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = sorted((ROOT / "fixtures" / "samples").rglob("*.py"))
INPUTS = [(c.id, c.input) for c in cases()] + [(str(p.relative_to(ROOT / "fixtures")), p) for p in SAMPLES]


@pytest.mark.parametrize("path", [p for _, p in INPUTS], ids=[i for i, _ in INPUTS])
def test_where_the_shortcut_is_taken_the_full_audit_says_nothing(path: Path) -> None:
    data = path.read_bytes()
    options = options_for(data.decode("utf-8"))
    result = converted_bytes(data, options)
    # What the audit was given: the tree every other codemod produced (the output: the audit
    # changes nothing), and what they said.
    tree = cst.parse_module(result.output if result.output is not None else data)
    earlier = tuple(e for e in result.entries if e.codemod != TrainingAudit.id())
    audit = TrainingAudit(CodemodContext(filename="case.py", scratch={EARLIER: (data, earlier)}), options)
    if not audit._nothing_to_say(tree):
        return  # the full audit ran, and the goldens hold what it said
    audit._nothing_to_say = lambda tree: False
    assert audit.transform_module(tree).code == tree.code
    assert audit.entries == [], [e.message for e in audit.entries]


def test_the_shortcut_is_taken_on_converted_samples(monkeypatch: pytest.MonkeyPatch) -> None:
    taken: list[bool] = []
    decide = TrainingAudit._nothing_to_say

    def spy(self, tree):
        taken.append(decide(self, tree))
        return taken[-1]

    monkeypatch.setattr(TrainingAudit, "_nothing_to_say", spy)
    for name in ("transformers/argparse_args.py", "lightning/classifier_main_argparse.py", "accelerate/classifier_main_argparse.py"):
        taken.clear()
        result = convert_source((ROOT / "fixtures" / "samples" / name).read_bytes(), all_codemods(), path=name)
        assert result.status == "converted" and taken == [True], name


def _launches(code: str) -> bool:
    return TrainingAudit._launches_with_ray_train(cst.parse_module(code))


def test_a_trainer_name_bound_twice_or_imported_out_of_reach_is_left_to_the_full_audit() -> None:
    assert _launches("from ray.train.torch import TorchTrainer\nt = TorchTrainer(f)\n")
    assert _launches("from ray.train.torch import TorchTrainer as TT\nt = TT(f)\n")
    # Bound again (a class, an assignment) or only mentioned, not called: scopes decide.
    assert not _launches("from ray.train.torch import TorchTrainer\nclass TorchTrainer: ...\nt = TorchTrainer(f)\n")
    assert not _launches("from ray.train.torch import TorchTrainer\ndef g(TorchTrainer):\n    return TorchTrainer(f)\n")
    assert not _launches("from ray.train.torch import TorchTrainer\nx = TorchTrainer\n")
    # Not at module level, or not a Ray Train trainer.
    assert not _launches("try:\n    from ray.train.torch import TorchTrainer\nexcept ImportError:\n    pass\nTorchTrainer(f)\n")
    assert not _launches("from transformers import Trainer\nTrainer(m)\n")


def test_spelled_names_follow_every_import_of_a_head() -> None:
    names = _spelled_names(cst.parse_module(
        "from ray import air as a\nimport ray.train as rt\nfrom . import local\n"
        "a.session.report({})\nrt.Trainer(x).fit()\nlocal.thing\n"
    ))
    assert {"ray.air.session.report", "ray.train.Trainer.fit", "ray.train.Trainer", ".local.thing"} <= names
    assert {"a.session.report", "rt.Trainer.fit"} <= names  # as written, too
