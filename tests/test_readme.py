"""The README's before/after example is what `migrate convert` really produces."""

from __future__ import annotations

import re
from pathlib import Path

from tests.golden import convert_text

README = Path(__file__).resolve().parent.parent / "README.md"


def _block(marker: str) -> str:
    text = README.read_text()
    match = re.search(r"```python\n" + re.escape(marker) + r"\n(.*?)```", text, re.S)
    assert match, f"README has no python block starting with {marker!r}"
    return match.group(1)


def test_before_and_after_agree() -> None:
    before = _block("# before: train.py")
    after = _block("# after: migrate convert train.py")
    assert convert_text(before).text("output") == after
