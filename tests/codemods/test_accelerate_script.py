"""Edge cases of the Accelerate codemod, as short before/after checks."""

from __future__ import annotations

import ast
import textwrap

import pytest

from codemods._accelerate import LaunchText
from migrator.checks import check_converted
from migrator.options import ConvertOptions
from tests.golden import convert_text


def convert(source: str, **options):
    return convert_text(textwrap.dedent(source), ConvertOptions(**options) if options else None)


def converted(source: str, **options) -> str:
    result = convert(source, **options)
    assert result.status == "converted", result.entries
    out = result.text("output")
    ast.parse(out)
    assert check_converted(out, textwrap.dedent(source)) == []
    return out


LOOP = """
    from accelerate import Accelerator
    accelerator = Accelerator()
    model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
    for epoch in range(3):
        for batch in loader:
            loss = model(batch)
            accelerator.backward(loss)
    {tail}
    """


def test_files_without_an_accelerator_are_left_alone() -> None:
    for source in ("from accelerate.utils import set_seed\nset_seed(0)\n", "import torch\naccelerate = 1\n"):
        assert convert(source).status == "unchanged"


def test_ray_prepare_utilities_are_not_added() -> None:
    out = converted(LOOP.format(tail=""))
    assert "prepare_model" not in out and "prepare_data_loader" not in out
    assert "model, optimizer, loader = accelerator.prepare(model, optimizer, loader)" in out


@pytest.mark.parametrize(
    "tail, report",
    [
        ('    metrics = {"loss": loss.item()}', 'ray.train.report({"epoch": epoch, **metrics})'),
        ('    accelerator.log({"loss": loss.item()}, step=epoch)', 'ray.train.report({"epoch": epoch, "loss": loss.item()})'),
        ('    accelerator.log({"loss": loss.item(), "epoch": epoch})', 'ray.train.report({"loss": loss.item(), "epoch": epoch})'),
        ("    accelerator.log(stats)", 'ray.train.report({"epoch": epoch, **stats})'),
    ],
)
def test_epoch_end_metrics_are_reported(tail: str, report: str) -> None:
    out = converted(LOOP.format(tail=tail))
    assert f"\n        {report}\n" in out
    assert "import ray.train\n" in out


@pytest.mark.parametrize(
    "tail",
    [
        "    print(loss.item())",  # no dict
        '    accelerator.log({"acc": evaluate_model(model)})',  # a call that must not run twice
        '    if accelerator.is_main_process:\n            metrics = {"loss": loss.item()}',  # not on every rank
    ],
)
def test_metrics_not_found_safely_are_a_follow_up(tail: str) -> None:
    result = convert(LOOP.format(tail=tail))
    assert result.status == "converted"
    assert "ray.train.report" not in result.text("output")
    assert any("metrics are not reported to Ray" in e.message for e in result.follow_ups)


def test_report_goes_after_the_last_use_of_the_metrics() -> None:
    out = converted(LOOP.format(tail='    metrics = {"loss": loss.item()}\n        accelerator.print(metrics)\n        save(model)'))
    assert "accelerator.print(metrics)\n        ray.train.report(" in out


def test_notebook_launcher_becomes_a_direct_call_and_gives_the_worker_count() -> None:
    source = """
        from accelerate import Accelerator, notebook_launcher
        def loop(lr, epochs):
            accelerator = Accelerator()
            model = accelerator.prepare(make_model(lr))
        notebook_launcher(loop, args=(0.1, 3), num_processes=3, num_nodes=2)
        """
    out = converted(source)
    assert "\nloop(0.1, 3)\n" in out and "notebook_launcher" not in out
    assert "ScalingConfig(num_workers=6," in out
    assert "ScalingConfig(num_workers=4," in converted(source, num_workers=4)
    out = converted(source.replace("args=(0.1, 3)", "args=params"))
    assert "\nloop(*params)\n" in out


@pytest.mark.parametrize(
    "line, expected, workers",
    [
        ("accelerate launch train.py", "python train.py", None),
        ("accelerate launch --num_processes 4 train.py --lr 1", "python train.py --lr 1", 4),
        ("accelerate launch --num_processes=2 --num_machines 2 --multi_gpu train.py", "python train.py", 4),
        ("accelerate launch --config_file cfg.yaml -m pkg.train", "python -m pkg.train", None),
        ("see `accelerate launch --help`", "see `accelerate launch --help`", None),
    ],
)
def test_accelerate_launch_lines(line: str, expected: str, workers: int | None) -> None:
    launch = LaunchText()
    assert launch.rewrite(line) == expected
    assert launch.workers == workers


def test_main_with_argparse_keeps_parsing_on_the_driver() -> None:
    out = converted(
        """
        import argparse
        from accelerate import Accelerator
        def main():
            parser = argparse.ArgumentParser()
            parser.add_argument("--lr", type=float)
            args = parser.parse_args()
            accelerator = Accelerator()
            model = accelerator.prepare(build(args.lr))
        if __name__ == "__main__":
            main()
        """
    )
    head, func = out.split("def train_func", 1)
    assert 'args = config["args"]' in func and "parse_args" not in func.split("def main", 1)[0]


def test_prepare_in_another_function_is_a_follow_up() -> None:
    result = convert(
        """
        from accelerate import Accelerator
        accelerator = Accelerator()
        def train():
            model = accelerator.prepare(build())
        """
    )
    assert result.status == "unchanged" and result.follow_ups


CPU_SCRIPT = LOOP.replace("Accelerator()", "Accelerator(cpu=True)").format(tail="")


@pytest.mark.parametrize(("use_gpu", "expected", "kind"), [
    (None, "use_gpu=False", "change"),  # the script says CPU, the user said nothing: CPU workers
    (False, "use_gpu=False", None),  # --no-use-gpu: nothing to say
    (True, "use_gpu=True", "follow-up"),  # --use-gpu given: the user's choice, flagged
])
def test_a_script_that_trains_on_cpu_gets_cpu_workers_unless_gpus_are_asked_for(use_gpu, expected, kind) -> None:
    result = convert(CPU_SCRIPT, use_gpu=use_gpu)
    assert f"ScalingConfig(num_workers=2, {expected})" in result.text("output")
    said = [e.kind for e in result.entries if "trains on CPU (Accelerator(cpu=True))" in e.message]
    assert said == ([kind] if kind else [])


def test_a_script_that_does_not_say_cpu_gets_gpu_workers_by_default() -> None:
    assert "ScalingConfig(num_workers=2, use_gpu=True)" in converted(LOOP.format(tail=""))


IN_A_METHOD = """
    import argparse
    import torch
    from accelerate import Accelerator

    class Runner:
        def __init__(self, args):
            self.args = args
            self.model = torch.nn.Linear(4, 1)

        def train(self):
            accelerator = Accelerator()
            optimizer = torch.optim.SGD(self.model.parameters(), lr=self.args.lr)
            model, optimizer = accelerator.prepare(self.model, optimizer)
            for epoch in range(self.args.epochs):
                loss = model(torch.randn(8, 4)).sum()
                accelerator.backward(loss)
                optimizer.step()
                metrics = {"loss": loss.item()}

    def main():
        parser = argparse.ArgumentParser()
        {launch}

    if __name__ == "__main__":
        main()
    """


def test_an_accelerator_in_a_method_moves_with_the_call_and_reports_in_the_method() -> None:
    out = converted(IN_A_METHOD.replace("{launch}", "args = parser.parse_args()\n        Runner(args).train()"))
    tree = ast.parse(out)
    train_func = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "train_func")
    assert "Runner(args).train()" in ast.unparse(train_func)
    method = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "train")
    loop = next(n for n in ast.walk(method) if isinstance(n, ast.For))
    assert ast.unparse(loop.body[-1]) == "ray.train.report({'epoch': epoch, **metrics})"


def test_a_training_statement_that_parses_the_command_line_is_a_follow_up_not_a_crash() -> None:
    result = convert(IN_A_METHOD.replace("{launch}", "Runner(parser.parse_args()).train()"))
    assert result.status == "unchanged"
    assert any("also reads the command line" in e.message for e in result.follow_ups), result.entries
