"""`trainer.precision=auto`: bf16 autocast where the hardware computes bf16 itself, else fp32.

bf16 roughly halves a training step on CPUs with AVX-512 BF16 or AMX and on recent GPUs, but
where a CPU only emulates it (AVX2) the same step is about 10x slower, so it cannot be a fixed
default.
"""

from __future__ import annotations

import torch


def native_bf16_cpu() -> bool:
    """Whether this CPU has bf16 instructions (AVX-512 BF16 or AMX)."""
    return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


def resolve(precision: str | int, accelerator: str) -> str | int:
    """The Lightning precision for `precision`, which only `auto` changes."""
    if precision != "auto":
        return precision
    gpu = accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())
    if gpu:
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    return "bf16-mixed" if native_bf16_cpu() else "32-true"
