"""`trainer.precision=auto`: bf16 autocast on a GPU (fp16 where it lacks bf16), fp32 on a CPU.

On a CPU, even one with AVX-512 BF16, bf16 did not pay for the default run: its real training
steps took 1.14-1.20x longer than fp32's (Lightning, 300 steps each, alternated; see
docs/benchmarks.md). A run meets new shapes all the time (each batch's width and longest label),
and a bf16 matmul builds a kernel for each, its attention backward is slow, and autocast copies
every weight each step. On a CPU that only emulates bf16 (AVX2) it is about 10x slower still.
Where bf16 wins on a CPU (the paragraph network at its full size: 1.3x), name it:
`trainer.precision=bf16-mixed`.
"""

from __future__ import annotations

import torch


def resolve(precision: str | int, accelerator: str) -> str | int:
    """The Lightning precision for `precision`, which only `auto` changes."""
    if precision != "auto":
        return precision
    gpu = accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())
    if gpu:
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    return "32-true"
