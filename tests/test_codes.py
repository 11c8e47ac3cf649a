"""Every codemod has a stable finding code, no two codes collide, and the README lists them all."""

from __future__ import annotations

import re
from pathlib import Path

from migrator.codes import CODES_FILE, all_codes, code_for, table
from migrator.registry import codemod_ids

README = Path(__file__).resolve().parent.parent / "README.md"


#: Code families by the start of a codemod's id (the order decides: first match wins).
FAMILIES = (("transformers", 1), ("trl", 1), ("peft", 1), ("accelerate", 2), ("lightning", 3), ("ray", 4),
            ("torch", 5), ("pytorch", 5), ("ddp", 5), ("launch", 5))


def _suggest(missing: list[str]) -> dict[str, str]:
    """The next free prefix in each missing codemod's family (RT6x when no family fits)."""
    used = set(table()["codemods"].values())
    suggestions = {}
    for codemod in missing:
        family = next((digit for start, digit in FAMILIES if codemod.startswith(start)), 6)
        prefix = next(f"RT{family}{n}" for n in range(10) if f"RT{family}{n}" not in used)
        used.add(prefix)
        suggestions[codemod] = prefix
    return suggestions


def test_every_registered_codemod_has_a_code() -> None:
    missing = [codemod for codemod in codemod_ids() if codemod not in table()["codemods"]]
    suggestions = _suggest(missing)
    toml_lines = "\n".join(f'    {codemod} = "{prefix}"' for codemod, prefix in suggestions.items())
    readme_rows = "\n".join(
        f"    | `{prefix}1` | {codemod} <what a change by it does, one sentence>. |\n"
        f"    | `{prefix}2` | {codemod} <what its follow-ups ask of a person, one sentence>. |"
        for codemod, prefix in suggestions.items()
    )
    assert not missing, (
        f"codemods without a finding code: {', '.join(missing)}.\n"
        f"Add under [codemods] in {CODES_FILE.relative_to(README.parent)} (the next free prefix of each family):\n"
        f"{toml_lines}\n"
        f"and these rows to the README's 'Finding codes' table, with the sentences filled in:\n{readme_rows}"
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
