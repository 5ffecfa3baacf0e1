"""Which weights an adaptation method trains, and the `auto` rule that picks a method and LoRA rank.

Methods (the classifier head is always new, so always trained):
- full:       every weight.
- lora:       low-rank adapters on the attention projections (components/adapt/lora.py); the backbone stays frozen.
- last-layer: the last transformer block and the final norm.
- head:       nothing in the backbone (a linear probe on frozen features).

The `auto` rule, from the task's training-set size and an optional compute budget (FLOPs for the whole
adaptation run; 0 means no budget):
1. fewer than SMALL_DATA training examples: `head`. So little data cannot move more weights without
   overfitting, and the probe is the cheapest method.
2. otherwise, estimated training cost per method (N backbone parameters, D tokens seen in the run):
   full ≈ 6·N·D, lora ≈ 4·N·D (no weight gradients for frozen weights), last-layer and head ≈ 2·N·D (no
   backward pass through the frozen part, whose cost is dominated by the forward pass).
   `full` only when the run sees at least as many tokens as the backbone has parameters (D ≥ N: enough data
   to move every weight) and its cost fits the budget; else `lora` if it fits; else `head`.
LoRA rank for `auto`: the power of two nearest to n_train / 64, clamped to [4, 16]: more data earns a larger
adapter.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from components.adapt.lora import LoraConfig, apply_lora

if TYPE_CHECKING:
    from components.pretrain.model import Transformer

METHODS = ("full", "lora", "last-layer", "head")
SMALL_DATA = 100
FLOPS_PER_PARAM_TOKEN = {"full": 6, "lora": 4, "last-layer": 2, "head": 2}


@dataclass
class MethodChoice:
    method: str
    lora_rank: int
    reason: str


def estimated_flops(method: str, backbone_params: int, tokens: int) -> float:
    return float(FLOPS_PER_PARAM_TOKEN[method] * backbone_params * tokens)


def auto_lora_rank(n_train: int) -> int:
    return int(min(16, max(4, 2 ** round(math.log2(max(n_train, 1) / 64)))))


def choose_method(n_train: int, backbone_params: int, tokens: int, budget_flops: float = 0.0) -> MethodChoice:
    """The `auto` rule (module docstring)."""
    rank = auto_lora_rank(n_train)
    if n_train < SMALL_DATA:
        return MethodChoice("head", rank, f"{n_train} training examples < {SMALL_DATA}: linear probe")

    def fits(method: str) -> bool:
        return budget_flops <= 0 or estimated_flops(method, backbone_params, tokens) <= budget_flops

    budget = f"budget {budget_flops:.2e} FLOPs" if budget_flops > 0 else "no budget"
    if tokens >= backbone_params and fits("full"):
        return MethodChoice(
            "full", rank, f"{tokens:,} tokens ≥ {backbone_params:,} parameters and full fits ({budget})"
        )
    if fits("lora"):
        return MethodChoice(
            "lora",
            rank,
            f"{tokens:,} tokens < {backbone_params:,} parameters or full over budget; lora fits ({budget})",
        )
    return MethodChoice("head", rank, f"only the linear probe fits ({budget})")


def set_trainable(backbone: Transformer, method: str, lora: LoraConfig) -> list[str]:
    """Freeze/unfreeze (and for lora, wrap) the backbone for `method`; return what was adapted, for the record."""
    if method not in METHODS:
        raise ValueError(f"unknown adaptation method {method!r}; choose one of {', '.join(METHODS)} or auto")
    if method == "full":
        backbone.requires_grad_(True)
        return ["all"]
    backbone.requires_grad_(False)
    if method == "lora":
        return apply_lora(backbone, lora)
    if method == "last-layer":
        for module in (backbone.layers[-1], backbone.norm):
            module.requires_grad_(True)
        return [f"layers.{len(backbone.layers) - 1}", "norm"]
    return []
