"""`trainer.precision=auto`: bf16 autocast on a GPU (fp16 where it lacks bf16), fp32 on a CPU.

On a CPU, even one with AVX-512 BF16, bf16 did not pay for the default run: its real training
steps took 1.14-1.59x as long as fp32's (ten pairs of runs, alternated; see docs/benchmarks.md).
Its matmuls are faster, but its attention backward is 5x slower and autocast copies every
weight each step; why a real run loses more than the same steps in a loop is not settled. On a
CPU that only emulates bf16 (AVX2) it is about 10x slower still.
Where bf16 wins on a CPU (the paragraph network at its full size: 1.2-1.5x), name it:
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
