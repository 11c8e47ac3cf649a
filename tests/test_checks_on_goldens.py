"""Every converted golden file passes the static checks that `migrate validate` runs."""

from __future__ import annotations

import pytest

from migrator.checks import check_converted, unresolved_names
from tests.golden import Case, cases


@pytest.mark.parametrize("case", [c for c in cases() if c.expected.exists()], ids=lambda c: c.id)
def test_no_name_goes_missing(case: Case) -> None:
    problems = check_converted(case.expected.read_text(), case.input.read_text())
    assert problems == []


def test_check_catches_a_name_only_the_driver_defines() -> None:
    original = "tokenizer = make()\n\ndef encode(x):\n    return tokenizer(x)\n"
    broken = "def encode(x):\n    return tokenizer(x)\n\ndef train_func():\n    tokenizer = make()\n"
    assert set(unresolved_names(broken)) == {"make", "tokenizer"}
    problems = check_converted(broken, original)
    assert [p.message for p in problems] == ["`tokenizer` is read but defined nowhere the code runs"]


def test_check_catches_parsing_on_workers() -> None:
    code = (
        "import sys\nfrom ray.train.torch import TorchTrainer\n\n"
        "def train_func():\n    name = sys.argv[1]\n\n"
        "TorchTrainer(train_func).fit()\n"
    )
    assert [p.line for p in check_converted(code)] == [4]


def test_lightning_package_mismatch_is_one_line_before_any_worker_starts() -> None:
    from migrator.runtime.preflight import lightning_mismatch

    script = "import pytorch_lightning as pl\nfrom ray.train.lightning import prepare_trainer\n"
    problem = lightning_mismatch(script, lightning_installed=True)
    assert problem is not None and problem.startswith("line 1:") and "\n" not in problem
    assert "--lightning-package lightning" in problem
    assert lightning_mismatch(script, lightning_installed=False) is None
    assert lightning_mismatch(script.replace("pytorch_lightning", "lightning.pytorch"), lightning_installed=True) is None
    assert lightning_mismatch("import pytorch_lightning as pl\n", lightning_installed=True) is None  # not converted
