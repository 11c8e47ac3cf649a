"""The stand-ins serve exactly the schemas recorded in ``migrator/data/standin_datasets.toml``.

Every config and split of every dataset the file names is loaded through the patched
``load_dataset`` (in a subprocess: the stand-ins patch ``datasets`` for good) and compared with
the file: the splits, the columns in order, and each feature, built here from the file's own
vocabulary. The values are checked for the properties real scripts rely on: unlabeled splits
carry -1, ``idx`` counts rows, SQuAD answers are spans of their context, conversations alternate
user and assistant. Then the standard GLUE example shape runs, and the metrics return the keys the
file records.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = tomllib.loads((ROOT / "migrator" / "data" / "standin_datasets.toml").read_text(encoding="utf-8"))

PROBE = r'''
import json, sys
from migrator.runtime import standins
standins.install(standins.config_from(""))
import evaluate
from datasets import load_dataset

out = {"datasets": {}, "errors": {}, "metrics": {}}
for key, entry in standins.SCHEMAS["datasets"].items():
    for path in entry["paths"]:
        for config in entry["configs"]:
            loaded = load_dataset(path, config)
            out["datasets"][f"{path}|{config}"] = {
                split: {"rows": ds.num_rows, "columns": ds.column_names,
                        "features": {c: repr(f) for c, f in ds.features.items()}, "sample": ds[:50]}
                for split, ds in loaded.items()
            }
        if "default" in entry:
            out["datasets"][f"{path}|<default>"] = list(load_dataset(path))
for args in (("glue",), ("glue", "nope"), ("wikitext",), ("imdb", None, "validation")):
    try:
        load_dataset(args[0], args[1] if len(args) > 1 else None, split=args[2] if len(args) > 2 else None)
        out["errors"][repr(args)] = None
    except ValueError as exc:
        out["errors"][repr(args)] = str(exc)

# The standard GLUE example (accelerate's examples/nlp_example.py, run_glue_no_trainer.py).
from transformers import AutoTokenizer
tok = AutoTokenizer.from_pretrained("bert-base-cased")
raw = load_dataset("glue", "mrpc")
tokenized = raw.map(lambda b: tok(b["sentence1"], b["sentence2"], truncation=True, max_length=None),
                    batched=True, remove_columns=["idx", "sentence1", "sentence2"])
tokenized = tokenized.rename_column("label", "labels")
out["glue_example"] = {split: ds.column_names for split, ds in tokenized.items()}
out["mnli_validation"] = load_dataset("glue", "mnli", split="validation_matched").column_names

for name, entry in standins.SCHEMAS["metrics"].items():
    if "configs" in entry:
        for config in entry["configs"]:
            preds, refs = ([0.5, 2.0, 4.5], [1.0, 2.5, 4.0]) if config == "stsb" else ([0, 1, 1], [0, 1, 0])
            out["metrics"][f"{name}|{config}"] = evaluate.load(name, config).compute(predictions=preds, references=refs)
    else:
        preds, refs = ([0.5, 2.0], [1.0, 2.5]) if name in ("mse", "mae") else ([0, 1, 1], [0, 1, 0])
        out["metrics"][name] = evaluate.load(name).compute(predictions=preds, references=refs)
print("PROBE" + json.dumps(out))
'''

VALUE_TYPES = {"string", "int32", "int64", "float32", "float64"}


def expected_feature(spec) -> str:
    """The repr ``datasets`` gives the feature the file describes (independent of the stand-ins)."""
    from datasets import ClassLabel, List, Value

    if isinstance(spec, dict):
        return repr(ClassLabel(names=spec["class_label"]))
    if spec == "messages":
        return repr(List({"content": Value("string"), "role": Value("string")}))
    if spec == "squad_answers":
        return repr({"text": List(Value("string")), "answer_start": List(Value("int32"))})
    assert spec in VALUE_TYPES, spec
    return repr(Value(spec))


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """What the stand-ins served, loaded once for the module's tests."""
    tmp_path = tmp_path_factory.mktemp("probe")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=600,
                          cwd=tmp_path)
    line = next((l for l in done.stdout.splitlines() if l.startswith("PROBE")), None)
    assert line, done.stderr[-3000:]
    return json.loads(line[len("PROBE"):])


def test_every_recorded_dataset_has_a_source_and_known_types() -> None:
    for key, entry in SCHEMAS["datasets"].items():
        assert entry["source"].startswith("https://huggingface.co/datasets/"), key
        assert entry["paths"] and entry["configs"], key
        if "default" in entry:
            assert entry["default"] in entry["configs"], key
        for name, config in entry["configs"].items():
            assert set(config.get("unlabeled", ())) <= set(config["splits"]), (key, name)
            for spec in config["features"].values():
                assert isinstance(spec, dict) or spec in VALUE_TYPES | {"messages", "squad_answers"}, (key, name, spec)
    for key, entry in SCHEMAS["metrics"].items():
        assert entry["source"].startswith("https://huggingface.co/spaces/evaluate-metric/"), key


def test_stand_ins_serve_exactly_the_recorded_schemas(out: dict) -> None:
    for key, entry in SCHEMAS["datasets"].items():
        for path in entry["paths"]:
            for name, config in entry["configs"].items():
                loaded = out["datasets"][f"{path}|{name}"]
                assert list(loaded) == config["splits"], (path, name)
                for split, ds in loaded.items():
                    where = (path, name, split)
                    assert ds["rows"] > 0, where
                    assert ds["columns"] == list(config["features"]), where
                    assert ds["features"] == {c: expected_feature(s) for c, s in config["features"].items()}, where
                    check_values(ds["sample"], config, split, where)
            if "default" in entry:
                assert out["datasets"][f"{path}|<default>"] == entry["configs"][entry["default"]]["splits"]


def check_values(sample: dict, config: dict, split: str, where) -> None:
    unlabeled = split in config.get("unlabeled", ())
    for column, spec in config["features"].items():
        values = sample[column]
        if isinstance(spec, dict):
            assert all(v == -1 for v in values) if unlabeled else all(0 <= v < len(spec["class_label"]) for v in values), where
            if not unlabeled:
                assert len(set(values)) > 1, where  # both classes occur
        elif column == "idx":
            assert values == list(range(len(values))), where
        elif spec == "squad_answers":
            for context, answers in zip(sample["context"], values):
                for text, start in zip(answers["text"], answers["answer_start"]):
                    assert context[start:start + len(text)] == text, where
        elif spec == "messages":
            for messages in values:
                roles = [m["role"] for m in messages]
                assert roles and roles[0] == "user" and all(r == ("user", "assistant")[i % 2] for i, r in enumerate(roles)), where
                assert all(m["content"] for m in messages), where
        elif spec == "string" and column not in ("text",):
            assert all(isinstance(v, str) and v for v in values), where


def test_hub_errors_the_glue_example_and_the_metrics(out: dict) -> None:
    errors = out["errors"]
    assert "Config name is missing" in errors[repr(("glue",))] and "'cola'" in errors[repr(("glue",))]
    assert "BuilderConfig 'nope' not found" in errors[repr(("glue", "nope"))]
    assert "Config name is missing" in errors[repr(("wikitext",))]
    assert 'Unknown split "validation"' in errors[repr(("imdb", None, "validation"))]
    # The standard GLUE example shape: drop idx and the texts, rename label -> labels.
    assert out["glue_example"] == {split: ["labels", "input_ids", "token_type_ids", "attention_mask"]
                                   for split in ("train", "validation", "test")}
    assert out["mnli_validation"] == ["premise", "hypothesis", "label", "idx"]
    for key, entry in SCHEMAS["metrics"].items():
        if "configs" in entry:
            for config, keys in entry["configs"].items():
                assert list(out["metrics"][f"{key}|{config}"]) == keys, (key, config)
        else:
            assert list(out["metrics"][key]) == entry["keys"], key
    assert out["metrics"]["glue|mrpc"] == {"accuracy": 2 / 3, "f1": 2 / 3}
    assert out["metrics"]["glue|stsb"]["pearson"] > 0.9
