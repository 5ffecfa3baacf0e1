"""Cross-entropy of the output projection, fused with it and computed in row chunks.

For the GPT-2 124M shape a batch of 32 × 1024 tokens has 32,768 × 50,304 logits: 3.3 GB in bf16 and twice that
in the fp32 the loss needs, written and read again by the backward pass. Here each chunk of rows computes its
logits, its share of the loss and, at once, its gradients with respect to the hidden states and the output
weight (d loss / d logits = softmax − one-hot, divided by the number of counted targets); the chunk's logits are
then dropped. Only the gradients (the size of the hidden states and of the weight) are kept for backward.
"""

from __future__ import annotations

import torch

IGNORE_INDEX = -100  # targets with this value count neither in the loss nor in its mean
CHUNK_ELEMENTS = 1 << 26  # logits per chunk on a GPU: 256 MB in fp32
# On the CPU a chunk's logits stay well under glibc's largest mmap threshold (32 MB): smaller buffers are reused
# from the heap on every chunk and step, where larger ones are mapped afresh and faulted in page by page
# (2,048 rows of a 4,096-word vocabulary in one 32 MB chunk: 94 ms a step for the loss; in 8 MB chunks: 75-79).
CPU_CHUNK_ELEMENTS = 1 << 21


def _chunked(
    hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, with_grads: bool
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """The mean loss and, when asked, its gradients with respect to the hidden rows and the weight."""
    rows = hidden.reshape(-1, hidden.shape[-1])
    flat_targets = targets.reshape(-1)
    counted = flat_targets != IGNORE_INDEX
    denominator = counted.sum().clamp(min=1).to(torch.float32)
    w = weight.to(rows.dtype)  # bf16 under autocast, where the hidden states are bf16
    grad_rows = torch.empty_like(rows) if with_grads else None
    grad_weight = torch.zeros(weight.shape, dtype=torch.float32, device=weight.device) if with_grads else None
    total = torch.zeros((), dtype=torch.float32, device=rows.device)
    chunk = max(1, (CPU_CHUNK_ELEMENTS if rows.device.type == "cpu" else CHUNK_ELEMENTS) // weight.shape[0])
    for start in range(0, rows.shape[0], chunk):
        h, t, keep = rows[start : start + chunk], flat_targets[start : start + chunk], counted[start : start + chunk]
        logits = (h @ w.T).float()
        log_norm = torch.logsumexp(logits, dim=-1)
        picked = t.clamp(min=0).unsqueeze(1)
        total += ((log_norm - logits.gather(1, picked).squeeze(1)) * keep).sum()
        if grad_rows is not None and grad_weight is not None:
            # softmax, in the logits' own memory: a fresh tensor this size is mapped and faulted in page by page
            # on every step (glibc serves allocations over 32 MB with mmap), which cost more than the exp itself
            grad_logits = logits.sub_(log_norm.unsqueeze(1)).exp_()
            grad_logits.scatter_add_(1, picked, -torch.ones_like(picked, dtype=grad_logits.dtype))
            grad_logits *= keep.unsqueeze(1) / denominator
            grad_rows[start : start + chunk] = (grad_logits.to(w.dtype) @ w).to(rows.dtype)
            grad_weight += grad_logits.T @ h.float()
    return total / denominator, grad_rows, grad_weight


class _LinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        loss, grad_rows, grad_weight = _chunked(hidden, weight, targets, with_grads=True)
        ctx.save_for_backward(grad_rows, grad_weight)
        ctx.hidden_shape, ctx.weight_dtype = hidden.shape, weight.dtype
        return loss

    @staticmethod
    def backward(ctx, grad_loss: torch.Tensor):
        grad_rows, grad_weight = ctx.saved_tensors
        grad_hidden = (grad_rows * grad_loss.to(grad_rows.dtype)).view(ctx.hidden_shape)
        return grad_hidden, (grad_weight * grad_loss).to(ctx.weight_dtype), None


def linear_cross_entropy(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean over counted targets of CE(hidden @ weightᵀ, targets); hidden (..., d), weight (V, d), targets (...).
    Without autograd (evaluation) the gradients are not computed."""
    if torch.is_grad_enabled() and (hidden.requires_grad or weight.requires_grad):
        return _LinearCrossEntropy.apply(hidden, weight, targets)
    return _chunked(hidden, weight, targets, with_grads=False)[0]
