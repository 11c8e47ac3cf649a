"""Every codemod has a stable finding code, no two codes collide, and the README lists them all."""

from __future__ import annotations

import re
from pathlib import Path

from migrator.codes import CODES_FILE, all_codes, code_for, table
from migrator.registry import codemod_ids

README = Path(__file__).resolve().parent.parent / "README.md"


def _next_free_prefix() -> str:
    used = set(table()["codemods"].values())
    return next(f"RT{n}" for n in range(60, 100) if f"RT{n}" not in used)


def test_every_registered_codemod_has_a_code() -> None:
    missing = [codemod for codemod in codemod_ids() if codemod not in table()["codemods"]]
    hint = "\n".join(f'    {codemod} = "RTxy"' for codemod in missing)
    assert not missing, (
        f"codemods without a finding code: {', '.join(missing)}.\n"
        f"Add under [codemods] in {CODES_FILE.relative_to(README.parent)}, taking the next free prefix of the "
        f"family (RT1x Transformers, RT2x Accelerate, RT3x Lightning, RT4x Ray, RT5x PyTorch; e.g. {_next_free_prefix()}):\n"
        f"{hint}\n"
        "and a row per code (prefix + 1 for a change, prefix + 2 for a follow-up) in the README's "
        "'Finding codes' table."
    )


def test_codes_are_unique_and_well_formed() -> None:
    prefixes = list(table()["codemods"].values())
    duplicated = sorted({p for p in prefixes if prefixes.count(p) > 1})
    assert not duplicated, f"two codemods share a code prefix in {CODES_FILE.name}: {duplicated}"
    codes = all_codes()
    assert len(codes) == 1 + len(prefixes) * len(table()["kinds"]), "a code stands for two findings"
    assert all(re.fullmatch(r"RT\d{3}", code) for code in codes), sorted(codes)
    assert code_for("transformers_trainer", "change") == "RT101"
    assert code_for("transformers_trainer", "follow-up") == "RT102"


def test_codes_for_codemods_that_no_longer_exist_are_flagged() -> None:
    stale = sorted(set(table()["codemods"]) - set(codemod_ids()))
    assert not stale, f"{CODES_FILE.name} names codemods that do not exist: {stale} (keep their codes retired, do not reuse them)"


def test_readme_lists_every_code_with_a_sentence() -> None:
    text = README.read_text()
    rows = dict(re.findall(r"^\| `(RT\d{3})` \| (.+?) \|$", text, re.M))
    missing = sorted(set(all_codes()) - set(rows))
    assert not missing, f"README's 'Finding codes' table lacks rows for {missing}"
    for code, sentence in rows.items():
        assert code in all_codes(), f"README lists {code}, which {CODES_FILE.name} does not define"
        assert len(sentence.split()) >= 5 and sentence.rstrip().endswith("."), f"{code}: say what it means in a sentence"
