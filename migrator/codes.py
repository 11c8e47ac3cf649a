"""Stable codes for findings (``RT101``), read from ``migrator/data/codes.toml``.

The codes are data, kept in one file, so that a reviewer, a SARIF consumer or a CI filter can
rely on them across releases; ``tests/test_codes.py`` checks that every codemod has one.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

CODES_FILE = Path(__file__).resolve().parent / "data" / "codes.toml"


@lru_cache(maxsize=1)
def table() -> dict:
    with CODES_FILE.open("rb") as handle:
        return tomllib.load(handle)


def failed_code() -> str:
    """The code of a file that could not be converted."""
    return table()["failed"]


def code_for(codemod: str, kind: str) -> str:
    """``RT101`` for a change by transformers_trainer. A codemod without a prefix (a new one
    whose row is still missing, which ``tests/test_codes.py`` reports) falls back to its id."""
    data = table()
    prefix = data["codemods"].get(codemod)
    if prefix is None:
        return codemod
    return prefix + data["kinds"][kind]


def all_codes() -> dict[str, tuple[str, str]]:
    """Every code, mapped to the (codemod, kind) it stands for; the failure code maps to ("", "failed")."""
    data = table()
    codes = {data["failed"]: ("", "failed")}
    for codemod, prefix in data["codemods"].items():
        for kind, digit in data["kinds"].items():
            codes[prefix + digit] = (codemod, kind)
    return codes
