"""A codemod that says it has nothing to do (``MigrationCodemod.nothing_to_do``) is right.

The hook lets a codemod give its tree back before any metadata is resolved, which is most of
what a conversion costs. Every golden input and every runnable sample is converted; wherever a
codemod took that way out, its full transform runs on the very tree and context it was given,
and must change nothing and say nothing. The way out must also be taken where it pays: on
converted samples, by the codemods that run before the conversion and by the audit after it.
"""

from __future__ import annotations

from pathlib import Path

import libcst as cst
import pytest
from libcst.codemod import CodemodContext, SkipFile

from codemods._names import spelled_names
from codemods.training_audit import TrainingAudit
from migrator.codemod import MigrationCodemod
from migrator.engine import convert_source
from migrator.registry import all_codemods
from tests.golden import cases, options_for

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = sorted((ROOT / "fixtures" / "samples").rglob("*.py"))
INPUTS = [(c.id, c.input) for c in cases()] + [(str(p.relative_to(ROOT / "fixtures")), p) for p in SAMPLES]


def skipped_runs(data: bytes, options, monkeypatch: pytest.MonkeyPatch) -> list[tuple[MigrationCodemod, cst.Module]]:
    """Each codemod that gave its tree back unexamined during one conversion, with that tree."""
    skipped = []
    full = MigrationCodemod.transform_module

    def spy(self: MigrationCodemod, tree: cst.Module) -> cst.Module:
        if self.nothing_to_do(tree):
            skipped.append((self, tree))
        return full(self, tree)

    with monkeypatch.context() as patch:
        patch.setattr(MigrationCodemod, "transform_module", spy)
        convert_source(data, all_codemods(), options, path="case.py")
    return skipped


@pytest.mark.parametrize("path", [p for _, p in INPUTS], ids=[i for i, _ in INPUTS])
def test_a_codemod_with_nothing_to_do_would_change_and_say_nothing(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = path.read_bytes()
    options = options_for(data.decode("utf-8"))
    for skipped, tree in skipped_runs(data, options, monkeypatch):
        # The same codemod, context and tree, run in full (LibCST copies the tree and resolves).
        codemod = type(skipped)(CodemodContext(filename="case.py", scratch=skipped.context.scratch), options)
        codemod.nothing_to_do = lambda tree: False
        try:
            done = codemod.transform_module(tree)
        except SkipFile:  # the codemod's own "nothing here": the engine keeps the tree
            done = tree
        assert done.code == tree.code, skipped.id()
        assert codemod.entries == [], (skipped.id(), [e.message for e in codemod.entries])


def test_the_way_out_is_taken_on_converted_samples(monkeypatch: pytest.MonkeyPatch) -> None:
    expected = {
        "transformers/argparse_args.py": {"transformers_renamed_arguments", "chained_trainer_calls", "training_audit"},
        "lightning/classifier_main_argparse.py": {"lightning_moved_imports", "chained_trainer_calls", "training_audit"},
        "accelerate/classifier_main_argparse.py": {"training_audit"},
    }
    for name, ids in expected.items():
        skipped = skipped_runs((ROOT / "fixtures" / "samples" / name).read_bytes(), None, monkeypatch)
        assert ids <= {codemod.id() for codemod, _ in skipped}, name


def _launches(code: str) -> bool:
    return TrainingAudit._launches_with_ray_train(cst.parse_module(code))


def test_the_audit_leaves_a_trainer_bound_twice_or_imported_out_of_reach_to_scopes() -> None:
    assert _launches("from ray.train.torch import TorchTrainer\nt = TorchTrainer(f)\n")
    assert _launches("from ray.train.torch import TorchTrainer as TT\nt = TT(f)\n")
    # Bound again (a class, a parameter) or only mentioned, not called: scopes decide.
    assert not _launches("from ray.train.torch import TorchTrainer\nclass TorchTrainer: ...\nt = TorchTrainer(f)\n")
    assert not _launches("from ray.train.torch import TorchTrainer\ndef g(TorchTrainer):\n    return TorchTrainer(f)\n")
    assert not _launches("from ray.train.torch import TorchTrainer\nx = TorchTrainer\n")
    # Not at module level, or not a Ray Train trainer.
    assert not _launches("try:\n    from ray.train.torch import TorchTrainer\nexcept ImportError:\n    pass\nTorchTrainer(f)\n")
    assert not _launches("from transformers import Trainer\nTrainer(m)\n")


def test_the_names_a_file_spells_follow_every_import_of_a_head() -> None:
    names = spelled_names(cst.parse_module(
        "from ray import air as a\nimport ray.train as rt\nfrom . import local\n"
        "a.session.report({})\nrt.Trainer(x).fit()\nlocal.thing\n"
    ))
    assert {"ray.air.session.report", "ray.train.Trainer.fit", ".local.thing"} <= names
    assert {"a.session.report", "rt.Trainer.fit"} <= names  # as written, too


# -- a library's own files: they reach the codemods through the pre-filter, and need no scopes --
LIBRARY_FILE = '''"""A module of a package that imports transformers and torch, as most of a repository's are."""
import re

import torch
import torch.distributed as dist
from transformers import PreTrainedModel
from .utils import logging

_PATTERN = re.compile(r"layers\\.(\\d+)\\.weight")


class TinyModel(PreTrainedModel):
    def forward(self, x, tokenizer=None):
        if dist.is_initialized():
            x = x * dist.get_world_size()
        return torch.relu(x)
'''


def _full_runs(code: str, monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """The codemods that ran in full (no way out) over ``code``, the pre-filter aside."""
    ran = []
    full = MigrationCodemod.transform_module

    def spy(self: MigrationCodemod, tree: cst.Module) -> cst.Module:
        if not self.nothing_to_do(tree):
            ran.append(self.id())
        return full(self, tree)

    with monkeypatch.context() as patch:
        patch.setattr(MigrationCodemod, "transform_module", spy)
        convert_source(code.encode(), all_codemods(), None, path="case.py", prefilter=False)
    return set(ran)


@pytest.mark.parametrize(("code", "runs"), [
    (LIBRARY_FILE, set()),
    # A def named like a framework's module: its own names would be qualified under it.
    (LIBRARY_FILE + "\n\ndef trl():\n    pass\n", {"training_audit", "transformers_trainer", "hf_removed_apis"}),
    # A trainer imported from a sibling module, a Hydra app: the Transformers codemod looks.
    (LIBRARY_FILE + "\nfrom .trainer_qa import QuestionAnsweringTrainer\n", {"transformers_trainer"}),
    (LIBRARY_FILE + "\nimport hydra\n", {"transformers_trainer"}),
    # A framework's module imported and one of its methods called: the audit looks.
    (LIBRARY_FILE + "\nimport transformers\nTinyModel(None).train()\n", {"training_audit"}),
    # A renamed keyword spelled with an escape.
    (LIBRARY_FILE + '\nargs = dict(**{"no\\x5fcuda": True})\n', {"transformers_renamed_arguments"}),
    # A custom autograd backward and a `max_len` of its own: neither codemod has anything to do...
    (LIBRARY_FILE + "\nmax_len = 512\n\n\nclass Clamp(torch.autograd.Function):\n"
     "    @staticmethod\n    def backward(ctx, grad):\n        return grad.backward()\n", set()),
    # ...unless an optimizer, a launcher or a main guard over the backward pass is there,
    (LIBRARY_FILE + "\nopt = torch.optim.AdamW(TinyModel(None).parameters())\n", {"pytorch_loop"}),
    (LIBRARY_FILE + "\nimport torch.multiprocessing as mp\nmp.spawn(print, nprocs=2)\n", {"pytorch_loop"}),
    (LIBRARY_FILE + "\nloss.backward()\nif __name__ == '__main__':\n    main()\n", {"pytorch_loop"}),
    (LIBRARY_FILE + "\n\ndef torch():\n    pass\n", {"pytorch_loop", "training_audit"}),  # names qualified under it
    # ...or a tokenizer's max_len, a removed tokenizer method, a moved module, a table's keyword.
    (LIBRARY_FILE + "\nn = self.tokenizer.max_len\n", {"hf_removed_apis", "transformers_renamed_arguments"}),
    (LIBRARY_FILE + "\nx = tok.encode_plus(text)\n", {"hf_removed_apis"}),
    (LIBRARY_FILE + "\nfrom transformers.modeling_bert import BertModel\n", {"hf_removed_apis"}),
    (LIBRARY_FILE + '\nkw = {"use_auth_token": True}\n', {"hf_removed_apis"}),
])
def test_a_library_file_skips_what_cannot_concern_it(code: str, runs: set[str], monkeypatch: pytest.MonkeyPatch) -> None:
    watched = {"training_audit", "transformers_trainer", "transformers_renamed_arguments", "pytorch_loop", "hf_removed_apis"}
    assert watched & _full_runs(code, monkeypatch) == runs
    result = convert_source(code.encode(), all_codemods(), path="case.py")
    assert result.error is None, result.error
    if not runs & {"hf_removed_apis", "pytorch_loop"}:  # what those two find, they rewrite
        assert result.status == "unchanged"
