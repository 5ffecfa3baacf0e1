"""Model FLOPs utilization: achieved model FLOPs per second over the GPU's dense bf16 peak.

MFU = tokens/s × FLOPs per token / (peak per GPU × GPUs), with FLOPs per token = 6·N_matmul + 12·L·d·T
(`model.flops_per_token`): 6·N for the forward and backward matmuls of every weight, 12·L·d·T for attention
scores and the weighted sum over a T-token context (counted without the causal mask's saving, as nanoGPT,
PaLM and torchtitan do). Recomputation is not counted: this is MFU, not hardware FLOPs utilization.
"""

from __future__ import annotations

import torch

# Dense (no sparsity) bf16 tensor-core peak, FLOP/s, from the vendors' data sheets. First match wins, so
# more specific names come first. Unknown GPUs report no MFU rather than a guessed one.
PEAK_BF16_FLOPS: list[tuple[str, float]] = [
    ("GB200", 2500e12),
    ("B200", 2250e12),
    ("H100 PCIe", 756e12),
    ("H100 NVL", 835e12),
    ("H100", 989e12),  # SXM
    ("GH200", 989e12),
    ("H200", 989e12),
    ("H20", 148e12),
    ("A100", 312e12),
    ("A800", 312e12),
    ("L40S", 362e12),
    ("L40", 181e12),
    ("L4", 121e12),
    ("A10G", 70e12),
    ("A10", 125e12),
    ("RTX 4090", 165e12),
    ("V100", 125e12),  # fp16: V100 has no bf16
]


def peak_flops_for(name: str) -> float | None:
    return next((peak for key, peak in PEAK_BF16_FLOPS if key in name), None)


def peak_flops(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    return peak_flops_for(torch.cuda.get_device_name(device))


def mfu(tokens_per_second: float, flops_per_token: float, peak: float | None, devices: int) -> float | None:
    if peak is None:
        return None
    return tokens_per_second * flops_per_token / (peak * devices)
