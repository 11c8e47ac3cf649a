"""Training shapes beyond one Trainer in one block: nested and decorated training functions,
several trainings in one script, LightningCLI, Hydra apps (issue 9, items 3-6)."""

from __future__ import annotations

import ast
import textwrap

from tests.golden import convert_text


def convert(source: str):
    result = convert_text(textwrap.dedent(source), None)
    assert result.status == "converted", result.entries
    out = result.text("output")
    ast.parse(out)
    return result, out


def follow_ups(result) -> list[str]:
    return [e.message for e in result.entries if e.kind == "follow-up"]


# -- nested and decorated functions (item 6) -----------------------------------------------------
def test_lightning_fit_in_a_function_nested_in_main_moves_with_main():
    result, out = convert('''
        import lightning.pytorch as pl
        from model import Net

        def main():
            def run(epochs):
                trainer = pl.Trainer(max_epochs=epochs)
                trainer.fit(Net())
            run(2)

        if __name__ == "__main__":
            main()
    ''')
    tree = ast.parse(out)
    train_func = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "train_func")
    # The nested def and its call both run on the workers, in order.
    assert [type(s).__name__ for s in train_func.body[-2:]] == ["FunctionDef", "Expr"]
    assert "trainer = prepare_trainer(trainer)" in out
    assert not follow_ups(result)


def test_training_in_a_method_is_still_a_follow_up():
    result = convert_text(textwrap.dedent('''
        import lightning.pytorch as pl

        class Experiment:
            def run(self):
                trainer = pl.Trainer()
                trainer.fit(self.model)
    '''), None)
    assert result.status == "unchanged"
    assert any("move it into a top-level function first" in m for m in follow_ups(result))
