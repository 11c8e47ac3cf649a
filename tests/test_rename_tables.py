"""The rename tables in codemods/data/: every entry has a version and a way out, and says the truth
about the installed libraries (transformers 5.x, ray 2.x with Train V2)."""

from __future__ import annotations

import importlib
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
    conditional = {"rename_below", "unless_uses", "unless_reads"} & entry.keys()
    return not conditional and ("rename" in entry or "new" in entry or "*" in entry.get("remove_if", ()))


def test_there_are_tables():
    assert {"transformers_renamed_arguments", "ray_air_to_ray_train", "ray_train_v1_arguments"} <= set(TABLES)


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
        assert entry["rename"] in accepts["trainer"] or callable(getattr(transformers.Trainer, entry["rename"], None))


def test_transformers_replacements_construct(transformers, tmp_path):
    """Every per-value replacement builds a TrainingArguments on the installed transformers."""
    import ast

    for old, entry in load_table("transformers_renamed_arguments")["keywords"]["training_arguments"].items():
        for replacement in entry.get("replace_if", {}).values():
            keyword, _, value = replacement.partition("=")
            args = transformers.TrainingArguments(output_dir=str(tmp_path), **{keyword: ast.literal_eval(value)})
            assert getattr(args, keyword) is not None, old


def test_transformers_classes_exist(transformers):
    for names in load_table("transformers_renamed_arguments")["classes"].values():
        for name in names:
            module, _, attr = name.rpartition(".")
            if module.split(".")[0] == "transformers":
                assert getattr(__import__(module, fromlist=[attr]), attr), name


# -- ray --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ray_train():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pytest.importorskip("ray")
        import ray.train
        from ray.train.v2._internal.constants import is_v2_enabled

    if not is_v2_enabled():
        pytest.skip("these facts are about Ray Train V2")
    return ray.train


def _resolve(dotted: str):
    import importlib

    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(dotted)


def test_ray_air_replacements_exist(ray_train):
    from ray.train.v2.api.context import TrainContext

    table = load_table("ray_air_to_ray_train")
    for old, entry in table["names"].items():
        new = entry.get("new")
        if new is None:
            continue
        if "(" in new:
            assert new.startswith("ray.train.get_context()."), new
            assert callable(getattr(TrainContext, new.rsplit(".", 1)[1])), new
        else:
            assert _resolve(new) is not None, f"{old} -> {new}, which does not import"
    for method in table["checkpoint"]["methods"]:
        assert not hasattr(ray_train.Checkpoint, method), f"ray.train.Checkpoint.{method} exists after all"
    fields = {f.name for f in __import__("dataclasses").fields(ray_train.Result)}
    assert "path" in fields and "log_dir" not in fields


def test_ray_air_config_classes_are_rejected_by_v2(ray_train):
    import ray.air

    with pytest.raises(ValueError, match="Use `ray.train.CheckpointConfig`"):
        ray_train.RunConfig(checkpoint_config=ray.air.CheckpointConfig())


def test_ray_v1_arguments_are_rejected_and_replacements_accepted(ray_train):
    from ray.train.torch import TorchTrainer

    table = load_table("ray_train_v1_arguments")
    build = {
        "trainer": lambda **kw: TorchTrainer(lambda: None, **kw),
        "run_config": ray_train.RunConfig,
        "checkpoint_config": ray_train.CheckpointConfig,
        "failure_config": ray_train.FailureConfig,
        "scaling_config": ray_train.ScalingConfig,
    }
    for group, keywords in table["keywords"].items():
        for old, entry in keywords.items():
            with pytest.raises((DeprecationWarning, TypeError)):
                build[group](**{old: {"CPU": 1}})
            if "rename" in entry:
                assert entry["rename"] in inspect.signature(build[group]).parameters
    with pytest.raises(ValueError, match="UserCallback"):
        from ray.tune.logger import CSVLoggerCallback

        ray_train.RunConfig(callbacks=[CSVLoggerCallback()])


def test_literal_triggers_cover_every_table_class() -> None:
    """TRIGGERS stay literal (the registry reads them with ast); they must still see every class.

    The pre-filter matches whole names and, with ``MODULES``, requires an import: every table class
    is reached through its package, so that package must be a module. Ray's classes are triggered
    by the package; transformers' by the last part of each class, which a file must spell to
    call, read or subclass one (``*Trainer``: any name ending so), and by nothing else.
    """
    from codemods import ray_train_v1_arguments, transformers_renamed_arguments
    from migrator.prefilter import names_any

    for module, classes in (
        (transformers_renamed_arguments, transformers_renamed_arguments.TABLE["classes"].values()),
        (ray_train_v1_arguments, ray_train_v1_arguments.CLASSES.values()),
    ):
        codemod = next(v for v in vars(module).values() if isinstance(v, type) and v.__module__ == module.__name__)
        for name in (name for group in classes for name in group):
            package = name.split(".", 1)[0].encode()
            assert package in codemod.MODULES, f"{module.__name__}: {name!r} is not covered by MODULES"
            if module is ray_train_v1_arguments:
                assert package in codemod.TRIGGERS, f"{module.__name__}: {name!r} is not covered by TRIGGERS"
            else:
                last = name.rsplit(".", 1)[-1].encode()
                assert names_any(last, codemod.TRIGGERS), f"{module.__name__}: {name!r} is not covered by TRIGGERS"
    renamed = transformers_renamed_arguments
    lasts = {name.rsplit(".", 1)[-1] for group in renamed.TABLE["classes"].values() for name in group}
    wanted = {"*Trainer"} | {last for last in lasts if not last.endswith("Trainer")}
    assert {t.decode() for t in renamed.TransformersRenamedArguments.TRIGGERS} == wanted


# -- lightning --------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=["pytorch_lightning", "lightning.pytorch"])
def lightning(request):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pytest.importorskip(request.param)


def _trainer(pl, **kwargs):
    return pl.Trainer(**{"logger": False, "enable_progress_bar": False, "enable_model_summary": False, **kwargs})


def test_lightning_removed_keywords_are_rejected_and_replacements_accepted(lightning):
    import ast

    table = load_table("lightning_removed_arguments")
    accepts = set(inspect.signature(lightning.Trainer).parameters)
    for old, entry in {**table["keywords"]["trainer"], **{k: v for k, v in table["special"]["trainer"].items() if k in ("gpus", "resume_from_checkpoint")}}.items():
        assert old not in accepts, f"Lightning {lightning.__version__} still accepts {old}="
        with pytest.raises(TypeError):
            _trainer(lightning, **{old: 1})
        for replacement in entry.get("replace_if", {}).values():
            keyword, _, value = replacement.partition("=")
            _trainer(lightning, **{keyword: ast.literal_eval(value)})
    assert "ckpt_path" in inspect.signature(lightning.Trainer.fit).parameters
    # gpus=N -> accelerator="gpu", devices=N is accepted by the Trainer's argument check (a GPU
    # is only needed to run): the CPU twin proves the shape of the rewrite.
    _trainer(lightning, accelerator="cpu", devices=1)
    for method in ("from_argparse_args", "add_argparse_args", "tune"):
        assert not hasattr(lightning.Trainer, method)


def test_lightning_accepted_keywords_are_the_trainers(lightning):
    accepted = load_table("lightning_removed_arguments")["accepted"]["trainer"]
    assert set(accepted) == set(inspect.signature(lightning.Trainer).parameters)


def test_lightning_renamed_keywords_are_accepted_under_the_new_name(lightning):
    table = load_table("lightning_removed_arguments")
    accepts = set(inspect.signature(lightning.Trainer).parameters)
    for old, entry in table["keywords"]["trainer"].items():
        if "rename" in entry:
            assert entry["rename"] in accepts, (old, entry["rename"])
    for method, entries in table["methods"].items():
        params = set(inspect.signature(getattr(lightning.Trainer, method)).parameters)
        for old, entry in entries.items():
            assert old not in params, f"Trainer.{method} still takes {old}="
            assert entry["rename"] in params, (method, entry["rename"])


def test_lightning_removed_trainer_attributes_are_gone_and_renames_read(lightning):
    import operator

    trainer = _trainer(lightning, accelerator="cpu", devices=1)
    for old, entry in load_table("lightning_removed_arguments")["attributes"].items():
        assert not hasattr(trainer, old), f"Lightning {lightning.__version__} still has Trainer.{old}"
        if "rename" in entry:
            operator.attrgetter(entry["rename"])(trainer)  # raises AttributeError if the path is wrong


def test_lightning_moved_imports_are_gone_and_their_homes_import(lightning):
    import importlib

    package = lightning.__name__
    for path, entry in load_table("lightning_moved_imports")["modules"].items():
        try:
            old = importlib.import_module(f"{package}.{path}")
        except ModuleNotFoundError:
            old = None
        assert (old is None) == entry["removed"], path
        for name, target in entry["names"].items():
            assert old is None or not hasattr(old, name), f"{package}.{path} still has {name}"
            home, _, new = target.rpartition(".")
            module = importlib.import_module(f"{package}.{home}" if home else package)
            assert hasattr(module, new), f"{module.__name__} has no {new}"


def test_lightning_removed_values_are_rejected_and_replacements_accepted(lightning):
    import ast

    for keyword, values in load_table("lightning_removed_arguments")["values"].items():
        for old, entry in values.items():
            value = None if old == "None" else old
            with pytest.raises((TypeError, ValueError)):
                _trainer(lightning, **{keyword: value})
            new, _, code = entry["new"].partition("=")
            _trainer(lightning, **{new: ast.literal_eval(code)})


def test_lightning_argparse_flags_keep_the_trainer_defaults(lightning):
    import argparse

    from codemods.lightning_removed_arguments import FLAGS

    params = inspect.signature(lightning.Trainer).parameters
    parser = argparse.ArgumentParser()
    for flag in FLAGS:
        assert flag["name"] in params, flag["name"]
        assert eval(flag["default"]) == params[flag["name"]].default, flag["name"]
        parser.add_argument(f"--{flag['name']}", type=eval(flag["type"]), default=eval(flag["default"]))
    # What a command line gives passes straight to the Trainer.
    args = parser.parse_args(["--accelerator", "cpu", "--devices", "1", "--max_epochs", "2", "--precision", "32"])
    trainer = _trainer(lightning, **{f["name"]: getattr(args, f["name"]) for f in FLAGS})
    assert trainer.max_epochs == 2 and trainer.num_devices == 1


def test_lightning_removed_hooks_fail_at_fit(lightning, tmp_path):
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    loader = DataLoader(TensorDataset(torch.randn(4, 2)), batch_size=2)
    step = lambda self, batch, i: self.layer(batch[0]).sum()  # noqa: E731
    for hook in load_table("lightning_removed_arguments")["hooks"]:
        module = type("Module", (lightning.LightningModule,), {
            "__init__": lambda self: (lightning.LightningModule.__init__(self), setattr(self, "layer", torch.nn.Linear(2, 1)))[0],
            "training_step": step, "validation_step": step, "test_step": step,
            "configure_optimizers": lambda self: torch.optim.SGD(self.parameters(), 0.1),
            hook: lambda self, outputs: None,
        })
        trainer = _trainer(lightning, max_steps=1, enable_checkpointing=False, default_root_dir=str(tmp_path))
        with pytest.raises(NotImplementedError, match=hook):
            if hook.startswith("test"):
                trainer.test(module(), loader)
            else:
                trainer.fit(module(), loader, loader)


# -- Hugging Face removed APIs -------------------------------------------------------------------


def test_load_metric_is_gone_and_evaluate_load_takes_its_arguments():
    datasets = pytest.importorskip("datasets")
    evaluate = pytest.importorskip("evaluate")
    entry = load_table("hf_removed_apis")["functions"]["datasets.load_metric"]
    assert not hasattr(datasets, "load_metric")
    params = list(inspect.signature(evaluate.load).parameters)
    assert params[: entry["positional"]] == ["path", "config_name"]
    assert set(entry["keywords"]) <= set(params)


@pytest.mark.parametrize("name", ["transformers.AdamW", "transformers.optimization.AdamW"])
def test_transformers_adamw_is_gone_and_torch_adamw_takes_its_arguments(name):
    """The import fails; torch's AdamW takes the same positional parameters and the kept keywords,
    and the defaults written out are exactly the ones where transformers' differed from torch's."""
    import torch
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        transformers = pytest.importorskip("transformers")
    module, attr = name.rsplit(".", 1)
    assert not hasattr(importlib.import_module(module), attr)
    entry = load_table("hf_removed_apis")["functions"][name]
    params = inspect.signature(torch.optim.AdamW).parameters
    assert list(params)[: entry["positional"]] == entry["parameters"]
    assert set(entry["keywords"]) <= set(params)
    assert not set(entry["drop"]) & set(params) and not set(entry["inexact"]) & set(params)
    # transformers 4.x: AdamW(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.0, correct_bias=True)
    old_defaults = {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-6, "weight_decay": 0.0}
    differ = {k for k, v in old_defaults.items() if params[k].default != v}
    assert differ == set(entry["defaults"]) and all(float(entry["defaults"][k]) == old_defaults[k] for k in differ)


def test_removed_transformers_names_are_gone_and_seen_by_the_prefilter():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        transformers = pytest.importorskip("transformers")
    from codemods.hf_removed_apis import HfRemovedApis

    for group, entry in load_table("hf_removed_apis")["removed"].items():
        for name in entry["names"]:
            module, attr = name.rsplit(".", 1)
            assert not hasattr(importlib.import_module(module), attr), f"{name} still exists ({group})"
            assert attr.encode() in HfRemovedApis.TRIGGERS, f"{attr} is not in TRIGGERS"
    assert transformers.is_torch_xla_available and transformers.get_linear_schedule_with_warmup  # the replacements named


def test_token_is_taken_where_use_auth_token_is_rewritten():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        transformers = pytest.importorskip("transformers")
    table = load_table("hf_removed_apis")
    for name in table["groups"]["functions"]:
        params = inspect.signature(_resolve(name)).parameters
        assert "use_auth_token" not in params, name
        assert "token" in params or name == "transformers.pipeline" and "token" in inspect.signature(transformers.pipeline).parameters, name
    params = inspect.signature(transformers.PreTrainedModel.from_pretrained).parameters
    assert "token" in params and "use_auth_token" not in params


def test_use_auth_token_fails_and_token_works(tmp_path):
    """Measured on the installed packages: the old keyword breaks the call, the new one does not."""
    datasets = pytest.importorskip("datasets")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        transformers = pytest.importorskip("transformers")
    (tmp_path / "d.csv").write_text("a,b\n1,2\n")
    with pytest.raises(TypeError):
        datasets.load_dataset("csv", data_files=str(tmp_path / "d.csv"), cache_dir=str(tmp_path / "c"), use_auth_token=None)
    datasets.load_dataset("csv", data_files=str(tmp_path / "d.csv"), cache_dir=str(tmp_path / "c"), token=None)
    config = transformers.BertConfig(hidden_size=8, num_hidden_layers=1, num_attention_heads=1, intermediate_size=8, vocab_size=20)
    transformers.BertModel(config).save_pretrained(tmp_path / "tiny")
    with pytest.raises(TypeError):
        transformers.AutoModel.from_pretrained(tmp_path / "tiny", use_auth_token=None)
    transformers.AutoModel.from_pretrained(tmp_path / "tiny", token=None)


# -- trl ------------------------------------------------------------------------------------------


def test_trl_moved_keywords_left_the_trainers_and_exist_in_the_configs():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trl = pytest.importorskip("trl")
    table = load_table("trl_moved_arguments")
    for trainer_name, trainer in table["trainers"].items():
        trainer_params = list(inspect.signature(_resolve(trainer_name)).parameters)
        config_params = set(inspect.signature(_resolve(trainer["config"])).parameters)
        assert trainer_params[trainer["args_position"]] == "args", trainer_name
        assert issubclass(_resolve(trainer["config"]), __import__("transformers").TrainingArguments)
        for old, entry in table["moves"][trainer["short"]].items():
            assert old not in trainer_params, f"trl {trl.__version__}: {trainer_name} still takes {old}="
            if "new" in entry:
                assert entry["new"] in config_params, f"{trainer['config']} has no {entry['new']}"
            else:
                assert old not in config_params, f"{trainer['config']} has {old} after all"


def test_removed_tokenizer_methods_are_gone_and_their_keywords_ignored():
    """What the tokenizer entries of hf_removed_apis.toml say, measured on the installed transformers:
    each method is gone from its tokenizers, each keyword is taken and ignored without a word, and
    the prefilter sees every one."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        transformers = pytest.importorskip("transformers")
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace

    from codemods.hf_removed_apis import HfRemovedApis

    table = load_table("hf_removed_apis")
    backend = Tokenizer(WordLevel({"[PAD]": 0, "[UNK]": 1, "a": 2}, unk_token="[UNK]"))
    backend.pre_tokenizer = Whitespace()
    tokenizer = transformers.PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="[PAD]", unk_token="[UNK]")
    from transformers import tokenization_python, tokenization_utils_sentencepiece

    for method in table["tokenizer_methods"]:
        for owner in (tokenizer, transformers.PreTrainedTokenizerBase, transformers.BertTokenizer,
                      tokenization_python.PythonBackend, tokenization_utils_sentencepiece.SentencePieceBackend):
            assert not hasattr(owner, method), f"{owner} still has {method}"
        assert b"." + method.encode() in HfRemovedApis.TRIGGERS  # a method: after a dot
    for keyword, entry in table["tokenizer_keywords"].items():
        assert keyword.encode() in HfRemovedApis.TRIGGERS
        assert tokenizer("a a", max_length=5, **{keyword: True})["input_ids"] == [2, 2]  # no padding, no error
        if "rename" in entry:
            assert entry["rename"] in inspect.signature(tokenizer.__call__).parameters
    for attribute, entry in table["tokenizer_attributes"].items():
        assert not hasattr(tokenizer, attribute) and hasattr(tokenizer, entry["rename"])
        assert not any(hasattr(c, attribute) for c in (tokenization_python.PythonBackend, tokenization_utils_sentencepiece.SentencePieceBackend))
        assert b"." + attribute.encode() in HfRemovedApis.TRIGGERS
    assert tokenizer("a a", max_length=5, padding="max_length")["input_ids"] == [2, 2, 0, 0, 0]
    assert tokenizer("a a a a a a", max_length=3, padding="max_length")["input_ids"] == [2] * 6  # no truncation
    assert tokenizer("a", text_target="a a")["labels"] == [2, 2]


@pytest.mark.parametrize("old", [
    "transformers.modeling_bert", "transformers.configuration_bert", "transformers.tokenization_bert",
    "transformers.tokenization_bert_fast", "transformers.modeling_gpt2", "transformers.tokenization_gpt2",
    "transformers.modeling_roberta", "transformers.tokenization_roberta_fast", "transformers.modeling_distilbert",
    "transformers.modeling_t5", "transformers.modeling_bart", "transformers.modeling_albert",
    "transformers.modeling_auto", "transformers.tokenization_auto", "transformers.configuration_auto",
    "transformers.modeling_encoder_decoder", "transformers.generation_utils",
])
def test_a_moved_transformers_module_is_gone_and_its_new_path_imports(old):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pytest.importorskip("transformers")
        from codemods.hf_removed_apis import moved_module

        with pytest.raises(ModuleNotFoundError):
            importlib.import_module(old)
        importlib.import_module(moved_module(old))


def test_the_modules_still_at_transformers_top_level_are_the_ones_kept():
    """Every modeling_/configuration_/tokenization_ module transformers 5 still has at its top level
    is in `still_flat` (so its imports are left alone), and each of those imports."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        transformers = pytest.importorskip("transformers")
        from codemods.hf_removed_apis import MOVED, moved_module

        top = Path(transformers.__file__).parent
        present = {p.stem for p in top.glob("*.py") if p.stem.split("_")[0] in MOVED["kinds"]}
        assert present <= set(MOVED["still_flat"])
        for name in MOVED["still_flat"]:
            importlib.import_module(f"transformers.{name}")
            assert moved_module(f"transformers.{name}") is None


def test_accelerator_keywords_are_gone_and_their_replacements_taken():
    accelerate = pytest.importorskip("accelerate")
    params = inspect.signature(accelerate.Accelerator.__init__).parameters
    for old, entry in load_table("hf_removed_apis")["keywords"]["accelerator"].items():
        assert old not in params, old
        assert entry.get("rename", "mixed_precision") in params
        if "DataLoaderConfiguration" in entry["follow_up"]:
            assert old in inspect.signature(accelerate.DataLoaderConfiguration).parameters
    assert params["mixed_precision"].default is None
