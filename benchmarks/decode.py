"""Greedy decoding speed: the kv cache against recomputing the prefix, side by side, and the
cached decoding in every runtime: eager fp32, bf16 autocast (where the CPU has native bf16) and
int8, ONNX fp32 and int8.

Paragraph: batch 1, a 576 x 640 page, all 682 tokens forced (stop_at_end=False), per thread
count and precision; the uncached reference runs once, in the fastest eager setting. Then every
runtime at 2 threads (the exported ones with the end token suppressed, so they also decode all
682), and a profile of one cached step in eager fp32 and int8: where its time goes. Line: batch
1 latency and batch 32 throughput (lines/s through `predict_batch`, 82 tokens each) per runtime.
`python -m benchmarks.decode --smoke` runs a few tokens to check the code, writes nothing.
"""

import argparse
import functools
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch.profiler import profile

from benchmarks.common import (
    LINES,
    PARAGRAPH,
    PRECISIONS,
    best_of,
    build,
    machine,
    precision,
    print_table,
    write,
)
from benchmarks.predict import KINDS, line_images, recognizers
from text_recognizer.decode import greedy_decode, greedy_decode_reference
from text_recognizer.inference.export import ExportedRecognizer
from text_recognizer.inference.quantize import quantize_network
from text_recognizer.network import ConvTransformer

RUNTIME_THREADS = 2
PROFILE_STEPS = 32


def _seconds(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def measure(
    network: ConvTransformer, images: torch.Tensor, repeats: int, tokens: int | None = None
) -> dict[str, float]:
    """Encode alone, and encode + cached decode (which `greedy_decode` is) of every token."""
    with torch.inference_mode():
        encode_s = best_of(lambda: network.encode(images), 3)
    end_to_end_s = best_of(
        lambda: greedy_decode(network, images, tokens, stop_at_end=False), repeats
    )
    return {
        "encode_s": encode_s,
        "cached_decode_s": end_to_end_s - encode_s,
        "end_to_end_s": end_to_end_s,
    }


def step_profile(network: ConvTransformer, page: torch.Tensor, at: int) -> dict[str, Any]:
    """One cached step at position `at` (the middle of a page), averaged over PROFILE_STEPS:
    its wall time and the operators that take it, by self CPU time."""
    decoder = network.decoder
    token = torch.full((1, 1), network.start_index)
    with torch.inference_mode():
        decoder.setup_cache(network.encode(page), at + 2 * PROFILE_STEPS)
        try:
            for pos in range(at):  # a cache of `at` positions, as midway through the page
                decoder.step(token, pos)
            began = time.perf_counter()
            for pos in range(at, at + PROFILE_STEPS):
                decoder.step(token, pos)
            step_ms = (time.perf_counter() - began) / PROFILE_STEPS * 1000
            with profile() as prof:
                for pos in range(at + PROFILE_STEPS, at + 2 * PROFILE_STEPS):
                    decoder.step(token, pos)
        finally:
            decoder.clear_cache()
    events = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)
    total = sum(e.self_cpu_time_total for e in events)
    top = {
        e.key: {
            "ms_per_step": e.self_cpu_time_total / 1000 / PROFILE_STEPS,
            "share": e.self_cpu_time_total / total,
            "calls_per_step": e.count / PROFILE_STEPS,
        }
        for e in events[:8]
    }
    return {"step_ms": step_ms, "position": at, "top_ops": top}


def exported_s(page: torch.Tensor, tokens: int, repeats: int) -> dict[str, dict[str, float]]:
    """Encode, and encode + cached decode of `tokens` tokens, with the exported files."""
    out = {}
    with tempfile.TemporaryDirectory() as folder:
        found = recognizers(KINDS["paragraphs"], tokens, Path(folder))
        for name in ("onnx", "onnx_int8"):
            exported = found[name]
            assert isinstance(exported, ExportedRecognizer)
            encode_s = best_of(functools.partial(exported.runtime.encode, page), 2)
            end_to_end_s = best_of(functools.partial(exported.decode, page), repeats)
            out[name] = {"encode_s": encode_s, "end_to_end_s": end_to_end_s}
    return out


def line_runtimes(tokens: int, count: int, repeats: int) -> dict[str, dict[str, float]]:
    """Per runtime: ms a line at batch 1 and lines/s at batch 32 through `predict_batch`."""
    images = line_images(count)
    out = {}
    with tempfile.TemporaryDirectory() as folder:
        for name, recognizer in recognizers(KINDS["lines"], tokens, Path(folder)).items():
            one = best_of(functools.partial(recognizer.predict_batch, images[:8], 1), repeats)
            many = best_of(functools.partial(recognizer.predict_batch, images, 32), repeats)
            out[name] = {"ms_per_line_batch1": one / 8 * 1000, "lines_per_s_batch32": count / many}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny settings, nothing written")
    args = parser.parse_args()
    paragraph = build(PARAGRAPH).eval()
    line = build(LINES).eval()
    page = torch.randn(1, *PARAGRAPH["image"])
    text_line = torch.randn(1, *LINES["image"])
    tokens = 8 if args.smoke else paragraph.max_output_length
    repeats = 1 if args.smoke else 2
    rows: list[dict[str, Any]] = []
    for threads in (1, 2):
        torch.set_num_threads(threads)
        for name in PRECISIONS:
            with precision(name):
                row = {"threads": threads, "precision": name}
                row |= measure(paragraph, page, repeats, tokens)
                row["line_end_to_end_s"] = best_of(
                    lambda: greedy_decode(line, text_line, stop_at_end=False), 5
                )
            rows.append(row)
    best = min(rows, key=lambda r: r["end_to_end_s"])
    best_line = min(rows, key=lambda r: r["line_end_to_end_s"])
    torch.set_num_threads(best["threads"])
    with precision(best["precision"]):
        greedy_decode_reference(paragraph, page, max_length=8, stop_at_end=False)
        uncached_s = _seconds(
            lambda: greedy_decode_reference(paragraph, page, tokens, stop_at_end=False)
        )
    uncached_decode_s = uncached_s - best["encode_s"]
    print_table(rows)

    torch.set_num_threads(RUNTIME_THREADS)
    quantized = quantize_network(paragraph)
    runtimes: dict[str, dict[str, float]] = {
        f"eager_{r['precision']}": {k: r[k] for k in ("encode_s", "end_to_end_s")}
        for r in rows
        if r["threads"] == RUNTIME_THREADS
    }
    runtimes["eager_int8"] = {
        k: v for k, v in measure(quantized, page, repeats, tokens).items() if k != "cached_decode_s"
    }
    runtimes |= exported_s(page, tokens, repeats)
    for figures in runtimes.values():
        figures["step_ms"] = (figures["end_to_end_s"] - figures["encode_s"]) / tokens * 1000
    at = 4 if args.smoke else tokens // 2
    profiles = {
        "eager_fp32": step_profile(paragraph, page, at),
        "eager_int8": step_profile(quantized, page, at),
    }
    fastest = min(runtimes, key=lambda name: runtimes[name]["end_to_end_s"])
    print_table([{"runtime": name, **figures} for name, figures in runtimes.items()])
    for name, step in profiles.items():
        print(f"one cached step, {name}, position {step['position']}: {step['step_ms']:.2f} ms")
        for op, figures in step["top_ops"].items():
            print(f"  {op[:48]:48s} {figures['ms_per_step']:.3f} ms  {figures['share']:.0%}")

    lines = line_runtimes(4 if args.smoke else line.max_output_length, 32, repeats)
    print_table([{"runtime": name, **figures} for name, figures in lines.items()])
    best_lines = max(lines, key=lambda name: lines[name]["lines_per_s_batch32"])

    speedup = uncached_decode_s / best["cached_decode_s"]
    onnx_s = runtimes["onnx"]["end_to_end_s"]
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
            "runtimes": runtimes,
            "runtime_threads": RUNTIME_THREADS,
            "best_end_to_end_s": runtimes[fastest]["end_to_end_s"],
            "best_runtime": fastest,
            "step_profile": profiles,
        },
        "line": {
            "tokens": line.max_output_length,
            "end_to_end_s": best_line["line_end_to_end_s"],
            "threads": best_line["threads"],
            "precision": best_line["precision"],
            "parameters": line.num_parameters(),
            "runtimes": lines,
            "best_lines_per_s_batch32": lines[best_lines]["lines_per_s_batch32"],
            "best_runtime_batch32": best_lines,
        },
        "variants": rows,
        "machine": machine(),
    }
    print(
        f"paragraph, {best['threads']} threads {best['precision']}: {tokens} tokens, "
        f"cached {best['cached_decode_s']:.2f}s vs uncached {uncached_decode_s:.1f}s "
        f"= {speedup:.0f}x; encode + cached decode {best['end_to_end_s']:.2f}s eager; fastest "
        f"runtime {fastest}: {runtimes[fastest]['end_to_end_s']:.2f}s "
        f"({uncached_s / runtimes[fastest]['end_to_end_s']:.0f}x encode + uncached decode)\n"
        f"lines at batch 32: {lines[best_lines]['lines_per_s_batch32']:.0f}/s ({best_lines}); "
        f"batch 1: {min(f['ms_per_line_batch1'] for f in lines.values()):.1f} ms a line at best"
    )
    if args.smoke:
        print(json.dumps(results, indent=2)[:600])
    else:
        print(f"wrote {write('decode', results)}")


if __name__ == "__main__":
    main()
