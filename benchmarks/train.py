"""Training throughput: samples/s of a full step (the experiment's LitTransformer loss, backward,
its optimizer) per network, fp32 and bf16 autocast side by side (bf16 only where the CPU
computes it natively), and the line network's fp32 samples/s per batch size (the default run's
batch is chosen by steps, so its time budget needs the cost per sample). Each network reads
images of its composed experiment's full input size, with labels of its full output length:
the worst case per batch. `python -m benchmarks.train --smoke` times one small step of each.
"""

import argparse
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

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
from text_recognizer.network.conv_transformer import ConvTransformer

Step = Callable[[], None]


@dataclass(frozen=True)
class Settings:
    """How much is timed; `tokens` None: labels of the network's whole output length."""

    threads: tuple[int, ...]
    batches: dict[str, int]  # per network
    repeats: dict[str, int]
    line_batches: tuple[int, ...]  # the line network's fp32 samples/s per batch size
    line_samples: int  # ... each over this many samples
    tokens: int | None


FULL = Settings(
    threads=(1, 2),
    batches={"line": 32, "paragraph": 2},
    repeats={"line": 4, "paragraph": 2},
    line_batches=(8, 16, 32),
    line_samples=64,
    tokens=None,
)
SMOKE = Settings(
    threads=(2,),
    batches={"line": 2, "paragraph": 1},
    repeats={"line": 1, "paragraph": 1},
    line_batches=(1, 2),
    line_samples=2,
    tokens=8,
)
NETWORKS = {"line": LINES, "paragraph": PARAGRAPHS}


def trainer(
    composed: Experiment, tokens: int | None
) -> tuple[ConvTransformer, Callable[[int, str], Step]]:
    """The network, and a function that gives one training step of it on a fixed batch of a size
    in a precision."""
    network = composed.network().train()
    model = composed.model(network)
    optimizer = model.configure_optimizers()
    assert isinstance(optimizer, torch.optim.Optimizer)
    length = tokens or network.max_output_length

    def at(batch: int, name: str) -> Step:
        images = torch.randn(batch, *composed.image)
        targets = torch.randint(4, network.num_tokens, (batch, length))
        targets[:, 0], targets[:, -1] = network.start_index, network.end_index

        def step() -> None:
            with precision(name):
                value = model._losses(images, targets)["loss"]
            optimizer.zero_grad(set_to_none=True)
            value.backward()
            optimizer.step()

        return step

    return network, at


def throughput(
    composed: Experiment, batch: int, repeats: int, settings: Settings
) -> dict[str, Any]:
    """Best samples/s per precision over the thread counts (on a shared machine 1 can win)."""
    network, at = trainer(composed, settings.tokens)
    variants: list[dict[str, Any]] = []
    for threads in settings.threads:
        torch.set_num_threads(threads)
        for name in PRECISIONS:
            samples = batch / best_of(at(batch, name), repeats)
            variants.append(
                {
                    "threads": threads,
                    "precision": name,
                    "samples_per_s": samples,
                    "steps_per_s": samples / batch,
                }
            )
    best = {
        name: max(v["samples_per_s"] for v in variants if v["precision"] == name)
        for name in PRECISIONS
    }
    fp32, bf16 = best["fp32"], best.get("bf16")
    return {
        **composed.describe(),
        "batch": batch,
        "tokens": (settings.tokens or network.max_output_length) - 1,
        "parameters": network.num_parameters(),
        "fp32_samples_per_s": fp32,
        "bf16_samples_per_s": bf16,
        "fp32_steps_per_s": fp32 / batch,
        "bf16_steps_per_s": bf16 / batch if bf16 else None,
        "bf16_vs_fp32": bf16 / fp32 if bf16 else None,
        "variants": variants,
    }


def batch_sizes(composed: Experiment, settings: Settings) -> dict[str, float]:
    """fp32 samples/s per batch size, each timed over the same samples, at 2 threads."""
    torch.set_num_threads(2)
    _, at = trainer(composed, settings.tokens)
    samples = settings.line_samples
    result = {}
    for batch in settings.line_batches:
        steps = functools.partial(repeat, at(batch, "fp32"), samples // batch)
        result[str(batch)] = samples / best_of(steps, 2)
    return result


def repeat(step: Step, times: int) -> None:
    for _ in range(times):
        step()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_arguments(parser)
    args = parser.parse_args(argv)
    settings = SMOKE if args.smoke else FULL
    composed = {name: experiment(*overrides) for name, overrides in NETWORKS.items()}
    results: dict[str, Any] = {
        name: throughput(composed[name], settings.batches[name], settings.repeats[name], settings)
        for name in NETWORKS
    }
    results["line_batch_sizes"] = batch_sizes(composed["line"], settings)
    print_table([{"network": name, **v} for name in NETWORKS for v in results[name]["variants"]])
    for name in NETWORKS:
        r = results[name]
        bf16 = (
            f"bf16 {r['bf16_samples_per_s']:.2f} ({r['bf16_vs_fp32']:.2f}x)"
            if r["bf16_samples_per_s"]
            else "bf16 not timed (emulated on this CPU)"
        )
        print(
            f"{name}: fp32 {r['fp32_samples_per_s']:.2f} samples/s, {bf16}, "
            f"{r['parameters'] / 1e6:.2f}M parameters"
        )
    sizes = results["line_batch_sizes"]
    print("line fp32 samples/s by batch: " + ", ".join(f"{b}: {v:.1f}" for b, v in sizes.items()))
    write("train", {**results, "machine": machine()}, results_folder(args))


if __name__ == "__main__":
    main()
