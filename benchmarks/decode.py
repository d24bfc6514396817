"""Greedy decoding speed: the kv cache against recomputing the prefix, side by side.

Paragraph: batch 1, a 576 x 640 page, all 682 tokens forced (stop_at_end=False), per thread
count and precision; the uncached reference runs once, in the fastest setting. Then the same
cached decoding through the exported encoder and step on onnxruntime (`text-recognizer export`),
with the end token suppressed so it also decodes all 682. Line: batch 1.
"""

import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from benchmarks.common import (
    LINES,
    PARAGRAPH,
    best_of,
    build,
    machine,
    precision,
    print_table,
    write,
)
from benchmarks.predict import KINDS, recognizers
from text_recognizer.decode import greedy_decode, greedy_decode_reference
from text_recognizer.network import ConvTransformer


def _seconds(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def measure(network: ConvTransformer, images: torch.Tensor, repeats: int) -> dict[str, float]:
    """Encode alone, and encode + cached decode (which `greedy_decode` is) of every token."""
    with torch.inference_mode():
        encode_s = best_of(lambda: network.encode(images), 3)
    end_to_end_s = best_of(lambda: greedy_decode(network, images, stop_at_end=False), repeats)
    return {
        "encode_s": encode_s,
        "cached_decode_s": end_to_end_s - encode_s,
        "end_to_end_s": end_to_end_s,
    }


def onnx_end_to_end_s(page: torch.Tensor, tokens: int) -> float:
    """Encode + cached decode of `tokens` tokens with the exported files on onnxruntime."""
    with tempfile.TemporaryDirectory() as folder:
        exported = recognizers(KINDS["paragraphs"], tokens, Path(folder))["onnx"]
        return best_of(lambda: exported.decode(page), 2)


def main() -> None:
    paragraph = build(PARAGRAPH).eval()
    line = build(LINES).eval()
    page = torch.randn(1, *PARAGRAPH["image"])
    text_line = torch.randn(1, *LINES["image"])
    rows: list[dict[str, Any]] = []
    for threads in (1, 2):
        torch.set_num_threads(threads)
        for name in ("fp32", "bf16"):
            with precision(name):
                row = {"threads": threads, "precision": name, **measure(paragraph, page, 2)}
                row["line_end_to_end_s"] = best_of(
                    lambda: greedy_decode(line, text_line, stop_at_end=False), 5
                )
            rows.append(row)
    best = min(rows, key=lambda r: r["end_to_end_s"])
    best_line = min(rows, key=lambda r: r["line_end_to_end_s"])
    torch.set_num_threads(best["threads"])
    with precision(best["precision"]):
        greedy_decode_reference(paragraph, page, max_length=8, stop_at_end=False)
        uncached_s = _seconds(lambda: greedy_decode_reference(paragraph, page, stop_at_end=False))
    uncached_decode_s = uncached_s - best["encode_s"]
    print_table(rows)
    tokens = paragraph.max_output_length
    onnx_s = onnx_end_to_end_s(page, tokens)
    speedup = uncached_decode_s / best["cached_decode_s"]
    results = {
        "paragraph": {
            "tokens": tokens,
            "encode_s": best["encode_s"],
            "cached_decode_s": best["cached_decode_s"],
            "uncached_decode_s": uncached_decode_s,
            "speedup": speedup,
            "end_to_end_s": best["end_to_end_s"],
            "threads": best["threads"],
            "precision": best["precision"],
            "parameters": paragraph.num_parameters(),
            "onnx_end_to_end_s": onnx_s,
            "onnx_speedup": uncached_s / onnx_s,
        },
        "line": {
            "tokens": line.max_output_length,
            "end_to_end_s": best_line["line_end_to_end_s"],
            "threads": best_line["threads"],
            "precision": best_line["precision"],
            "parameters": line.num_parameters(),
        },
        "variants": rows,
        "machine": machine(),
    }
    print(
        f"paragraph, {best['threads']} threads {best['precision']}: {tokens} tokens, "
        f"cached {best['cached_decode_s']:.2f}s vs uncached {uncached_decode_s:.1f}s "
        f"= {speedup:.0f}x; encode + cached decode "
        f"{best['end_to_end_s']:.2f}s; line {best_line['line_end_to_end_s']:.3f}s\n"
        f"paragraph exported to ONNX (onnxruntime): encode + cached decode {onnx_s:.2f}s, "
        f"{uncached_s / onnx_s:.0f}x faster than encode + uncached decode ({uncached_s:.1f}s)"
    )
    print(f"wrote {write('decode', results)}")


if __name__ == "__main__":
    main()
