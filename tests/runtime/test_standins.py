"""Offline stand-ins: the kind of thing each loader returns, with no network.

Run in a subprocess: the stand-ins patch transformers, datasets and evaluate for good.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = r'''
import json, sys
from migrator.runtime import standins
standins.install(standins.config_from(open(sys.argv[1]).read()))
import evaluate
from datasets import load_dataset
from transformers import (AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM,
    AutoModelForSequenceClassification, AutoTokenizer, BertForSequenceClassification)

out = {}
ds = load_dataset("yelp_review_full")
out["splits"] = {k: [v.num_rows, v.column_names] for k, v in ds.items()}
out["classes"] = ds["train"].features["label"].num_classes
out["same_data"] = ds["train"][:3] == load_dataset("yelp_review_full", split="train")[:3]
out["sliced"] = load_dataset("imdb", split="train[:10%]").num_rows
out["glue"] = load_dataset("glue", "mrpc")["validation"].column_names
out["unknown"] = load_dataset("someone/reviews")["train"].column_names
tok = AutoTokenizer.from_pretrained("bert-base-cased")
enc = tok(ds["train"][0]["text"], padding="max_length", truncation=True)
out["tokens"] = [len(enc["input_ids"]), tok.cls_token, tok.convert_ids_to_tokens(enc["input_ids"][0])]
model = AutoModelForSequenceClassification.from_pretrained("bert-base-cased", num_labels=5)
out["model"] = [type(model).__name__, model.config.num_labels, model.config.vocab_size >= len(tok),
                sum(p.numel() for p in model.parameters()) < 1_000_000]
out["families"] = [type(AutoModelForSequenceClassification.from_pretrained("distilbert-base-uncased")).__name__,
                   type(AutoModelForCausalLM.from_pretrained("gpt2")).__name__,
                   type(AutoModelForSeq2SeqLM.from_pretrained("google/flan-t5-small")).__name__,
                   type(BertForSequenceClassification.from_pretrained("anything", num_labels=3)).__name__,
                   AutoConfig.from_pretrained("roberta-base").model_type]
gpt = AutoTokenizer.from_pretrained("gpt2")
out["gpt2_pad"] = gpt.pad_token
out["accuracy"] = evaluate.load("accuracy").compute(predictions=[0, 1, 1], references=[0, 1, 0])
out["f1"] = evaluate.load("f1").compute(predictions=[1, 1, 0], references=[1, 0, 0])
model.save_pretrained(sys.argv[2])
out["local_reload"] = type(AutoModelForSequenceClassification.from_pretrained(sys.argv[2])).__name__
print("PROBE" + json.dumps(out))
'''


def test_stand_ins_are_of_the_same_kind(tmp_path: Path) -> None:
    script = tmp_path / "train.py"
    script.write_text('ds["train"].map(lambda b: tok(b["review"]))\ny = b["stars"]\nmodel(num_labels=3)\n')
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-c", PROBE, str(script), str(tmp_path / "saved")], env=env,
                          capture_output=True, text=True, timeout=300)
    line = next((l for l in done.stdout.splitlines() if l.startswith("PROBE")), None)
    assert line, done.stderr[-3000:]
    out = json.loads(line[len("PROBE"):])
    assert out["splits"] == {"train": [1000, ["label", "text"]], "test": [1000, ["label", "text"]]}  # the hub's order
    assert out["classes"] == 5 and out["same_data"] and out["sliced"] == 100
    assert out["glue"] == ["sentence1", "sentence2", "label", "idx"]
    assert out["unknown"] == ["review", "stars"]  # the columns this script reads
    assert out["tokens"] == [64, "[CLS]", "[CLS]"]
    assert out["model"] == ["BertForSequenceClassification", 5, True, True]
    assert out["families"] == ["DistilBertForSequenceClassification", "GPT2LMHeadModel",
                               "T5ForConditionalGeneration", "BertForSequenceClassification", "roberta"]
    assert out["gpt2_pad"] is None
    assert out["accuracy"] == {"accuracy": 2 / 3} and out["f1"] == {"f1": 2 / 3}
    assert out["local_reload"] == "BertForSequenceClassification"  # local folders load for real
