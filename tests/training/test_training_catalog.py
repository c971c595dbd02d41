"""Base-model catalog: pinned digests, tampering refused, offline default."""

from __future__ import annotations

import pytest

from privet.training.catalog import (
    CATALOG,
    DEFAULT_BASE_MODEL,
    BaseModelSpec,
    Catalog,
    CatalogError,
    load_base_model,
    verify,
)


def test_tampered_weights_are_refused(tampered_spec: BaseModelSpec) -> None:
    catalog = Catalog()
    catalog.register(tampered_spec)
    load_base_model("tampered", num_labels=2, catalog=catalog)  # intact: loads
    weights = tampered_spec.path / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0x01  # flip one bit in the last tensor
    weights.write_bytes(bytes(data))
    with pytest.raises(CatalogError, match="does not match its pinned SHA-256"):
        load_base_model("tampered", num_labels=2, catalog=catalog)


def test_tampered_vocabulary_is_refused(tampered_spec: BaseModelSpec) -> None:
    catalog = Catalog()
    catalog.register(tampered_spec)
    vocab = tampered_spec.path / "tokenizer.json"
    vocab.write_text(vocab.read_text().replace('"good"', '"g00d"'))
    with pytest.raises(CatalogError, match=r"tokenizer\.json"):
        load_base_model("tampered", num_labels=2, catalog=catalog)


def test_unknown_model_is_refused(tiny_catalog: Catalog) -> None:
    with pytest.raises(CatalogError, match="not in the catalog"):
        load_base_model("gpt-whatever", num_labels=2, catalog=tiny_catalog)


def test_tiny_model_loads_in_training_mode(tiny_catalog: Catalog) -> None:
    loaded = load_base_model("tiny", num_labels=3, catalog=tiny_catalog)
    assert loaded.model.training
    assert loaded.model.config.num_labels == 3


def test_default_is_minilm_and_its_files_match_their_pins() -> None:
    assert DEFAULT_BASE_MODEL in CATALOG.names()
    verify(CATALOG.get(DEFAULT_BASE_MODEL))  # reads ~90 MB; well under a second
    assert CATALOG.get(DEFAULT_BASE_MODEL).pooling == "mean"  # a sentence-embedding model


def test_registration_requires_pins(tiny_spec: BaseModelSpec) -> None:
    catalog = Catalog()
    with pytest.raises(CatalogError):
        catalog.register(BaseModelSpec(name="x", path=tiny_spec.path, digests={}))
