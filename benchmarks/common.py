"""The two reference networks and the timing helpers both benchmarks share.

The kwargs below are what the Hydra configs under training/conf/network pass to the classes.
"""

import contextlib
import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

from text_recognizer.network import ConvNext, ConvTransformer, Decoder

RESULTS = Path(__file__).parent / "results"
SPECIAL = dict(num_tokens=83, pad_index=0, start_index=1, end_index=2)

PARAGRAPH: dict[str, Any] = {
    "image": (1, 576, 640),
    "encoder": dict(
        dim=16,
        dim_mults=[1, 2, 4, 8, 32],
        depths=[2, 3, 3, 3, 6],
        downsampling=[[2, 2], [2, 2], [2, 2], [2, 1], [2, 1]],
        attn_depth=1,
        attn_heads=8,
        attn_dim_head=64,
        ff_mult=2,
    ),
    "decoder": dict(
        num_tokens=83,
        dim=512,
        depth=6,
        heads=8,
        dim_head=64,
        kv_heads=1,
        ff_mult=1,
        max_length=682,
        tie_embeddings=True,
    ),
    "network": dict(encoder_dim=512, decoder_dim=512, max_output_length=682, **SPECIAL),
}

LINES: dict[str, Any] = {
    "image": (1, 32, 640),
    "encoder": dict(
        dim=48,
        dim_mults=[1, 2, 4],
        depths=[1, 2, 2],
        downsampling=[[2, 1], [2, 1], [2, 1]],
        stem_kernel=[4, 4],
        stem_stride=[4, 4],
    ),
    "decoder": dict(
        num_tokens=83,
        dim=192,
        depth=2,
        heads=4,
        dim_head=48,
        ff_mult=2,
        max_length=82,
        tie_embeddings=True,
    ),
    "network": dict(
        encoder_dim=192, decoder_dim=192, max_output_length=82, ctc_head=True, **SPECIAL
    ),
}


def build(config: dict[str, Any]) -> ConvTransformer:
    torch.manual_seed(0)
    encoder = ConvNext(**config["encoder"])
    return ConvTransformer(encoder, Decoder(**config["decoder"]), **config["network"])


@contextlib.contextmanager
def precision(name: str) -> Iterator[None]:
    """'fp32' as is, or 'bf16' autocast (AVX-512 BF16 on this CPU)."""
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=name == "bf16"):
        yield


def best_of(fn: Callable[[], object], repeats: int) -> float:
    """Fastest of `repeats` timed calls after one warm-up: on a shared machine the minimum is
    the run least disturbed by others."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def machine() -> dict[str, Any]:
    """What was running beside the benchmark: the load average skews every figure."""
    return {"cpus": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2)}


def print_table(rows: list[dict[str, Any]]) -> None:
    columns = list(rows[0])
    cells = [[_cell(row[c]) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))


def _cell(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def write(name: str, results: dict[str, Any]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(results, indent=2) + "\n")
    return path
