"""Property-based tests: odd input never costs a file, and conversions are safe fixed points."""

from __future__ import annotations

import ast

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from migrator.checks import check_converted
from migrator.engine import convert_source
from migrator.registry import all_codemods

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(st.binary(max_size=300).map(lambda b: b"from transformers import Trainer\n" + b))
def test_arbitrary_bytes_never_raise_and_failures_keep_the_source(data: bytes) -> None:
    result = convert_source(data, all_codemods())
    assert result.status in ("converted", "unchanged", "failed")
    if result.status == "failed":
        assert result.error and result.output is None and result.source == data
    if result.status == "converted":
        ast.parse(result.output.decode(result.encoding))


# Building blocks of a module-level training script; any order of the optional ones is valid.
PIECES = [
    "import os\n",
    "MAX_LEN = 32\n",
    "# a comment about the data\n",
    "data = load_data()\n",
    "tokenizer = make_tokenizer()\n",
    "def encode(batch):\n    return tokenizer(batch)\n",
    "data = data.map(encode)\n",
    "model = make_model()\n",
    "set_seed(0)\n",
    "args = TrainingArguments('out', eval_strategy='epoch')\n",
]


@SETTINGS
@given(
    pieces=st.lists(st.sampled_from(PIECES), max_size=8),
    after=st.sampled_from(["", "trainer.evaluate()\n", "print('done')\n", "trainer.save_model('x')\n"]),
    newline=st.sampled_from(["\n", "\r\n"]),
    wrap=st.booleans(),
)
def test_generated_scripts_convert_to_checked_fixed_points(pieces, after, newline, wrap) -> None:
    body = "".join(pieces) + "trainer = Trainer(model=m, train_dataset=d)\ntrainer.train()\n" + after
    if wrap:
        body = "def main():\n" + "".join("    " + line + "\n" if line else "\n" for line in body.splitlines())
        body += "\n\nif __name__ == '__main__':\n    main()\n"
    source = "from transformers import Trainer, TrainingArguments\n" + body
    data = source.replace("\n", newline).encode()
    result = convert_source(data, all_codemods())
    assert result.status == "converted", result.entries
    output = result.output.decode()
    ast.parse(output)
    if newline == "\r\n":
        assert output.count("\r\n") == output.count("\n")
    assert check_converted(output.replace("\r\n", "\n"), source) == []
    assert convert_source(result.output, all_codemods()).status == "unchanged"
