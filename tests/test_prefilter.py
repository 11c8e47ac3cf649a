"""The pre-filter never changes a result: it only skips work that would have changed nothing.

Every golden input, every runnable sample and the property-test corpus are converted with and
without the pre-filter, and the results must be identical. The filter itself is generated from
the codemods' declarations (``migrator.prefilter``), and whole names cannot be faked by words.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from migrator.prefilter import Prefilter, applicable
from migrator.registry import all_codemods, index
from tests.golden import cases, converted_bytes, options_for
from hypothesis import HealthCheck, settings

from tests.test_properties import PIECES

ROOT = Path(__file__).resolve().parent.parent
# Each example converts twice; fewer than test_properties.py to keep the fast suite fast.
SETTINGS = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SAMPLES = sorted((ROOT / "fixtures" / "samples").rglob("*.py"))


def _same_either_way(data: bytes, options=None) -> None:
    filtered = converted_bytes(data, options)
    unfiltered = converted_bytes(data, options, prefilter=False)
    assert filtered == unfiltered


@pytest.mark.parametrize("case", cases(), ids=lambda c: c.id)
def test_goldens_agree_with_and_without_the_prefilter(case) -> None:
    source = case.input.read_text(encoding="utf-8")
    _same_either_way(source.encode("utf-8"), options_for(source))


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_samples_agree_with_and_without_the_prefilter(path: Path) -> None:
    _same_either_way(path.read_bytes())


@SETTINGS
@given(
    pieces=st.lists(st.sampled_from(PIECES), max_size=8),
    header=st.sampled_from(["from transformers import Trainer, TrainingArguments\n", "", "import ray\n", "# Trainer\n"]),
    after=st.sampled_from(["", "trainer.evaluate()\n", "from ray.air import session\nsession.report({})\n"]),
)
def test_property_corpus_agrees_with_and_without_the_prefilter(pieces, header, after) -> None:
    body = header + "".join(pieces) + "trainer = Trainer(model=m, train_dataset=d)\ntrainer.train()\n" + after
    _same_either_way(body.encode())


@SETTINGS
@given(st.binary(max_size=300).map(lambda b: b"from transformers import Trainer\n" + b))
def test_arbitrary_bytes_agree_with_and_without_the_prefilter(data: bytes) -> None:
    _same_either_way(data)


def test_the_filter_is_built_from_every_codemods_declarations() -> None:
    declared = {info.id: (info.TRIGGERS, info.MODULES) for info in index()}
    loaded = {cls.id(): (cls.TRIGGERS, cls.MODULES) for cls in all_codemods()}
    assert declared == loaded  # the light registry reads what the classes say
    Prefilter(index())  # raises if a trigger is not a whole identifier or dotted name


def test_the_audit_triggers_are_what_its_tables_make_a_file_spell() -> None:
    """The audit can only speak of a name its tables hold, and a file that uses one spells a part
    of it: the last part (or, for a wildcard pattern, the last whole part before the wildcard),
    the method it calls, or for a retired Ray name the ``ray`` it imports. Nothing more passes."""
    from codemods import training_audit as audit

    wanted = {audit.spelled_part(p) for framework in audit.FRAMEWORKS.values() for p in framework.get("names", ())}
    wanted |= {m for framework in audit.FRAMEWORKS.values() for m in framework.get("methods", ())}
    wanted |= {p.split(".", 1)[0] for p in audit.RETIRED}
    assert {t.decode() for t in audit.TrainingAudit.TRIGGERS} == wanted


@pytest.mark.parametrize(("text", "passes"), [
    # A library's own module: imports torch and transformers, uses no framework.
    (b"import torch\nimport torch.distributed as dist\nfrom transformers import PreTrainedModel\n"
     b"if dist.is_initialized():\n    pass\n", False),
    (b"import torch\nfrom torch.nn.parallel import DistributedDataParallel as DDP\n", True),
    (b"from trl import SFTTrainer\n", True),
    (b"import transformers\nmodel.train()\n", True),
    (b"from ray import air\n", True),
    (b"import pytorch_lightning as pl\nt = pl.Trainer()\n", True),
])
def test_the_audit_reads_only_files_that_spell_what_it_looks_for(text: bytes, passes: bool) -> None:
    ids = {info.id for info in applicable(index(), text)}
    assert ("training_audit" in ids) == passes


@pytest.mark.parametrize(
    "text",
    [
        b"pairs = [(a, b) for pair, x in items]\n",  # "air," once let files through
        b"# We accelerate the loop; see Checkpointing below.\n",
        b"class Maintainer:\n    lightning_fast = True\n",
        b"'''import of ray tracing'''\n",
    ],
)
def test_plain_words_do_not_pass(text: bytes) -> None:
    assert applicable(index(), text) == []


def test_names_pass_only_as_whole_names_with_their_module_imported() -> None:
    ids = lambda data: [info.id for info in applicable(index(), data)]  # noqa: E731
    assert "ray_air_to_ray_train" in ids(b"from ray import tune, air\n")
    assert "ray_air_to_ray_train" in ids(b"import os, ray\nray.air.session.report({})\n")
    assert "ray_air_to_ray_train" not in ids(b"air = 1\n")
    assert "lightning_trainer" in ids(b"    import lightning.pytorch as pl\n")
    assert "transformers_trainer" in ids(b"from transformers.trainer import Trainer\n")
    assert "accelerate_script" not in ids(b"import os\n# accelerate launch train.py\n")
    assert "ray_train_v1_arguments" not in ids(b"import numpy as np\nx = np.array([1])\n")
    # torch.save however torch is spelled, only in a file that imports torch
    assert "torch_load_weights_only" in ids(b"import torch as T\nT.save(model, 'm.pt')\n")
    assert "torch_load_weights_only" in ids(b"from torch import load, save\nsave(model, 'm.pt')\n")
    assert "torch_load_weights_only" not in ids(b"import pickle\n\ndef save(obj):\n    pickle.dump(obj)\n")


@pytest.mark.parametrize(("text", "passes"), [
    (b"enc = tokenizer.encode_plus(text)\n", True),
    (b"n = tok . max_len\n", True),
    (b"n = (tok.\n     max_len)\n", True),  # inside brackets, a line break may come after the dot
    (b"n = (tok.  # the old name\n     max_len)\n", True),  # and a comment before it
    (b"n = tok.\\\n    max_len\n", True),  # a backslash continuation
    (b"max_len = 0\nmax_len = max(max_len, 3)\n", False),  # optparse's local: no dot before it
    (b"def encode_plus(text):\n    return text\n", False),
    (b"n = tok.max_length\n", False),  # a longer name
])
def test_attribute_triggers_pass_only_after_a_dot(text: bytes, passes: bool) -> None:
    assert ("hf_removed_apis" in [info.id for info in applicable(index(), text)]) is passes
    class Attribute:
        TRIGGERS = (b".max_len", b".encode_plus")
        ORDER = 1

    assert bool(Prefilter((Attribute,)).applicable(text)) is passes


LINEAR_PROBE = r"""
from migrator.prefilter import Prefilter

class Attribute:
    TRIGGERS = (b".max_len",)
    ORDER = 1

runs = (b"#" * 200 + b"\n", b"# c\r\n" * 200, b"\\\r\n" * 200, b" # a ## b\r\n \\\r\n" * 200)
for run in runs:
    assert not Prefilter((Attribute,)).applicable(b"x." + run + b"y = 1\n")  # no name after them
    assert Prefilter((Attribute,)).applicable(b"x." + run + b"max_len\n")  # the name after them
print("done")
"""


def test_attribute_triggers_scan_in_linear_time() -> None:
    """``.`` before a long run of ``#`` (a ruler comment), or before many CRLF comment lines or
    continuations: a pattern with two ways to read such bytes took time exponential in their
    number (a valid stdlib test module held the scan for minutes). In a process of its own, so
    that a regression fails here instead of holding the test run."""
    done = subprocess.run([sys.executable, "-c", LINEAR_PROBE], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.stdout.strip() == "done", done.stderr


def test_a_fragment_trigger_is_refused() -> None:
    class Bad:
        TRIGGERS = (b"air,",)
        ORDER = 1

    with pytest.raises(ValueError, match="whole identifiers"):
        Prefilter((Bad,))


@pytest.mark.parametrize(("text", "passes"), [
    # A library's own module: it imports transformers and passes `tokenizer=` around, no trainer.
    (b"from transformers import PreTrainedModel\nfrom .tokenization import load\n"
     b"def build(tokenizer=None):\n    return load(tokenizer=tokenizer)\n", False),
    (b"from transformers import TrainerState\nstate = TrainerState()\n", False),  # a longer name
    (b"from transformers import Trainer\n", True),
    (b"import transformers\nt = transformers.Seq2SeqTrainer(m)\n", True),
    # A sibling file's subclass, which no table names: any name ending in Trainer passes.
    (b"import transformers\nfrom trainer_qa import QuestionAnsweringTrainer\n", True),
    (b"from transformers import TrainingArguments\n", True),
])
def test_the_transformers_codemods_read_only_files_that_spell_a_class_of_theirs(text: bytes, passes: bool) -> None:
    ids = {info.id for info in applicable(index(), text)}
    assert ("transformers_renamed_arguments" in ids) == passes
    assert ("transformers_trainer" in ids) == (passes and b"TrainingArguments" not in text)


def test_an_ending_trigger_matches_the_end_of_a_name_only() -> None:
    class Endings:
        TRIGGERS = (b"*Trainer", b"hydra")
        ORDER = 1

    f = Prefilter((Endings,))
    assert f.applicable(b"x = QuestionAnsweringTrainer()\n") == [Endings]
    assert f.applicable(b"from trl import SFTTrainer") == [Endings]
    assert f.applicable(b"state = TrainerState()\n") == []
    assert f.applicable(b"import hydra_zen\n") == []  # a whole-name trigger keeps its front edge
    starts = Prefilter((type("Starts", (), {"TRIGGERS": (b"transformers.modeling_*",), "ORDER": 1}),))
    assert starts.applicable(b"from transformers.modeling_bert import BertModel\n")
    assert not starts.applicable(b"from mytransformers.modeling_bert import BertModel\n")  # the front edge holds
    assert not starts.applicable(b"from transformers.modeling import x\n")
    for bad in (b"*", b"*x.Trainer", b"a**", b"*a*"):
        class Bad:
            TRIGGERS = (bad,)
            ORDER = 1

        with pytest.raises(ValueError, match="endings"):
            Prefilter((Bad,))


_LITERALS = Prefilter(index())._literals


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(_LITERALS), st.binary(max_size=12),
                          st.sampled_from([b"_", b".", b"\r\n", b"\x00", "é".encode(), b"Trainer"[:4]])), max_size=30))
def test_one_scan_finds_exactly_the_literals_searching_each_finds(pieces) -> None:
    """The automaton (``ahocorasick_rs``) and one substring search per literal agree on any bytes:
    literals inside others (``train`` in ``trainer``), overlapping, cut in half, beside any byte."""
    data = b"".join(pieces)
    scanned = Prefilter(index())
    assert scanned._automaton is not None  # installed with the project: what CI runs
    searched = Prefilter(index())
    searched._automaton = None
    assert scanned.literals_in(data) == searched.literals_in(data) == {lit for lit in _LITERALS if lit in data}


def test_without_the_automaton_every_file_gets_the_same_codemods(monkeypatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_automaton(name, *args, **kwargs):
        if name == "ahocorasick_rs":
            raise ImportError("no wheel for this platform")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_automaton)
    searched = Prefilter(index())
    monkeypatch.undo()
    assert searched._automaton is None
    scanned = Prefilter(index())
    for path in [*SAMPLES, *sorted(Path(__file__).parent.glob("*.py"))]:
        data = path.read_bytes()
        assert [c.id for c in searched.applicable(data)] == [c.id for c in scanned.applicable(data)], path
