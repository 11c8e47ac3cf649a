"""torch_load_weights_only: a load of what the script saves itself keeps working on torch >= 2.6.

The fixtures run on the installed torch: as written they stop at their ``torch.load`` (the
weights-only default refuses a pickled module and an argparse Namespace), converted they run.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from codemods.torch_load_weights_only import TorchLoadWeightsOnly as C
from tests.codemods.helpers import check_noop, check_transformed
from tests.golden import convert_text

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "torch_load_weights_only"


def _run(source: str, folder: Path) -> subprocess.CompletedProcess:
    script = folder / "script.py"
    script.write_text(source)
    return subprocess.run([sys.executable, str(script)], cwd=folder, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("name", ["whole_model", "namespace_in_checkpoint"])
def test_as_written_the_load_fails_on_this_torch_and_converted_it_runs(name: str, tmp_path: Path) -> None:
    pytest.importorskip("torch")
    original = (FIXTURES / f"{name}.input.py").read_text()
    before = _run(original, tmp_path)
    assert before.returncode != 0 and "Weights only load failed" in before.stderr, before.stderr[-2000:]
    converted = (FIXTURES / f"{name}.expected.py").read_text()
    assert convert_text(original).output.decode() == converted
    after = _run(converted, tmp_path)
    assert after.returncode == 0, after.stderr[-2000:]


def test_state_dicts_load_under_the_new_default_and_are_left_alone(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    source = (FIXTURES / "state_dicts_only.input.py").read_text()
    assert convert_text(source).status == "unchanged"
    assert _run(source, tmp_path).returncode == 0


def test_a_module_attribute_saved_whole() -> None:
    check_transformed(
        C,
        """\
        import torch
        class Experiment:
            def save(self):
                self.model.eval()
                torch.save(self.model, "m.pt")
            def load(self):
                self.model = torch.load("m.pt", map_location="cpu")
        """,
        """\
        import torch
        class Experiment:
            def save(self):
                self.model.eval()
                torch.save(self.model, "m.pt")
            def load(self):
                self.model = torch.load("m.pt", map_location="cpu", weights_only=False)
        """,
    )


def test_a_namespace_in_a_dict_written_at_the_call() -> None:
    check_transformed(
        C,
        """\
        import torch
        args = parser.parse_args()
        torch.save({"args": args, "state": net.state_dict()}, path)
        ckpt = torch.load(path)
        """,
        """\
        import torch
        args = parser.parse_args()
        torch.save({"args": args, "state": net.state_dict()}, path)
        ckpt = torch.load(path, weights_only=False)
        """,
    )


@pytest.mark.parametrize("source", [
    # weights_only chosen already, or passed through **kwargs
    "import torch\ntorch.save(model, 'm.pt')\nmodel.eval()\nm = torch.load('m.pt', weights_only=True)\n",
    "import torch\ntorch.save(model, 'm.pt')\nmodel.eval()\nm = torch.load('m.pt', **load_kwargs)\n",
    # only what a weights-only load takes is saved
    "import torch\ntorch.save(model.state_dict(), 'm.pt')\nmodel.eval()\nmodel.load_state_dict(torch.load('m.pt'))\n",
    "import torch\ntorch.save({'epoch': 1, 'model': model.state_dict()}, 'm.pt')\nck = torch.load('m.pt')\n",
    # nothing saved here: a pretrained file loads under the safer default
    "import torch\nstate = torch.load('pretrained.pt', map_location='cpu')\nmodel.eval()\n",
    # a torch.load of another library
    "import torch\nfrom mylib import load\ntorch.save(model, 'm.pt')\nmodel.eval()\nm = load('m.pt')\n",
])
def test_left_alone(source: str) -> None:
    check_noop(C, source)


def test_a_training_script_that_tests_its_best_model_converts_and_keeps_the_keyword() -> None:
    source = '''\
import torch
import torch.nn as nn


def main():
    model = nn.Linear(4, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    x = torch.randn(16, 4)
    for epoch in range(2):
        loss = ((model(x) - 1) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        torch.save(model, "best.pt")
    best = torch.load("best.pt")
    print(best(x).mean())


if __name__ == "__main__":
    main()
'''
    result = convert_text(source)
    assert result.status == "converted"
    out = result.output.decode()
    assert 'torch.load("best.pt", weights_only=False)' in out and "TorchTrainer" in out
    assert any(e.codemod == "torch_load_weights_only" for e in result.entries)


def test_a_call_written_one_argument_per_line_gets_the_keyword_on_a_line_of_its_own() -> None:
    check_transformed(
        C,
        """\
        import torch
        model.eval()
        torch.save(model, "m.pt")
        state = torch.load(
            "m.pt",
            map_location="cpu",  # on any machine
        )
        """,
        """\
        import torch
        model.eval()
        torch.save(model, "m.pt")
        state = torch.load(
            "m.pt",
            map_location="cpu",  # on any machine
            weights_only=False,
        )
        """,
    )
