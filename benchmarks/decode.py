"""Greedy decoding speed: the kv cache against recomputing the prefix, side by side, and the
cached decoding in every runtime: eager fp32, bf16 autocast (where the CPU has native bf16) and
int8, ONNX fp32 and int8.

Paragraph (`+experiment=conv_transformer_paragraphs`): batch 1, a page of its datamodule's size,
every token of its output length forced (stop_at_end=False), per thread count and precision;
the uncached reference runs once, in the fastest eager setting. Then every runtime at 2 threads
(the exported ones with the end token suppressed, so they also decode every token), and a
profile of one cached step in eager fp32 and int8: where its time goes. Line (the default
experiment): batch 1 latency and batch 32 throughput (lines/s through `predict_batch`, every
token of its output length) per runtime. Networks, sizes and lengths are the composed
experiments'. `python -m benchmarks.decode --smoke` decodes a few tokens once, in every eager
runtime (the ONNX export has its own tests: tests/test_export.py).
"""

import argparse
import functools
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.profiler import profile

from benchmarks.common import (
    LINES,
    PARAGRAPHS,
    PRECISIONS,
    Experiment,
    add_arguments,
    best_of,
    experiment,
    machine,
    precision,
    print_table,
    results_folder,
    write,
)
from benchmarks.predict import line_images, recognizers
from text_recognizer.decode import greedy_decode, greedy_decode_reference
from text_recognizer.inference.models.exported import ExportedRecognizer
from text_recognizer.inference.quantize import quantize_network
from text_recognizer.network import ConvTransformer

RUNTIME_THREADS = 2


@dataclass(frozen=True)
class Settings:
    """How much is timed: tokens None decode every token of the network's output length."""

    threads: tuple[int, ...]
    repeats: int
    encode_repeats: int
    line_repeats: int
    page_tokens: int | None
    line_tokens: int | None
    lines: int
    profile_steps: int  # cached steps timed, and as many profiled
    onnx: bool  # the exported runtimes too (an export costs a minute on 2 cores)


FULL = Settings(
    threads=(1, 2),
    repeats=2,
    encode_repeats=3,
    line_repeats=5,
    page_tokens=None,
    line_tokens=None,
    lines=32,
    profile_steps=32,
    onnx=True,
)
SMOKE = Settings(
    threads=(RUNTIME_THREADS,),
    repeats=1,
    encode_repeats=1,
    line_repeats=1,
    page_tokens=8,
    line_tokens=4,
    lines=2,
    profile_steps=2,
    onnx=False,
)


def _seconds(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def measure(
    network: ConvTransformer, images: torch.Tensor, settings: Settings, tokens: int
) -> dict[str, float]:
    """Encode alone, and encode + cached decode (which `greedy_decode` is) of `tokens` tokens."""
    with torch.inference_mode():
        encode_s = best_of(lambda: network.encode(images), settings.encode_repeats)
    end_to_end_s = best_of(
        lambda: greedy_decode(network, images, tokens, stop_at_end=False), settings.repeats
    )
    return {
        "encode_s": encode_s,
        "cached_decode_s": end_to_end_s - encode_s,
        "end_to_end_s": end_to_end_s,
    }


def step_profile(
    network: ConvTransformer, page: torch.Tensor, at: int, steps: int
) -> dict[str, Any]:
    """One cached step at position `at` (the middle of a page), averaged over `steps`: its wall
    time and the operators that take it, by self CPU time."""
    decoder = network.decoder
    token = torch.full((1, 1), network.start_index)
    with torch.inference_mode():
        decoder.setup_cache(network.encode(page), at + 2 * steps)
        try:
            for pos in range(at):  # a cache of `at` positions, as midway through the page
                decoder.step(token, pos)
            began = time.perf_counter()
            for pos in range(at, at + steps):
                decoder.step(token, pos)
            step_ms = (time.perf_counter() - began) / steps * 1000
            with profile() as prof:
                for pos in range(at + steps, at + 2 * steps):
                    decoder.step(token, pos)
        finally:
            decoder.clear_cache()
    events = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)
    total = sum(e.self_cpu_time_total for e in events)
    top = {
        e.key: {
            "ms_per_step": e.self_cpu_time_total / 1000 / steps,
            "share": e.self_cpu_time_total / total,
            "calls_per_step": e.count / steps,
        }
        for e in events[:8]
    }
    return {"step_ms": step_ms, "position": at, "top_ops": top}


def exported_s(
    pages: Experiment, page: torch.Tensor, tokens: int, repeats: int
) -> dict[str, dict[str, float]]:
    """Encode, and encode + cached decode of `tokens` tokens, with the exported files."""
    out = {}
    with tempfile.TemporaryDirectory() as folder:
        found = recognizers(pages, tokens, Path(folder))
        for name in ("onnx", "onnx_int8"):
            exported = found[name]
            assert isinstance(exported, ExportedRecognizer)
            encode_s = best_of(functools.partial(exported.runtime.encode, page), 2)
            end_to_end_s = best_of(functools.partial(exported.decode, page), repeats)
            out[name] = {"encode_s": encode_s, "end_to_end_s": end_to_end_s}
    return out


def line_runtimes(
    lines: Experiment, tokens: int, settings: Settings
) -> dict[str, dict[str, float]]:
    """Per runtime: ms a line at batch 1 (of up to 8 lines) and lines/s at batch 32."""
    images = line_images(lines, settings.lines)
    alone, repeats = images[:8], settings.repeats
    out = {}
    with tempfile.TemporaryDirectory() as folder:
        for name, recognizer in recognizers(lines, tokens, Path(folder), settings.onnx).items():
            one = best_of(functools.partial(recognizer.predict_batch, alone, 1), repeats)
            many = best_of(functools.partial(recognizer.predict_batch, images, 32), repeats)
            out[name] = {
                "ms_per_line_batch1": one / len(alone) * 1000,
                "lines_per_s_batch32": len(images) / many,
            }
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_arguments(parser)
    args = parser.parse_args(argv)
    settings = SMOKE if args.smoke else FULL
    composed_pages, composed_lines = experiment(*PARAGRAPHS), experiment(*LINES)
    paragraph = composed_pages.network().eval()
    line = composed_lines.network().eval()
    page = torch.randn(1, *composed_pages.image)
    text_line = torch.randn(1, *composed_lines.image)
    tokens = settings.page_tokens or paragraph.max_output_length
    line_tokens = settings.line_tokens or line.max_output_length
    rows: list[dict[str, Any]] = []
    for threads in settings.threads:
        torch.set_num_threads(threads)
        for name in PRECISIONS:
            with precision(name):
                row = {"threads": threads, "precision": name}
                row |= measure(paragraph, page, settings, tokens)
                row["line_end_to_end_s"] = best_of(
                    lambda: greedy_decode(line, text_line, line_tokens, stop_at_end=False),
                    settings.line_repeats,
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
        k: v
        for k, v in measure(quantized, page, settings, tokens).items()
        if k != "cached_decode_s"
    }
    if settings.onnx:
        runtimes |= exported_s(composed_pages, page, tokens, settings.repeats)
    for figures in runtimes.values():
        figures["step_ms"] = (figures["end_to_end_s"] - figures["encode_s"]) / tokens * 1000
    at = tokens // 2
    profiles = {
        "eager_fp32": step_profile(paragraph, page, at, settings.profile_steps),
        "eager_int8": step_profile(quantized, page, at, settings.profile_steps),
    }
    fastest = min(runtimes, key=lambda name: runtimes[name]["end_to_end_s"])
    print_table([{"runtime": name, **figures} for name, figures in runtimes.items()])
    for name, step in profiles.items():
        print(f"one cached step, {name}, position {step['position']}: {step['step_ms']:.2f} ms")
        for op, figures in step["top_ops"].items():
            print(f"  {op[:48]:48s} {figures['ms_per_step']:.3f} ms  {figures['share']:.0%}")

    lines = line_runtimes(composed_lines, line_tokens, settings)
    print_table([{"runtime": name, **figures} for name, figures in lines.items()])
    best_lines = max(lines, key=lambda name: lines[name]["lines_per_s_batch32"])

    speedup = uncached_decode_s / best["cached_decode_s"]
    onnx: dict[str, float] = {}  # against the exported runtime, where it was timed
    if "onnx" in runtimes:
        onnx_s = runtimes["onnx"]["end_to_end_s"]
        onnx = {"onnx_end_to_end_s": onnx_s, "onnx_speedup": uncached_s / onnx_s}
    results = {
        "paragraph": {
            **composed_pages.describe(),
            "tokens": tokens,
            "encode_s": best["encode_s"],
            "cached_decode_s": best["cached_decode_s"],
            "uncached_decode_s": uncached_decode_s,
            "speedup": speedup,
            "end_to_end_s": best["end_to_end_s"],
            "threads": best["threads"],
            "precision": best["precision"],
            "parameters": paragraph.num_parameters(),
            **onnx,
            "runtimes": runtimes,
            "runtime_threads": RUNTIME_THREADS,
            "best_end_to_end_s": runtimes[fastest]["end_to_end_s"],
            "best_runtime": fastest,
            "step_profile": profiles,
        },
        "line": {
            **composed_lines.describe(),
            "tokens": line_tokens,
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
    write("decode", results, results_folder(args))


if __name__ == "__main__":
    main()
