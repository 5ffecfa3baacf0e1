"""A decoder-only transformer in the Llama family: RMSNorm, rotary position embeddings, SwiGLU feed-forward,
grouped-query scaled-dot-product attention, tied input/output embeddings (untied only where adaptation moved the
input table, see `untie_embeddings`). Read it top to bottom.

Speed choices, all numerically the same model: the vocabulary and the SwiGLU width are padded to tensor-core
friendly multiples; under bf16 autocast the residual stream is bf16 too (norms compute in fp32); the GPU sizes
fuse the query/key/value and the gate/up projections into one matmul each; with targets, `forward` returns only
the loss, computed chunk by chunk so the (tokens × vocabulary) logits never exist at once (`loss.py`)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from components.pretrain.loss import linear_cross_entropy


@dataclass
class ModelConfig:
    vocab_size: int = 4096  # the tokenizer's; the tables have `padded_vocab` rows
    seq_len: int = 128
    n_layers: int = 4
    n_heads: int = 4
    n_kv_heads: int = 4
    dim: int = 128
    ffn_multiple: int = 32  # SwiGLU hidden size is rounded up to a multiple of this
    rope_theta: float = 10_000.0
    norm_eps: float = 1e-5
    tie_embeddings: bool = True  # output projection shares the embedding table
    # Rows of the embedding/output tables are a multiple of this, so the largest matmul tiles evenly (ids past
    # vocab_size are never seen and learn only to be unlikely). 1 in configs saved before padding existed.
    vocab_multiple: int = 1
    fused_projections: bool = False  # one q/k/v matmul (wqkv) and one gate/up matmul (w13)

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_heads

    @property
    def padded_vocab(self) -> int:
        return self.vocab_multiple * math.ceil(self.vocab_size / self.vocab_multiple)

    @property
    def ffn_dim(self) -> int:
        hidden = int(2 * (4 * self.dim) / 3)
        return self.ffn_multiple * math.ceil(hidden / self.ffn_multiple)

    def to_dict(self) -> dict:
        return asdict(self)


VOCAB_MULTIPLE = 128  # new models' tables: tensor-core tiles divide the output matmul evenly
# Named sizes. `tiny` is for tests and the default laptop job; `gpt2-124m` is the nanoGPT benchmark shape. The
# GPU sizes round the SwiGLU width to 256 and fuse their projections; the laptop sizes keep separate q/k/v and
# gate/up layers, which the default LoRA targets (wq, wv) adapt one by one.
_GPU = dict(ffn_multiple=256, fused_projections=True)
MODEL_SIZES: dict[str, dict] = {
    "tiny": dict(n_layers=2, n_heads=2, n_kv_heads=2, dim=64),
    "small": dict(n_layers=4, n_heads=4, n_kv_heads=4, dim=128),
    "gpt2-124m": dict(n_layers=12, n_heads=12, n_kv_heads=12, dim=768, seq_len=1024, vocab_size=50304, **_GPU),
    "350m": dict(n_layers=24, n_heads=16, n_kv_heads=16, dim=1024, seq_len=2048, vocab_size=50304, **_GPU),
    "1b": dict(n_layers=16, n_heads=32, n_kv_heads=8, dim=2048, seq_len=2048, vocab_size=50304, **_GPU),
}


def model_config(size: str, **overrides) -> ModelConfig:
    if size not in MODEL_SIZES:
        raise ValueError(f"unknown model size {size!r}; choose one of {', '.join(MODEL_SIZES)}")
    return ModelConfig(**{"vocab_multiple": VOCAB_MULTIPLE, **MODEL_SIZES[size], **overrides})


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        normed = x.float() * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + self.eps)
        return (normed * self.weight).type_as(x)  # fp32 math; a bf16 residual stream stays bf16


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
        q_dim, kv_dim = cfg.n_heads * cfg.head_dim, cfg.n_kv_heads * cfg.head_dim
        if cfg.fused_projections:
            self.wqkv = nn.Linear(cfg.dim, q_dim + 2 * kv_dim, bias=False)  # rows: q, then k, then v
        else:
            self.wq = nn.Linear(cfg.dim, q_dim, bias=False)
            self.wk = nn.Linear(cfg.dim, kv_dim, bias=False)
            self.wv = nn.Linear(cfg.dim, kv_dim, bias=False)
        self.wo = nn.Linear(q_dim, cfg.dim, bias=False)

    def project(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if hasattr(self, "wqkv"):
            q_dim, kv_dim = self.n_heads * self.head_dim, self.n_kv_heads * self.head_dim
            return self.wqkv(x).split([q_dim, kv_dim, kv_dim], dim=-1)
        return self.wq(x), self.wk(x), self.wv(x)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        B, T, _ = x.shape
        q, k, v = self.project(x)
        q = q.view(B, T, self.n_heads, self.head_dim).transpose(1, 2)
        k = k.view(B, T, self.n_kv_heads, self.head_dim).transpose(1, 2)
        v = v.view(B, T, self.n_kv_heads, self.head_dim).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=self.n_kv_heads != self.n_heads)
        return self.wo(y.transpose(1, 2).reshape(B, T, -1))


class FeedForward(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        if cfg.fused_projections:
            self.w13 = nn.Linear(cfg.dim, 2 * cfg.ffn_dim, bias=False)  # rows: gate, then up
        else:
            self.w1 = nn.Linear(cfg.dim, cfg.ffn_dim, bias=False)  # gate
            self.w3 = nn.Linear(cfg.dim, cfg.ffn_dim, bias=False)  # up
        self.w2 = nn.Linear(cfg.ffn_dim, cfg.dim, bias=False)  # down

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if hasattr(self, "w13"):
            gate, up = self.w13(x).chunk(2, dim=-1)
        else:
            gate, up = self.w1(x), self.w3(x)
        return self.w2(F.silu(gate) * up)


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
        self.tok_embeddings = nn.Embedding(cfg.padded_vocab, cfg.dim)
        self.layers = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.output = nn.Linear(cfg.dim, cfg.padded_vocab, bias=False)
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
        if torch.is_autocast_enabled(x.device.type):  # the residual stream in the autocast dtype (bf16)
            x = x.to(torch.get_autocast_dtype(x.device.type))
        for layer in self.layers:
            x = layer(x, self.rope_cos, self.rope_sin)
        return self.norm(x)

    def forward(self, tokens: torch.Tensor, targets: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (B, T, padded vocabulary) without targets; with targets, only the mean next-token loss
        (ignoring targets of -100): the logits are never materialized whole (see `loss.py`)."""
        hidden = self.hidden_states(tokens)
        if targets is None:
            return self.output(hidden)
        return linear_cross_entropy(hidden, self.output.weight, targets)

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


def matmul_params(model: nn.Module) -> int:
    """Weights that multiply activations in a matmul: every nn.Linear, the output projection included even when
    it shares the embedding table (a lookup, no matmul, is not counted; nor are norm gains)."""
    return sum(m.weight.numel() for m in model.modules() if isinstance(m, nn.Linear))


def flops_per_token(model: Transformer) -> int:
    """Training FLOPs per token: 6·N + 12·L·d·T, N = `matmul_params` (2 FLOPs per weight forward, 4 backward),
    12·L·d·T for attention's scores and weighted sum over a T-token context (causal mask not discounted)."""
    cfg = model.cfg
    return 6 * matmul_params(model) + 12 * cfg.n_layers * cfg.dim * cfg.seq_len
