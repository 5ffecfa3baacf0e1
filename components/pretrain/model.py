"""A decoder-only transformer in the Llama family: RMSNorm, rotary position embeddings, SwiGLU feed-forward,
grouped-query scaled-dot-product attention, tied input/output embeddings (untied only where adaptation moved the
input table, see `untie_embeddings`). Read it top to bottom."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class ModelConfig:
    vocab_size: int = 4096
    seq_len: int = 128
    n_layers: int = 4
    n_heads: int = 4
    n_kv_heads: int = 4
    dim: int = 128
    ffn_multiple: int = 32  # SwiGLU hidden size is rounded up to a multiple of this
    rope_theta: float = 10_000.0
    norm_eps: float = 1e-5
    tie_embeddings: bool = True  # output projection shares the embedding table

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_heads

    @property
    def ffn_dim(self) -> int:
        hidden = int(2 * (4 * self.dim) / 3)
        return self.ffn_multiple * math.ceil(hidden / self.ffn_multiple)

    def to_dict(self) -> dict:
        return asdict(self)


# Named sizes. `tiny` is for tests and the default laptop job; `gpt2-124m` is the nanoGPT benchmark shape.
MODEL_SIZES: dict[str, dict] = {
    "tiny": dict(n_layers=2, n_heads=2, n_kv_heads=2, dim=64),
    "small": dict(n_layers=4, n_heads=4, n_kv_heads=4, dim=128),
    "gpt2-124m": dict(n_layers=12, n_heads=12, n_kv_heads=12, dim=768, seq_len=1024, vocab_size=50304),
    "350m": dict(n_layers=24, n_heads=16, n_kv_heads=16, dim=1024, seq_len=2048, vocab_size=50304),
    "1b": dict(n_layers=16, n_heads=32, n_kv_heads=8, dim=2048, seq_len=2048, vocab_size=50304),
}


def model_config(size: str, **overrides) -> ModelConfig:
    if size not in MODEL_SIZES:
        raise ValueError(f"unknown model size {size!r}; choose one of {', '.join(MODEL_SIZES)}")
    return ModelConfig(**{**MODEL_SIZES[size], **overrides})


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        normed = x.float() * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + self.eps)
        return normed.type_as(x) * self.weight


def rope_tables(cfg: ModelConfig, device: torch.device | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    inv_freq = 1.0 / (cfg.rope_theta ** (torch.arange(0, cfg.head_dim, 2, device=device).float() / cfg.head_dim))
    angles = torch.outer(torch.arange(cfg.seq_len, device=device).float(), inv_freq)
    return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate pairs (x[..., :half], x[..., half:]) by position-dependent angles. x: (B, H, T, D)."""
    T = x.shape[-2]
    cos, sin = cos[:T].to(x.dtype), sin[:T].to(x.dtype)
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


class Attention(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.n_heads, self.n_kv_heads, self.head_dim = cfg.n_heads, cfg.n_kv_heads, cfg.head_dim
        self.wq = nn.Linear(cfg.dim, cfg.n_heads * cfg.head_dim, bias=False)
        self.wk = nn.Linear(cfg.dim, cfg.n_kv_heads * cfg.head_dim, bias=False)
        self.wv = nn.Linear(cfg.dim, cfg.n_kv_heads * cfg.head_dim, bias=False)
        self.wo = nn.Linear(cfg.n_heads * cfg.head_dim, cfg.dim, bias=False)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        B, T, _ = x.shape
        q = self.wq(x).view(B, T, self.n_heads, self.head_dim).transpose(1, 2)
        k = self.wk(x).view(B, T, self.n_kv_heads, self.head_dim).transpose(1, 2)
        v = self.wv(x).view(B, T, self.n_kv_heads, self.head_dim).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=self.n_kv_heads != self.n_heads)
        return self.wo(y.transpose(1, 2).reshape(B, T, -1))


class FeedForward(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.w1 = nn.Linear(cfg.dim, cfg.ffn_dim, bias=False)  # gate
        self.w3 = nn.Linear(cfg.dim, cfg.ffn_dim, bias=False)  # up
        self.w2 = nn.Linear(cfg.ffn_dim, cfg.dim, bias=False)  # down

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.attention_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.attention = Attention(cfg)
        self.ffn_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.feed_forward = FeedForward(cfg)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        x = x + self.attention(self.attention_norm(x), cos, sin)
        return x + self.feed_forward(self.ffn_norm(x))


class Transformer(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.tok_embeddings = nn.Embedding(cfg.vocab_size, cfg.dim)
        self.layers = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.output = nn.Linear(cfg.dim, cfg.vocab_size, bias=False)
        if cfg.tie_embeddings:
            self.output.weight = self.tok_embeddings.weight  # fewer parameters, no quality loss at this scale
        cos, sin = rope_tables(cfg)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)
        self.apply(self._init_weights)
        for name, param in self.named_parameters():
            if name.endswith(("wo.weight", "w2.weight")):  # residual projections scaled by depth (GPT-2)
                nn.init.normal_(param, mean=0.0, std=0.02 / math.sqrt(2 * cfg.n_layers))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def hidden_states(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.tok_embeddings(tokens)
        for layer in self.layers:
            x = layer(x, self.rope_cos, self.rope_sin)
        return self.norm(x)

    def forward(self, tokens: torch.Tensor, targets: torch.Tensor | None = None):
        logits = self.output(self.hidden_states(tokens))
        if targets is None:
            return logits
        loss = F.cross_entropy(logits.float().flatten(0, 1), targets.reshape(-1), ignore_index=-100)
        return logits, loss

    def untie_embeddings(self) -> None:
        """Give the output projection its own copy of the table, so a later change to the input embeddings
        (a LoRA adapter folded in) leaves the language-model head as it was trained."""
        if self.cfg.tie_embeddings:
            shared = self.output.weight
            self.output.weight = nn.Parameter(shared.detach().clone(), requires_grad=shared.requires_grad)
            self.cfg = replace(self.cfg, tie_embeddings=False)

    def num_params(self, exclude_embeddings: bool = False) -> int:
        total = sum(p.numel() for p in self.parameters())
        return total - self.tok_embeddings.weight.numel() if exclude_embeddings else total


def flops_per_token(model: Transformer) -> int:
    """Training FLOPs per token: 6·N + 12·L·d·T.

    N counts the weights used in matrix multiplies: every parameter but the embedding table, plus the output
    projection (a d×V matmul even when tied to that table); 12·L·d·T is attention's scores and weighted sum.
    """
    cfg = model.cfg
    tied_output = cfg.vocab_size * cfg.dim if cfg.tie_embeddings else 0  # untied, num_params counts it already
    matmul_params = model.num_params(exclude_embeddings=True) + tied_output
    return 6 * matmul_params + 12 * cfg.n_layers * cfg.dim * cfg.seq_len
