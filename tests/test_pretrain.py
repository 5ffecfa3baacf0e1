"""Pretraining: the model learns, reruns are bit-identical on CPU, the schedule warms up then decays."""

import math
from pathlib import Path

import torch

from components.curate.job import TOKENS_DIR
from components.pretrain.checkpoint import load_model
from components.pretrain.model import Transformer, model_config
from components.pretrain.train import TrainConfig, lr_at, train


def test_loss_falls(pretrained):
    history = pretrained.report["history"]
    # From uniform guessing (ln 512 = 6.24 nats) to well below it in 40 steps, and still falling at the end.
    assert history[-1]["loss"] < math.log(512) - 1.0
    assert history[-1]["loss"] < history[0]["loss"] - 0.25
    assert pretrained.val_loss < math.log(512)  # better than uniform over the vocabulary


def test_rerun_is_bit_identical(pretrained, curated, tmp_path):
    config = TrainConfig(**pretrained.report["config"])
    again = train(Path(curated.output_dir) / TOKENS_DIR, tmp_path / "again", config)
    assert again.checkpoint_sha256 == pretrained.checkpoint_sha256
    assert again.val_loss == pretrained.val_loss


def test_saved_model_reloads_with_same_logits(pretrained):
    model = load_model(pretrained.model_dir).eval()
    tokens = torch.randint(0, model.cfg.vocab_size, (2, 16), generator=torch.Generator().manual_seed(0))
    again = load_model(pretrained.model_dir).eval()
    with torch.no_grad():
        assert torch.equal(model(tokens), again(tokens))
    assert model.output.weight.data_ptr() == model.tok_embeddings.weight.data_ptr()  # still tied


def test_causal_attention_ignores_future_tokens():
    model = Transformer(model_config("tiny", vocab_size=64, seq_len=16)).eval()
    tokens = torch.randint(0, 64, (1, 16), generator=torch.Generator().manual_seed(1))
    changed = tokens.clone()
    changed[0, 10:] = (changed[0, 10:] + 1) % 64
    with torch.no_grad():
        assert torch.allclose(model(tokens)[0, :10], model(changed)[0, :10], atol=1e-6)


def test_schedule_warms_up_then_decays_to_floor():
    cfg = TrainConfig(steps=100, warmup_steps=10, lr=1.0, min_lr_ratio=0.1)
    assert lr_at(0, cfg) == 0.1 and lr_at(9, cfg) == 1.0
    assert lr_at(55, cfg) < lr_at(20, cfg)
    assert abs(lr_at(100, cfg) - 0.1) < 1e-9
