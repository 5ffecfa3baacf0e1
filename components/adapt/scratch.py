"""The from-scratch arm: the same adaptation applied to a randomly initialized model of the pretrained model's
size, so the evaluation can show what pretraining bought (accuracy) and what it cost (energy). Only the
initialization differs: the model config, tokenizer, method, steps, batch, learning rate and seed are the
adapted model's."""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path

import torch

from components.adapt.finetune import AdaptConfig, AdaptResult, adapt
from components.adapt.task import TaskData
from components.carbon.records import EnergyRecord
from components.carbon.tracking import Location, measure
from components.common.contracts import MODEL_TOKENIZER as TOKENIZER
from components.pretrain.checkpoint import load_model, save_model
from components.pretrain.model import Transformer

RANDOM_INIT = "random"  # `init` of a model written by random_init_like


def random_init_like(base_model_dir: str | Path, out_dir: str | Path, seed: int) -> Path:
    """A model directory with the base model's config and tokenizer and freshly initialized (seeded) weights."""
    config = load_model(base_model_dir).cfg
    torch.manual_seed(seed)
    save_model(Transformer(config), out_dir, Path(base_model_dir) / TOKENIZER, {"init": RANDOM_INIT, "init_seed": seed})
    return Path(out_dir)


def adapt_from_scratch(
    base_model_dir: str | Path, out_dir: str | Path, cfg: AdaptConfig, location: Location, task: TaskData | None = None
) -> tuple[AdaptResult, EnergyRecord]:
    """Initialize randomly (like the base model), adapt with `cfg` (no warm start) under the energy tracker;
    return the result and the energy record of stage `adapt-from-scratch`."""

    def work() -> AdaptResult:
        with tempfile.TemporaryDirectory(prefix="greenfm-random-init-") as scratch_base:
            random_init_like(base_model_dir, scratch_base, cfg.seed)
            return adapt(scratch_base, out_dir, replace(cfg, init_from=""), task)

    return measure("adapt-from-scratch", location, work)
