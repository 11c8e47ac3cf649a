"""``migrator.libcst_imports``: LibCST's matchers imported without rendering their signatures,
and nothing else changed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PROBE = """
import dataclasses, inspect, sys
from migrator.libcst_imports import import_codemod_framework

import_codemod_framework()
import libcst as cst
import libcst.matchers as m

@dataclasses.dataclass
class After:
    x: int

print(m.Name.__doc__, m.Call.__doc__)  # what dataclasses writes when it has no signature
print(dataclasses.inspect is inspect, After.__doc__)  # put back: later dataclasses as ever
print(m.matches(cst.Call(func=cst.Name("f")), m.Call(func=m.Name("f"))), m.matches(cst.Name("g"), m.Name("f")))
import_codemod_framework()  # a second time: nothing to do
print(dataclasses.inspect is inspect)
"""


def test_the_matchers_import_without_signature_docstrings_and_work_as_ever() -> None:
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["Name Call", "True After(x: int)", "True False", "True"]


def test_without_it_the_matchers_carry_their_signatures() -> None:
    """What the module saves: the docstrings it leaves out are the signatures, unions and all."""
    probe = "import libcst.matchers as m\nprint(m.Name.__doc__.startswith('Name(value: Union['))\n"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.stdout.strip() == "True", done.stdout + done.stderr
