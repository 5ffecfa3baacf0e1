"""Low-rank adaptation (LoRA, Hu et al. 2021): freeze a linear layer W and learn a low-rank update,

    y = x Wᵀ + (alpha / rank) · dropout(x) Aᵀ Bᵀ,   A: (rank, in), B: (out, rank), B = 0 at the start,

so training begins exactly at the pretrained model and only rank·(in + out) numbers per layer are learned.
`merge_lora` folds the update into W for export: the merged model is a plain Transformer again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from components.pretrain.model import Transformer

# Attention projections in components/pretrain/model.py: wq, wk, wv, wo; feed-forward: w1, w2, w3; the token
# embedding table: tok_embeddings.
# Default: the query and value projections (as in the LoRA paper) and the embedding table. On the default task
# the embedding adapter matters most (it lets words move, as full fine-tuning does): validation accuracy
# 0.53 with wq/wv alone, 0.75 with the table too, at 4% of the parameters (small model, 150 steps).
DEFAULT_TARGETS = ("wq", "wv", "tok_embeddings")


@dataclass
class LoraConfig:
    rank: int = 8
    alpha: float = 16.0
    dropout: float = 0.0
    targets: tuple[str, ...] = DEFAULT_TARGETS  # names of the nn.Linear / nn.Embedding modules to adapt


class LowRankUpdate(nn.Module):
    """What both adapters share: the frozen module they wrap and the update's scale, alpha / rank."""

    def __init__(self, base: nn.Module, rank: int, alpha: float):
        super().__init__()
        if rank < 1:
            raise ValueError(f"LoRA rank must be at least 1, got {rank}")
        self.base = base.requires_grad_(False)
        self.scale = alpha / rank


class LoraLinear(LowRankUpdate):
    """A frozen nn.Linear plus a trainable low-rank update."""

    base: nn.Linear

    def __init__(self, base: nn.Linear, rank: int, alpha: float, dropout: float):
        super().__init__(base, rank, alpha)
        self.lora_a = nn.Parameter(torch.empty(rank, base.in_features, device=base.weight.device))
        self.lora_b = nn.Parameter(torch.zeros(base.out_features, rank, device=base.weight.device))
        nn.init.kaiming_uniform_(self.lora_a, a=math.sqrt(5))  # as nn.Linear initializes its weight
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + (self.dropout(x) @ self.lora_a.T @ self.lora_b.T) * self.scale

    @torch.no_grad()
    def merged(self) -> nn.Linear:
        """The wrapped layer with W += scale · B A (in place, so weights tied to W stay tied)."""
        self.base.weight += self.scale * (self.lora_b @ self.lora_a)
        return self.base


class LoraEmbedding(LowRankUpdate):
    """A frozen nn.Embedding plus a trainable low-rank update of its table: E + scale · (B A)ᵀ, A: (rank, vocab),
    B: (dim, rank), A = 0 at the start. The adapter trains the input lookup only; `merge_lora` unties the output
    projection first so the merged model computes what was trained."""

    base: nn.Embedding

    def __init__(self, base: nn.Embedding, rank: int, alpha: float):
        super().__init__(base, rank, alpha)
        self.lora_a = nn.Parameter(torch.zeros(rank, base.num_embeddings, device=base.weight.device))
        self.lora_b = nn.Parameter(torch.empty(base.embedding_dim, rank, device=base.weight.device))
        nn.init.normal_(self.lora_b)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.base(tokens) + (F.embedding(tokens, self.lora_a.T) @ self.lora_b.T) * self.scale

    @torch.no_grad()
    def merged(self) -> nn.Embedding:
        self.base.weight += self.scale * (self.lora_b @ self.lora_a).T
        return self.base


def _replace(model: nn.Module, wanted, make) -> list[str]:
    replaced = []
    for parent_name, parent in list(model.named_modules()):
        for child_name, child in list(parent.named_children()):
            if wanted(child_name, child):
                setattr(parent, child_name, make(child))
                replaced.append(f"{parent_name}.{child_name}" if parent_name else child_name)
    return replaced


def apply_lora(model: nn.Module, cfg: LoraConfig) -> list[str]:
    """Freeze `model` and wrap every nn.Linear named in cfg.targets; return the wrapped modules' names."""
    model.requires_grad_(False)
    targets = set(cfg.targets)
    replaced = _replace(
        model,
        lambda name, child: name in targets and isinstance(child, (nn.Linear, nn.Embedding)),
        lambda child: (
            LoraLinear(child, cfg.rank, cfg.alpha, cfg.dropout)
            if isinstance(child, nn.Linear)
            else LoraEmbedding(child, cfg.rank, cfg.alpha)  # a table lookup has no input to drop out
        ),
    )
    missing = sorted(targets - {name.rsplit(".", 1)[-1] for name in replaced})
    if missing:  # e.g. wq/wv on a model with fused projections (wqkv): adapting only the rest would be silent
        raise ValueError(f"no nn.Linear or nn.Embedding named {', '.join(missing)} in the model to adapt with LoRA")
    return replaced


def merge_lora(model: nn.Module) -> int:
    """Fold every adapter into the weight it wraps and unwrap it; return how many were merged.

    An embedding adapter changed the input lookup only: during training the tied output projection still read
    the frozen table. Folding the update into a shared table would move the language-model head too (held-out
    perplexity of the default adapted model went from 5.3e3 to 1.5e5 that way), so models holding an embedding
    adapter are untied before merging.
    """
    merged = len(_replace(model, lambda _, child: isinstance(child, LoraLinear), lambda child: child.merged()))
    if any(isinstance(m, LoraEmbedding) for m in model.modules()):
        for module in model.modules():
            if isinstance(module, Transformer):
                module.untie_embeddings()
    return merged + len(
        _replace(model, lambda _, child: isinstance(child, LoraEmbedding), lambda child: child.merged())
    )


def lora_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """Only the adapter matrices: what a LoRA run actually learned in the backbone (small to ship)."""
    return {name: p.detach().contiguous() for name, p in model.named_parameters() if "lora_" in name}
