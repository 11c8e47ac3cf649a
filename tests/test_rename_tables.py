"""The rename tables in codemods/data/: every entry has a version and a way out, and says the truth
about the installed libraries (transformers 5.x, ray 2.x with Train V2)."""

from __future__ import annotations

import inspect
import warnings
from pathlib import Path

import pytest

from codemods._names import DATA, load_table

TABLES = sorted(path.stem for path in Path(DATA).glob("*.toml"))
#: Keys that say what replaces an old spelling (at least for some values).
REPLACEMENTS = {"rename", "replace_if", "remove_if", "new"}
#: Keys that make an entry an entry.
ACTIONS = REPLACEMENTS | {"follow_up"}


def entries(node: dict, path: str = ""):
    """(path, entry) for every entry of a table: a dict holding an action key."""
    for key, value in node.items():
        if isinstance(value, dict):
            if ACTIONS & value.keys():
                yield f"{path}{key}", value
            else:
                yield from entries(value, f"{path}{key}.")


def always_exact(entry: dict) -> bool:
    return ("rename" in entry and "rename_below" not in entry) or "*" in entry.get("remove_if", ()) or (
        "new" in entry and not entry.get("only_if")
    )


def test_there_are_tables():
    assert {"transformers_renamed_arguments"} <= set(TABLES)


@pytest.mark.parametrize("name", TABLES)
def test_every_entry_has_a_version_and_a_way_out(name):
    found = list(entries(load_table(name)))
    assert found, f"{name}.toml has no entries"
    for path, entry in found:
        assert isinstance(entry.get("version"), str) and entry["version"][0].isdigit(), f"{name}: {path} needs a version"
        assert REPLACEMENTS & entry.keys() or entry.get("follow_up"), f"{name}: {path} needs a replacement or a follow-up"
        if not always_exact(entry):
            assert entry.get("follow_up"), f"{name}: {path} is not always exact, so it needs follow-up text"
        assert entry.get("evidence"), f"{name}: {path} should say where the decision comes from"


# -- transformers ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def transformers():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pytest.importorskip("transformers")


def test_transformers_keywords_match_the_installed_version(transformers):
    table = load_table("transformers_renamed_arguments")
    accepts = {
        "training_arguments": set(inspect.signature(transformers.TrainingArguments).parameters),
        "trainer": set(inspect.signature(transformers.Trainer).parameters),
        "trainer.train": set(inspect.signature(transformers.Trainer.train).parameters),
    }
    for group, keywords in table["keywords"].items():
        for old, entry in keywords.items():
            assert old not in accepts[group], f"{group}: transformers {transformers.__version__} still accepts {old}="
            targets = [entry.get("rename")] + [r.partition("=")[0] for r in entry.get("replace_if", {}).values()]
            for new in filter(None, targets):
                assert new in accepts[group], f"{group}: {old}= -> {new}=, which transformers does not accept"
    for old, entry in table["attributes"]["trainer"].items():
        assert not hasattr(transformers.Trainer, old)
        assert entry["rename"] in accepts["trainer"]


def test_transformers_classes_exist(transformers):
    for names in load_table("transformers_renamed_arguments")["classes"].values():
        for name in names:
            module, _, attr = name.rpartition(".")
            if module.split(".")[0] == "transformers":
                assert getattr(__import__(module, fromlist=[attr]), attr), name
