"""Offline stand-ins: ``from_pretrained``, ``load_dataset`` and ``evaluate.load`` without a hub.

``--offline-standins`` installs these in the original's process, on the Ray driver and on every
worker, so a real-world script (``bert-base-cased`` + ``yelp_review_full`` + ``evaluate.load(
"accuracy")``) trains with no network and no GPU in seconds:

* **Models**: the family comes from the name (the longest Transformers ``model_type`` in it:
  ``distilbert-base-uncased`` is DistilBERT, ``flan-t5-base`` is T5), the head from the class
  asked (``AutoModelForSequenceClassification`` or ``BertForSequenceClassification``); the model
  is that class built from a tiny random config (2 layers, width 32), with the keyword arguments
  the script passed (``num_labels=5``...). Names that are local folders load for real.
* **Tokenizers**: a word-level fast tokenizer over a fixed 200-word vocabulary, with the special
  tokens of the family's style (``[CLS]``/``[SEP]`` encoders, ``</s>`` seq2seq, ``<|endoftext|>``
  decoders without a pad token, as GPT-2), ``model_max_length`` 64.
* **Datasets**: a ``DatasetDict`` (or the ``split`` asked) of 1000 synthetic rows per split. A
  dataset recorded in ``migrator/data/standin_datasets.toml`` (GLUE per task with ``idx``, SQuAD
  v1/v2, IMDB, Yelp, WikiText, conversational ``messages`` sets, preference pairs...) gets exactly
  its real configs, splits, columns (in order) and features, and the hub's errors for a missing
  config or split; any other gets the text, label and ``messages`` columns the script reads.
  Local files and the packaged builders (``csv``, ``json``...) load for real.
* **Metrics**: those the same file records (``accuracy``, ``f1``... and ``glue`` per task) return
  exactly their real keys, computed with numpy; any other name gives an exact-match score under
  that name.

Everything is seeded by the name asked for, never by the global random state, so the original
and the converted script see the same data. Shipped to workers by value, like ``instrument``.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path

WORDS = (
    "the a an and or but if then so very not no yes good bad great awful fine nice poor best worst "
    "food service staff place price time day night room table order wait drink meal menu taste "
    "fresh cold hot warm slow quick fast clean dirty friendly rude kind helpful loud quiet small big "
    "cheap expensive tasty bland sweet salty spicy love hate like enjoy recommend return visit again "
    "never always often sometimes really quite too much many little more less most least movie film "
    "story plot actor scene music book game team player match win lose score city car road house "
    "home work job school student teacher child family friend people man woman dog cat bird tree "
    "water sun rain snow wind cloud sky sea river mountain street shop market bank money phone "
    "computer data model train test learn fast new old young early late first last next other same "
    "different happy sad angry calm strong weak easy hard simple complex true false right wrong "
    "open close start stop go come see look hear say tell ask give take make get put keep"
).split()
STANDIN_ROWS = 1000
#: Set (unless the user set them) before a run with stand-ins imports anything of Hugging Face's:
#: huggingface_hub reads them when it is first imported.
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}
MAX_LENGTH = 64
STYLE_SPECIALS = {
    "encoder": ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"],
    "decoder": ["<|endoftext|>", "<unk>"],
    "seq2seq": ["<pad>", "</s>", "<unk>", "<s>", "<mask>"],
}
VOCAB_SIZE = max(len(s) for s in STYLE_SPECIALS.values()) + len(WORDS)
TOKEN_TYPE_FAMILIES = {"bert", "albert", "electra", "deberta", "deberta_v2", "mobilebert", "convbert", "funnel", "megatron_bert"}
LOADER_KWARGS = {
    "cache_dir", "force_download", "resume_download", "proxies", "local_files_only", "token", "use_auth_token",
    "revision", "subfolder", "trust_remote_code", "device_map", "low_cpu_mem_usage", "quantization_config",
    "torch_dtype", "dtype", "use_safetensors", "variant", "from_tf", "from_flax", "output_loading_info",
    "ignore_mismatched_sizes", "attn_implementation", "max_memory", "offload_folder", "state_dict",
    "use_fast", "mirror", "_fast_init", "weights_only", "key_mapping", "tp_plan", "gguf_file",
}
#: The datasets and metrics the stand-ins know, as the hub serves them (see the file for sources).
#: Read here, at import, so that a copy of this module shipped to a worker by value carries them.
SCHEMAS = tomllib.loads((Path(__file__).resolve().parents[1] / "data" / "standin_datasets.toml").read_text(encoding="utf-8"))
TEXT_COLUMNS = ("text", "sentence", "sentence1", "sentence2", "question", "context", "premise", "hypothesis",
                "review", "content", "document", "summary", "title", "source", "target", "prompt", "response",
                "question1", "question2", "input", "output", "instruction", "tokens")
LABEL_COLUMNS = ("label", "labels", "score", "stars", "sentiment")
SPLIT_NAMES = ("train", "validation", "test")
PACKAGED_BUILDERS = {"csv", "json", "parquet", "text", "arrow", "pandas", "imagefolder", "audiofolder", "webdataset", "sql"}


def config_from(script_source: str | None) -> dict:
    """What the stand-ins need to know about the script: the keys it reads, its label count."""
    from migrator.runtime.preflight import string_keys

    source = script_source or ""
    match = re.search(r"num_labels\s*=\s*(\d+)", source)
    return {"keys": string_keys(source), "num_labels": int(match.group(1)) if match else None}


def install(config: dict) -> None:
    """Patch the loaders (idempotent). ``config`` comes from ``config_from``."""
    import sys

    state = sys.modules.get("_migrate_runtime_state")
    done = getattr(state, "standins_installed", False) if state is not None else False
    if done:
        return
    if state is not None:
        state.standins_installed = True
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)
    _patch_transformers()
    _patch_datasets(config)
    _patch_evaluate()


def _is_local(name) -> bool:
    return not isinstance(name, str) or os.path.exists(name) or name.startswith(("/", "./", "../"))


# -- transformers ---------------------------------------------------------------------------------
def _families():
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES

    return list(CONFIG_MAPPING_NAMES)


def family_of(name: str, candidates=None) -> str | None:
    """The longest model type that occurs in ``name`` as a word (``distilbert`` before ``bert``)."""
    text = name.lower().split("/")[-1].replace("_", "-")
    best = None
    for model_type in candidates if candidates is not None else _families():
        pattern = r"(?<![a-z0-9])" + re.escape(model_type.replace("_", "-")) + r"(?![a-z])"
        if re.search(pattern, text) and (best is None or len(model_type) > len(best)):
            best = model_type
    return best


def _style(family: str) -> str:
    from transformers.models.auto import modeling_auto

    if family in modeling_auto.MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES:
        return "seq2seq"
    if family in modeling_auto.MODEL_FOR_CAUSAL_LM_MAPPING_NAMES and family not in modeling_auto.MODEL_FOR_MASKED_LM_MAPPING_NAMES:
        return "decoder"
    return "encoder"


def tiny_config(family: str, **overrides):
    from transformers import AutoConfig

    style = _style(family)
    specials = STYLE_SPECIALS[style]
    ids = {token: i for i, token in enumerate(specials)}
    sizes = dict(
        vocab_size=VOCAB_SIZE, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
        intermediate_size=64, max_position_embeddings=2 * MAX_LENGTH, n_positions=2 * MAX_LENGTH,
        d_model=32, d_ff=64, d_kv=16, num_layers=2, num_decoder_layers=2, num_heads=2, n_inner=64,
        encoder_layers=2, decoder_layers=2, encoder_attention_heads=2, decoder_attention_heads=2,
        encoder_ffn_dim=64, decoder_ffn_dim=64, dim=32, hidden_dim=64, n_layers=2, n_heads=2,
        head_dim=16, embedding_size=32,
    )
    if style == "encoder":
        sizes.update(pad_token_id=ids["[PAD]"], type_vocab_size=2 if family in TOKEN_TYPE_FAMILIES else 1)
    elif style == "decoder":
        sizes.update(bos_token_id=0, eos_token_id=0, pad_token_id=None)
    else:
        sizes.update(pad_token_id=0, eos_token_id=1, bos_token_id=3, decoder_start_token_id=0)
    config = AutoConfig.for_model(family, **sizes)
    for key, value in overrides.items():
        setattr(config, key, value)
    return config


def tiny_tokenizer(name: str, family: str, **kwargs):
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    style = _style(family)
    specials = STYLE_SPECIALS[style]
    vocab = {token: i for i, token in enumerate(specials)}
    for word in WORDS:
        vocab.setdefault(word, len(vocab))
    unk = "[UNK]" if style == "encoder" else "<unk>"
    backend = Tokenizer(models.WordLevel(vocab, unk_token=unk))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    options = {"unk_token": unk, "model_max_length": kwargs.get("model_max_length", MAX_LENGTH), "name_or_path": name}
    if style == "encoder":
        backend.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
            special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
        )
        options.update(pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")
        names = ["input_ids", "token_type_ids", "attention_mask"] if family in TOKEN_TYPE_FAMILIES else ["input_ids", "attention_mask"]
    elif style == "seq2seq":
        backend.post_processor = processors.TemplateProcessing(
            single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", vocab["</s>"])]
        )
        options.update(pad_token="<pad>", eos_token="</s>", bos_token="<s>", mask_token="<mask>")
        names = ["input_ids", "attention_mask"]
    else:
        options.update(eos_token="<|endoftext|>", bos_token="<|endoftext|>")
        names = ["input_ids", "attention_mask"]
    for key in ("padding_side", "truncation_side"):
        if key in kwargs:
            options[key] = kwargs[key]
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, **options)
    tokenizer.model_input_names = names
    return tokenizer


def _family_for(name: str, model_class=None, auto_class=None) -> str:
    config_class = getattr(model_class, "config_class", None)
    if model_class is not None and getattr(config_class, "model_type", None):
        return config_class.model_type
    mapping = getattr(auto_class, "_model_mapping", None)
    family = family_of(name)
    if family is not None and mapping is not None:
        from transformers import AutoConfig

        try:
            if type(AutoConfig.for_model(family)) not in mapping:
                family = None
        except Exception:
            family = None
    if family is None:
        kind = getattr(auto_class, "__name__", "")
        family = "t5" if "Seq2Seq" in kind else "gpt2" if "CausalLM" in kind else "bert"
    return family


def _split_kwargs(kwargs: dict) -> tuple[dict, object]:
    config = kwargs.pop("config", None)
    dtype = kwargs.get("torch_dtype", kwargs.get("dtype"))
    overrides = {k: v for k, v in kwargs.items() if k not in LOADER_KWARGS and not k.startswith("_")}
    return overrides, (config, dtype)


def _build_model(cls, name, auto: bool, kwargs: dict):
    overrides, (config, dtype) = _split_kwargs(dict(kwargs))
    family = _family_for(name, None if auto else cls, cls if auto else None)
    if config is None or isinstance(config, str):
        config = tiny_config(family, **overrides)
    else:
        for key, value in overrides.items():
            setattr(config, key, value)
    model = cls.from_config(config) if auto else cls(config)
    if dtype is not None and not isinstance(dtype, str):
        model = model.to(dtype)
    model.name_or_path = name
    model.config._name_or_path = name
    return model


def _patch_transformers() -> None:
    try:
        import transformers
        from transformers import PreTrainedModel
        from transformers.models.auto import modeling_auto
        from transformers.models.auto.auto_factory import _BaseAutoModelClass
    except ImportError:
        return

    def patch_classmethod(cls, replacement) -> None:
        original = cls.__dict__["from_pretrained"].__func__

        def from_pretrained(klass, name, *args, **kwargs):
            if _is_local(name):
                return original(klass, name, *args, **kwargs)
            return replacement(klass, name, **kwargs)

        cls.from_pretrained = classmethod(from_pretrained)

    for value in list(vars(modeling_auto).values()):
        if isinstance(value, type) and issubclass(value, _BaseAutoModelClass) and "from_pretrained" in value.__dict__:
            patch_classmethod(value, lambda klass, name, **kw: _build_model(klass, name, True, kw))
    patch_classmethod(PreTrainedModel, lambda klass, name, **kw: _build_model(klass, name, False, kw))

    def tokenizer_for(klass, name, **kwargs):
        family = getattr(getattr(klass, "config_class", None), "model_type", None) or family_of(name) or "bert"
        return tiny_tokenizer(name, family, **kwargs)

    patch_classmethod(transformers.AutoTokenizer, tokenizer_for)
    patch_classmethod(transformers.PreTrainedTokenizerBase, tokenizer_for)

    def config_for(klass, name, **kwargs):
        overrides, _ = _split_kwargs(dict(kwargs))
        family = getattr(klass, "model_type", "") or family_of(name) or "bert"
        return tiny_config(family, **overrides)

    patch_classmethod(transformers.AutoConfig, config_for)
    base_config = getattr(transformers, "PreTrainedConfig", None) or transformers.PretrainedConfig
    if "from_pretrained" in base_config.__dict__:
        patch_classmethod(base_config, config_for)


# -- datasets -------------------------------------------------------------------------------------
def known_dataset(path: str) -> dict | None:
    """The entry of ``standin_datasets.toml`` whose ``paths`` name ``path`` (hub ids are matched
    case-insensitively, as the hub resolves them), or None."""
    wanted = path.strip("/").lower()
    for entry in SCHEMAS["datasets"].values():
        if wanted in (p.lower() for p in entry["paths"]):
            return entry
    return None


def dataset_schema(path: str, name: str | None, config: dict) -> dict:
    """``{"splits", "features", "unlabeled", "style", "config"}`` for ``load_dataset(path, name)``.

    A known dataset gets its real schema, and the errors the hub gives for a missing or unknown
    config; any other gets the text, label and ``messages`` columns the script reads.
    """
    entry = known_dataset(path)
    if entry is not None:
        configs = entry["configs"]
        if name is None:
            name = entry.get("default") or (next(iter(configs)) if len(configs) == 1 else None)
            if name is None:
                raise ValueError(f"Config name is missing.\nPlease pick one among the available configs: {list(configs)}"
                                 f"\nExample of usage:\n\t`load_dataset('{path}', '{next(iter(configs))}')`")
        if name not in configs:
            raise ValueError(f"BuilderConfig '{name}' not found. Available: {list(configs)}")
        chosen = configs[name]
        return {"splits": tuple(chosen["splits"]), "features": dict(chosen["features"]),
                "unlabeled": tuple(chosen.get("unlabeled", ())), "style": entry.get("style"), "config": name, "known": True}
    keys = config.get("keys") or []
    splits = tuple(k for k in keys if k in SPLIT_NAMES or k.startswith(("validation", "test"))) or SPLIT_NAMES
    classes = config.get("num_labels") or 2
    features: dict = {k: "string" for k in keys if k in TEXT_COLUMNS}
    features.update({k: "messages" for k in keys if k == "messages"})
    features.update({k: {"class_label": [str(i) for i in range(classes)]} for k in keys if k in LABEL_COLUMNS})
    if not any(v in ("string", "messages") for v in features.values()):
        features = {"text": "string", **features}
    if "train" not in splits:
        splits = ("train", *splits)
    return {"splits": splits, "features": features, "unlabeled": (), "style": None, "config": name, "known": False}


def datasets_feature(spec):
    """The ``datasets`` feature for one column spec of ``standin_datasets.toml``."""
    from datasets import ClassLabel, Sequence, Value

    if isinstance(spec, dict):
        return ClassLabel(names=list(spec["class_label"]))
    if spec == "messages":
        return [{"content": Value("string"), "role": Value("string")}]
    if spec == "squad_answers":
        return Sequence({"text": Value("string"), "answer_start": Value("int32")})
    return Value(spec)


def _sentence(rng, low: int = 8, high: int = 24) -> str:
    return " ".join(rng.choices(WORDS, k=rng.randint(low, high)))


def _row(rng, schema: dict, split: str, index: int) -> dict:
    """One synthetic row. Labels are learnable: the first word of the first text decides them."""
    features, style = schema["features"], schema["style"]
    unlabeled = split in schema["unlabeled"]
    row: dict = {}
    cue = None
    for column, spec in features.items():
        if isinstance(spec, dict):
            row[column] = -1 if unlabeled else rng.randrange(len(spec["class_label"]))
            cue = cue if cue is not None else max(row[column], 0)
        elif column == "label" and spec.startswith("float"):  # a regression label (GLUE STS-B: 0-5)
            row[column] = -1.0 if unlabeled else round(rng.uniform(0, 5), 1)
            cue = cue if cue is not None else int(max(row[column], 0))
    if style == "wikitext":
        return {"text": _wikitext_line(rng, index, "raw" not in (schema["config"] or ""))}
    if style in ("squad", "squad_v2"):
        return _squad_row(rng, style, split, index)
    if style == "conversation" or style == "preference":
        return _conversation_row(rng, features, style)
    if style == "transcript":
        question, good, bad = _sentence(rng, 4, 10), _sentence(rng, 6, 16), _sentence(rng, 6, 16)
        return {"chosen": f"\n\nHuman: {question}\n\nAssistant: good {good}",
                "rejected": f"\n\nHuman: {question}\n\nAssistant: bad {bad}"}
    first_text = True
    for column, spec in features.items():
        if column in row:
            continue
        if spec == "string":
            text = _sentence(rng)
            if first_text and cue is not None:
                text = f"{WORDS[cue + 10]} {text}"
            first_text = False
            row[column] = text
        elif spec == "messages":
            row[column] = _conversation(rng)
        elif column == "idx":
            row[column] = index
        elif spec.startswith("int"):
            row[column] = rng.randrange(100)
        else:
            row[column] = rng.random()
    return row


def _wikitext_line(rng, index: int, unk: bool) -> str:
    # WikiText is one line per row: blank lines, " = Heading = " lines, and paragraphs.
    kind = index % 8
    if kind in (0, 2):
        return ""
    if kind == 1:
        return f" = {' '.join(rng.choices(WORDS, k=rng.randint(1, 3))).title()} = \n"
    words = rng.choices(WORDS, k=rng.randint(20, 60))
    if unk:
        words = [w if rng.random() > 0.05 else "<unk>" for w in words]
    return " " + " ".join(words) + " \n"


def _squad_row(rng, style: str, split: str, index: int) -> dict:
    words = rng.choices(WORDS, k=rng.randint(20, 40))
    context = " ".join(words)
    start = rng.randrange(len(words) - 3)
    span = rng.randint(1, 3)
    text = " ".join(words[start:start + span])
    offset = len(" ".join(words[:start])) + (1 if start else 0)
    copies = rng.randint(1, 3) if split != "train" else 1
    answers = {"text": [text] * copies, "answer_start": [offset] * copies}
    if style == "squad_v2" and rng.random() < 1 / 3:
        answers = {"text": [], "answer_start": []}
    return {"id": f"{rng.getrandbits(96):024x}", "title": "_".join(rng.choices(WORDS, k=2)).title(), "context": context,
            "question": f"{_sentence(rng, 4, 10)}?", "answers": answers}


def _conversation(rng, first: str | None = None) -> list:
    turns = rng.choice((2, 2, 4))
    messages = []
    for turn in range(turns):
        role = "user" if turn % 2 == 0 else "assistant"
        content = first if turn == 0 and first is not None else _sentence(rng, 4, 16)
        messages.append({"content": content, "role": role})
    return messages


def _conversation_row(rng, features: dict, style: str) -> dict:
    import hashlib

    prompt = _sentence(rng, 4, 12)
    row: dict = {}
    for column, spec in features.items():
        if column == "prompt":
            row[column] = prompt
        elif column == "prompt_id":
            row[column] = hashlib.sha256(prompt.encode()).hexdigest()
        elif column in ("chosen", "rejected"):
            word = "good" if column == "chosen" else "bad"
            row[column] = [{"content": prompt, "role": "user"}, {"content": f"{word} {_sentence(rng, 4, 16)}", "role": "assistant"}]
        elif column == "messages":
            row[column] = list(row["chosen"]) if style == "preference" else _conversation(rng, prompt)
        elif column == "num_turns":
            row[column] = len(row["messages"])
        elif column == "score_chosen":
            row[column] = float(rng.randint(6, 10))
        elif column == "score_rejected":
            row[column] = float(rng.randint(1, 5))
        elif spec == "string":
            row[column] = rng.choice(("General-Instruct", "Know-Logic", "Airoboros", "Dove"))
        else:
            row[column] = rng.randrange(100)
    return row


def synthetic_split(path: str, split: str, schema: dict, rows: int = STANDIN_ROWS):
    import random

    from datasets import Dataset, Features

    rng = random.Random(f"{path}/{schema.get('config') or ''}/{split}")
    built = [_row(rng, schema, split, i) for i in range(rows)]
    columns = list(schema["features"])
    features = Features({column: datasets_feature(spec) for column, spec in schema["features"].items()})
    return Dataset.from_dict({c: [r[c] for r in built] for c in columns}, features=features)


def _patch_datasets(config: dict) -> None:
    try:
        import datasets
    except ImportError:
        return
    original = datasets.load_dataset

    def load_dataset(path, name=None, *args, split=None, streaming=False, **kwargs):
        if _is_local(path) or path in PACKAGED_BUILDERS or kwargs.get("data_files") or kwargs.get("data_dir"):
            return original(path, name, *args, split=split, streaming=streaming, **kwargs)
        schema = dataset_schema(path, name, config)

        def one(spec: str):
            match = re.match(r"^\s*([A-Za-z_]+)\s*(?:\[(.*)\])?\s*$", spec)
            base, window = (match.group(1), match.group(2)) if match else (spec, None)
            if schema["known"] and base not in schema["splits"]:
                raise ValueError(f'Unknown split "{base}". Should be one of {list(schema["splits"])}.')
            ds = synthetic_split(path, base, schema)
            if window:
                lo, _, hi = window.partition(":")
                def bound(text, default):
                    text = text.strip()
                    if not text:
                        return default
                    return int(float(text[:-1]) / 100 * len(ds)) if text.endswith("%") else int(text)
                ds = ds.select(range(bound(lo, 0), min(bound(hi, len(ds)), len(ds))))
            return ds.to_iterable_dataset() if streaming else ds

        if split is None:
            result = {s: one(s) for s in schema["splits"]}
            return datasets.IterableDatasetDict(result) if streaming else datasets.DatasetDict(result)
        if isinstance(split, (list, tuple)):
            return [one(s) for s in split]
        return one(str(split))

    datasets.load_dataset = load_dataset


# -- evaluate -------------------------------------------------------------------------------------
class StandinMetric:
    """``evaluate.load(name)`` without the hub: the same ``compute``/``add_batch``/``add``."""

    def __init__(self, name: str, config_name: str | None = None) -> None:
        self.name = name
        self.config_name = config_name
        self._predictions: list = []
        self._references: list = []

    def add_batch(self, *, predictions=None, references=None, **kwargs) -> None:
        self._predictions.extend(list(predictions if predictions is not None else []))
        self._references.extend(list(references if references is not None else []))

    def add(self, *, prediction=None, reference=None, **kwargs) -> None:
        self._predictions.append(prediction)
        self._references.append(reference)

    def compute(self, *, predictions=None, references=None, **kwargs) -> dict:
        import numpy as np

        if predictions is None:
            predictions, references = self._predictions, self._references
            self._predictions, self._references = [], []
        p, r = np.asarray(predictions), np.asarray(references)
        name = self.name.split("/")[-1]
        known = SCHEMAS["metrics"].get(name)
        if known is None:  # a metric the stand-ins do not know: an exact-match score under its name
            return {name: float(np.mean(p == r)) if p.size and p.shape == r.shape else 0.0}
        if "configs" in known:
            if self.config_name not in known["configs"]:
                raise KeyError(f"You should supply a configuration name selected in {list(known['configs'])}")
            keys = known["configs"][self.config_name]
        else:
            keys = known["keys"]
        scores = _scores(p, r, kwargs.get("average", "binary"), kwargs.get("pos_label", 1))
        return {key: scores[key] for key in keys}


def _scores(p, r, average: str, pos_label) -> dict:
    import numpy as np

    out = {"accuracy": float(np.mean(p == r)) if p.size else 0.0}
    out["exact_match"] = out["accuracy"]
    if p.dtype.kind == "f" or r.dtype.kind == "f":
        diff = p.astype(float) - r.astype(float)
        out.update(mse=float(np.mean(diff**2)) if p.size else 0.0, mae=float(np.mean(np.abs(diff))) if p.size else 0.0)
        out.update(pearson=_pearson(p.astype(float), r.astype(float)),
                   spearmanr=_pearson(_ranks(p.astype(float)), _ranks(r.astype(float))))
        return out
    out.update(_classification_scores(p, r, average, pos_label))
    out.update(mse=float(np.mean((p - r) ** 2)) if p.size else 0.0, mae=float(np.mean(np.abs(p - r))) if p.size else 0.0)
    return out


def _pearson(a, b) -> float:
    import numpy as np

    if a.size < 2 or a.std() == 0 or b.std() == 0:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def _ranks(values):
    """Average ranks (ties share theirs), as scipy.stats.rankdata."""
    import numpy as np

    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values), dtype=float)
    ranks[order] = np.arange(1, len(values) + 1)
    for value in np.unique(values):
        tied = values == value
        ranks[tied] = ranks[tied].mean()
    return ranks


def _classification_scores(p, r, average: str, pos_label) -> dict:
    import numpy as np

    labels = sorted(set(r.tolist()) | set(p.tolist())) or [pos_label]
    def prf(label):
        tp = float(np.sum((p == label) & (r == label)))
        fp = float(np.sum((p == label) & (r != label)))
        fn = float(np.sum((p != label) & (r == label)))
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return precision, recall, f1, float(np.sum(r == label))
    if average == "binary":
        precision, recall, f1, _ = prf(pos_label)
    else:
        per = [prf(label) for label in labels]
        if average == "micro":
            precision = recall = f1 = float(np.mean(p == r)) if p.size else 0.0
        else:
            weights = [w for *_, w in per] if average == "weighted" else [1.0] * len(per)
            total = sum(weights) or 1.0
            precision, recall, f1 = (sum(x[i] * w for x, w in zip(per, weights)) / total for i in range(3))
    mcc = 0.0
    if len(labels) == 2:
        a, b = labels
        tp = float(np.sum((p == b) & (r == b))); tn = float(np.sum((p == a) & (r == a)))
        fp = float(np.sum((p == b) & (r == a))); fn = float(np.sum((p == a) & (r == b)))
        denom = ((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)) ** 0.5
        mcc = (tp * tn - fp * fn) / denom if denom else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "matthews_correlation": mcc}


def _patch_evaluate() -> None:
    try:
        import evaluate
    except ImportError:
        return
    original = evaluate.load

    def load(path, config_name=None, *args, **kwargs):
        if _is_local(path):
            return original(path, config_name, *args, **kwargs)
        return StandinMetric(path, config_name)

    evaluate.load = load
