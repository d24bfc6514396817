"""Training throughput: lines (or pages) a second of a full training step (the experiment's
LitTransformer loss, backward, gradient clipping, its optimizer) per network, fp32 and bf16
autocast side by side (bf16 only where the CPU computes it natively).

The line network is timed on the default run's own training batches where its data is built
(`make generate`): its batch size, each batch cropped to its widest line, labels as long as its
longest. That is what a run's step costs, and what picks its precision (`training/precision.py`):
a worst-case batch (every line at full width, every label at full length) favours bf16 more than
real batches of 8 do. Without the data, and for the paragraph network (IAM), batches are the
worst case. Also the line network's fp32 samples/s per batch size, on worst-case batches.
`python -m benchmarks.train --smoke` times one small step of each.
"""

import argparse
import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

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

Batch = tuple[Tensor, Tensor]
Step = Callable[[Batch], None]


@dataclass(frozen=True)
class Settings:
    """How much is timed; `tokens` None: worst-case labels of the network's whole output length."""

    threads: tuple[int, ...]
    worst_case_batch: dict[str, int]  # per network, where its batches are the worst case
    batches: dict[str, int]  # per network, timed per round
    rounds: int  # each precision's rounds, interleaved; the fastest counts
    line_batches: tuple[int, ...]  # the line network's fp32 samples/s per batch size
    line_samples: int  # ... each over this many samples
    tokens: int | None


FULL = Settings(
    threads=(1, 2),
    worst_case_batch={"line": 8, "paragraph": 2},
    batches={"line": 30, "paragraph": 1},
    rounds=3,
    line_batches=(8, 16, 32),
    line_samples=64,
    tokens=None,
)
SMOKE = Settings(
    threads=(2,),
    worst_case_batch={"line": 2, "paragraph": 1},
    batches={"line": 1, "paragraph": 1},
    rounds=1,
    line_batches=(1, 2),
    line_samples=2,
    tokens=8,
)
NETWORKS = {"line": LINES, "paragraph": PARAGRAPHS}


def run_batches(composed: Experiment, count: int) -> list[Batch] | None:
    """The first `count` training batches the experiment's run reads, or None where its data is
    not built (a benchmark never renders or downloads it)."""
    datamodule = composed.datamodule
    if not all(path.exists() for path in datamodule.paths):
        return None
    datamodule.setup("fit")
    batches: list[Batch] = []
    for batch in datamodule.train_dataloader():
        batches.append(batch)
        if len(batches) == count:
            break
    return batches


def worst_case_batches(composed: Experiment, batch: int, tokens: int | None) -> list[Batch]:
    """One batch of `batch` images of the full input size, labels of the full output length."""
    length = tokens or composed.max_output_length
    network = composed.network()
    images = torch.randn(batch, *composed.image)
    targets = torch.randint(4, network.num_tokens, (batch, length))
    targets[:, 0], targets[:, -1] = network.start_index, network.end_index
    return [(images, targets)]


def trainer(composed: Experiment) -> tuple[int, Callable[[str], Step]]:
    """The network's parameter count, and a training step of it in a precision."""
    network = composed.network().train()
    model = composed.model(network)
    optimizer = model.configure_optimizers()
    assert isinstance(optimizer, torch.optim.Optimizer)
    clip = composed.config.trainer.gradient_clip_val

    def at(name: str) -> Step:
        def step(batch: Batch) -> None:
            with precision(name):
                value = model._losses(*batch)["loss"]
            optimizer.zero_grad(set_to_none=True)
            value.backward()
            if clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
            optimizer.step()

        return step

    return network.num_parameters(), at


def throughput(
    composed: Experiment, groups: list[list[Batch]], settings: Settings
) -> dict[str, Any]:
    """Best samples/s per precision over the thread counts (on a shared machine 1 can win).

    `groups[0]` warms up; then at each thread count the precisions take turns, round by round,
    each round on the next group. A run meets new shapes all the time (widths, label lengths),
    and a bf16 matmul builds a kernel for each new one, so rounds on batches already seen would
    flatter bf16.
    """
    parameters, at = trainer(composed)
    fresh = iter(groups[1:])
    variants: list[dict[str, Any]] = []
    for threads in settings.threads:
        torch.set_num_threads(threads)
        steps = {name: at(name) for name in PRECISIONS}
        for step in steps.values():
            repeat(step, groups[0])
        times: dict[str, list[float]] = {name: [] for name in PRECISIONS}
        for _ in range(settings.rounds):
            batches = next(fresh)
            for name, step in steps.items():
                times[name].append(timed(functools.partial(repeat, step, batches)))
        samples = sum(len(images) for images, _ in batches)
        variants += [
            {
                "threads": threads,
                "precision": name,
                "samples_per_s": samples / min(seconds),
                "steps_per_s": len(batches) / min(seconds),
            }
            for name, seconds in times.items()
        ]
    fastest = {
        name: max(v["samples_per_s"] for v in variants if v["precision"] == name)
        for name in PRECISIONS
    }
    fp32, bf16 = fastest["fp32"], fastest.get("bf16")
    timed_batches = [batch for group in groups[1:] for batch in group]
    pad = composed.datamodule.tokenizer.pad_index
    return {
        **composed.describe(),
        "batch": len(timed_batches[0][0]),
        "batches_per_round": len(groups[1]),
        "mean_width": sum(i.shape[-1] for i, _ in timed_batches) / len(timed_batches),
        "mean_tokens": sum(int((t != pad).sum(1).max()) - 1 for _, t in timed_batches)
        / len(timed_batches),
        "parameters": parameters,
        "fp32_samples_per_s": fp32,
        "bf16_samples_per_s": bf16,
        "bf16_vs_fp32": bf16 / fp32 if bf16 else None,
        "variants": variants,
    }


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def repeat(step: Step, batches: list[Batch]) -> None:
    for batch in batches:
        step(batch)


def batch_sizes(composed: Experiment, settings: Settings) -> dict[str, float]:
    """fp32 samples/s per batch size on worst-case batches, each over the same samples, at 2
    threads."""
    torch.set_num_threads(2)
    _, at = trainer(composed)
    samples = settings.line_samples
    result = {}
    for batch in settings.line_batches:
        batches = worst_case_batches(composed, batch, settings.tokens) * (samples // batch)
        result[str(batch)] = samples / best_of(functools.partial(repeat, at("fp32"), batches), 2)
    return result


def measured_batches(
    name: str, composed: Experiment, settings: Settings
) -> tuple[list[list[Batch]], str]:
    """The groups of batches a network is timed on (a warm-up, then one per round and thread
    count), and which batches they are."""
    count = settings.batches[name]
    groups = 1 + settings.rounds * len(settings.threads)
    if name == "line":
        real = run_batches(composed, groups * count)
        if real and len(real) == groups * count:
            return [real[i : i + count] for i in range(0, len(real), count)], "the run's own"
    batch = worst_case_batches(composed, settings.worst_case_batch[name], settings.tokens)
    return [batch * count] * groups, "worst case"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_arguments(parser)
    args = parser.parse_args(argv)
    settings = SMOKE if args.smoke else FULL
    results: dict[str, Any] = {}
    for name, overrides in NETWORKS.items():
        composed = experiment(*overrides)
        groups, kind = measured_batches(name, composed, settings)
        results[name] = {**throughput(composed, groups, settings), "batches": kind}
    results["line_batch_sizes"] = batch_sizes(experiment(*LINES), settings)
    print_table([{"network": name, **v} for name in NETWORKS for v in results[name]["variants"]])
    for name in NETWORKS:
        r = results[name]
        bf16 = (
            f"bf16 {r['bf16_samples_per_s']:.2f} ({r['bf16_vs_fp32']:.2f}x)"
            if r["bf16_samples_per_s"]
            else "bf16 not timed (emulated on this CPU)"
        )
        print(
            f"{name} ({r['batches']} batches of {r['batch']}): fp32 "
            f"{r['fp32_samples_per_s']:.2f} samples/s, {bf16}, {r['parameters'] / 1e6:.2f}M "
            "parameters"
        )
    sizes = results["line_batch_sizes"]
    print("line fp32 samples/s by batch: " + ", ".join(f"{b}: {v:.1f}" for b, v in sizes.items()))
    write("train", {**results, "machine": machine()}, results_folder(args))


if __name__ == "__main__":
    main()
