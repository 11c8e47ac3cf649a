"""Notebooks: code cells converted as one program, written back as the same notebook."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat
import pytest

from migrator import notebooks
from tests.test_cli import run

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "fixtures" / "notebooks" / "guide_first_tab.ipynb"


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text())["cells"]


def _source(cell: dict) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


@pytest.fixture
def nb(tmp_path: Path) -> Path:
    target = tmp_path / "nb.ipynb"
    shutil.copy(NOTEBOOK, target)
    return target


def test_round_trip_keeps_ids_metadata_markdown_magics_and_untouched_outputs(nb: Path) -> None:
    before = json.loads(nb.read_text())
    result = run("convert", str(nb), "--no-use-gpu")
    assert result.exit_code == 0, result.stderr
    after = json.loads(nb.read_text())
    nbformat.validate(nbformat.reads(nb.read_text(), as_version=nbformat.NO_CONVERT))
    assert (after["nbformat"], after["nbformat_minor"]) == (before["nbformat"], before["nbformat_minor"])
    assert after["metadata"] == before["metadata"]
    assert [c["id"] for c in after["cells"]] == [c["id"] for c in before["cells"]]
    assert [c["cell_type"] for c in after["cells"]] == [c["cell_type"] for c in before["cells"]]
    for old, new in zip(before["cells"], after["cells"]):
        assert new["metadata"] == old["metadata"]
        if old["cell_type"] == "markdown":
            assert new == old
        elif _source(new) == _source(old):
            assert new["outputs"] == old["outputs"]  # untouched: outputs kept (the %%bash cell has some)
        else:
            assert new["outputs"] == [] and new["execution_count"] is None
    assert before["cells"][-1]["outputs"] and after["cells"][-1] == before["cells"][-1]
    # Every IPython line is still there, exactly, and nothing of ours is left behind.
    old_code = "\n".join(_source(c) for c in before["cells"] if c["cell_type"] == "code")
    new_code = "\n".join(_source(c) for c in after["cells"] if c["cell_type"] == "code")
    for magic in ("!pip install -q datasets \\\n    evaluate", "%matplotlib inline", "%%capture", "config?",
                  "%time n = sum(p.numel() for p in model.parameters())", "%%bash\necho done training"):
        assert magic in old_code and new_code.count(magic) == 1, magic
    assert "_migrate_nb_" not in nb.read_text()
    # The train function and its launch land in the cell where training happened (the last code cell
    # before the %%bash one), and every code cell parses on its own (magics aside).
    code = [c for c in after["cells"] if c["cell_type"] == "code"]
    training = _source(code[-2])
    assert "def train_func(" in training and training.index("def train_func(") < training.index("ray_trainer.fit()")
    for cell in code:
        notebooks._check_cell(_source(cell), 0)


def test_second_run_changes_nothing(nb: Path) -> None:
    assert run("convert", str(nb), "--no-use-gpu").exit_code == 0
    once = nb.read_bytes()
    result = run("convert", str(nb), "--no-use-gpu")
    assert result.exit_code == 0 and nb.read_bytes() == once


def test_diff_is_per_cell_and_check_report_and_output_work(nb: Path, tmp_path: Path) -> None:
    original = nb.read_bytes()
    diff = run("convert", "--diff", str(nb), "--no-use-gpu")
    assert diff.exit_code == 0
    assert f"--- {nb}:cell 9\n+++ {nb}:cell 9\n" in diff.stdout
    assert f"{nb}:cell 1\n" not in diff.stdout  # markdown, untouched
    assert '"cell_type"' not in diff.stdout  # cells' code, not the JSON
    check = run("convert", "--check", str(nb), "--no-use-gpu", "--report", str(tmp_path / "r.json"))
    assert check.exit_code == 1
    report = json.loads((tmp_path / "r.json").read_text())
    entry = report["files"][0]
    assert entry["status"] == "converted"
    changed_cells = {c["cell"] for c in entry["changes"] if c["codemod"] == "notebook"}
    assert 9 in changed_cells and 1 not in changed_cells and 10 not in changed_cells
    assert any(c["cell"] == 8 and "save_strategy" in c["message"] for c in entry["changes"])
    markdown = run("convert", "--check", str(nb), "--no-use-gpu", "--report", str(tmp_path / "r.md"))
    assert markdown.exit_code == 1 and f"{nb}:cell 9" in (tmp_path / "r.md").read_text()
    out = tmp_path / "out.ipynb"
    assert run("convert", str(nb), "-o", str(out), "--no-use-gpu").exit_code == 0
    assert nb.read_bytes() == original
    assert "def train_func(" in out.read_text()


def test_folders_include_notebooks_and_plain_ones_stay_byte_for_byte(tmp_path: Path) -> None:
    plain = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("%time x = 1\nprint(x)")])
    (tmp_path / "plain.ipynb").write_text(nbformat.writes(plain))
    shutil.copy(NOTEBOOK, tmp_path / "train.ipynb")
    before = (tmp_path / "plain.ipynb").read_bytes()
    result = run("convert", str(tmp_path), "--no-use-gpu")
    assert result.exit_code == 0
    assert f"converted {tmp_path / 'train.ipynb'}" in result.stderr
    assert (tmp_path / "plain.ipynb").read_bytes() == before


@pytest.mark.parametrize(
    "content, why",
    [
        (b'{"cells": [', "not valid JSON"),
        (b'[1, 2]', "not a notebook"),
        (b'{"a": 1}', "not a notebook"),
        (json.dumps({"nbformat": 3, "nbformat_minor": 0, "metadata": {}, "worksheets": []}).encode(), "nbformat 3"),
        (b"\xff\xfe{\x00", "not a notebook"),
    ],
)
def test_bad_notebooks_fail_in_one_line_and_stay_untouched(tmp_path: Path, content: bytes, why: str) -> None:
    target = tmp_path / "bad.ipynb"
    target.write_bytes(content)
    result = run("convert", str(target))
    assert result.exit_code == 123
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and why in errors[0] and str(target) in errors[0]
    assert "Traceback" not in result.stderr
    assert target.read_bytes() == content


@pytest.mark.parametrize(
    "cell, masked",
    [
        ("x = (a\n% b)\n", set()),  # a modulo inside brackets, not a magic
        ('s = """\nwhat?\n!important\n"""\n', set()),  # inside a string
        ("!pip install \\\n   torch\nx = 1\n", {"!pip install \\\n   torch"}),
        ("files = !ls\nfor f in files:\n    %time g(f)\n", {"files = !ls", "    %time g(f)"}),
        ("??model\nmodel?\nx = a if b else c\n", {"??model", "model?"}),
        ("%%writefile a.py\nthis is not: python\n", {"%%writefile a.py\nthis is not: python"}),
        ("%%capture\nimport x\n%env A=1\n", {"%%capture", "%env A=1"}),
    ],
)
def test_masking_finds_ipython_lines_only(cell: str, masked: set[str]) -> None:
    result = notebooks.mask(cell, "_t", [0])
    assert set(result.magics.values()) == masked
    compile(result.text, "<cell>", "exec")
    assert notebooks.unmask(result.text, "_t", result.magics).rstrip("\n") == cell.rstrip("\n")


def test_script_of_a_notebook_skips_magics_with_a_note() -> None:
    script, skipped = notebooks.script_of(NOTEBOOK.read_bytes())
    compile(script, "nb.py", "exec")
    assert skipped == 6  # !pip (with its continuation), %matplotlib, %%capture, config?, %time, %%bash
    assert "pass  # skipped (IPython only): !pip install -q datasets \\" in script


def test_a_syntax_error_names_the_cell_and_its_line(tmp_path: Path) -> None:
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("hi"),
        nbformat.v4.new_code_cell("from transformers import Trainer\n!ls"),
        nbformat.v4.new_code_cell("x = 1\ndef f(:\n    pass"),
    ])
    target = tmp_path / "nb.ipynb"
    target.write_text(nbformat.writes(nb))
    before = target.read_bytes()
    result = run("convert", str(target))
    assert result.exit_code == 123 and target.read_bytes() == before
    assert f"error: cannot convert {target}: cell 3, line 2: syntax error" in result.stderr
