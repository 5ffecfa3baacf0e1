"""Warm start: the watcher passes the last model; pretraining starts from its weights when they fit, and the
parameter exists end to end (RunConfig → pipeline signature → pretrain component)."""

from __future__ import annotations

import inspect

import torch

from components.common.fingerprint import file_sha256
from components.pretrain.checkpoint import save_model
from components.pretrain.model import Transformer, model_config
from components.pretrain.train import _warm_start


def _model(vocab: int, seed: int) -> Transformer:
    torch.manual_seed(seed)
    return Transformer(model_config("tiny", vocab_size=vocab, seq_len=16))


def test_warm_start_loads_matching_weights(tmp_path):
    previous = _model(64, seed=1)
    tokenizer = tmp_path / "tokenizer.json"
    tokenizer.write_text("{}")
    save_model(previous, tmp_path / "model", tokenizer)
    fresh = _model(64, seed=2)
    loaded, parent = _warm_start(fresh, str(tmp_path / "model"))
    assert loaded == f"loaded from {tmp_path / 'model'}"
    assert parent == file_sha256(tmp_path / "model" / "model.safetensors")  # what lineage links to
    for (name, a), (_, b) in zip(previous.state_dict().items(), fresh.state_dict().items(), strict=True):
        assert torch.equal(a, b), name


def test_warm_start_skips_a_model_that_does_not_fit(tmp_path):
    tokenizer = tmp_path / "tokenizer.json"
    tokenizer.write_text("{}")
    save_model(_model(64, seed=1), tmp_path / "model", tokenizer)
    fresh = _model(80, seed=2)  # a retrained tokenizer changed the vocabulary
    before = {k: v.clone() for k, v in fresh.state_dict().items()}
    assert _warm_start(fresh, str(tmp_path / "model"))[0].startswith("skipped")
    assert all(torch.equal(before[k], v) for k, v in fresh.state_dict().items())
    assert _warm_start(fresh, "") == ("none", None)


def test_warm_start_parameter_is_wired_through_the_pipeline():
    from components.pretrain.component import pretrain_op
    from pipelines.config import RunConfig
    from pipelines.dag import greenfm_pipeline

    assert RunConfig().warm_start_model == ""
    assert "warm_start_model" in greenfm_pipeline().component_spec.inputs
    assert "warm_start_model" in pretrain_op.component_spec.inputs
    assert "init_from=warm_start_source(warm_start_model, model_store)" in inspect.getsource(pretrain_op.python_func)


def test_warm_start_from_a_model_store(tmp_path):
    from components.common.model_store import publish

    previous = _model(64, seed=1)
    tokenizer = tmp_path / "tokenizer.json"
    tokenizer.write_text("{}")
    save_model(previous, tmp_path / "model", tokenizer)
    store = tmp_path / "store"
    store.mkdir()
    fresh = _model(64, seed=2)
    assert _warm_start(fresh, str(store)) == (f"none: model store {store} is empty", None)
    publish(tmp_path / "model", store, "fp1")
    assert _warm_start(fresh, str(store))[0] == f"loaded from {store / 'fp1'}"
    assert all(
        torch.equal(a, b) for a, b in zip(previous.state_dict().values(), fresh.state_dict().values(), strict=True)
    )
