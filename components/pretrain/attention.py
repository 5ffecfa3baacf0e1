"""Which scaled-dot-product-attention kernel training uses, and a record of the one that ran.

PyTorch picks an SDPA backend per call from the ones enabled; with `set_priority` it takes the first eligible
one in the order given. On Hopper, cuDNN's fused attention is the fastest for training shapes, then
FlashAttention-2, then the memory-efficient kernel; the math fallback always works (and is what a CPU without
its flash kernel runs).
"""

from __future__ import annotations

from contextlib import AbstractContextManager

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

PRIORITY = [
    SDPBackend.CUDNN_ATTENTION,
    SDPBackend.FLASH_ATTENTION,
    SDPBackend.EFFICIENT_ATTENTION,
    SDPBackend.MATH,
]


def preferred_attention() -> AbstractContextManager:
    """Inside this context SDPA tries the backends in `PRIORITY` order."""
    return sdpa_kernel(PRIORITY, set_priority=True)


def attention_backend(
    n_heads: int, n_kv_heads: int, seq_len: int, head_dim: int, device: torch.device, dtype: torch.dtype
) -> str:
    """The backend `preferred_attention` selects for this shape: the first in priority order that runs a causal
    forward and backward (what a training step asks of it), e.g. "CUDNN_ATTENTION"."""
    shape = (1, n_heads, seq_len, head_dim)
    q = torch.randn(shape, device=device, dtype=dtype, requires_grad=True)
    kv = torch.randn((1, n_kv_heads, seq_len, head_dim), device=device, dtype=dtype, requires_grad=True)
    for backend in PRIORITY:
        try:
            with sdpa_kernel([backend]):
                out = F.scaled_dot_product_attention(q, kv, kv, is_causal=True, enable_gqa=n_kv_heads != n_heads)
                out.sum().backward()
        except RuntimeError:  # "No available kernel": this backend is not eligible here
            continue
        return backend.name
    return "none"
