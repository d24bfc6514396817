"""Training throughput: samples/s of a full step (LitTransformer's own loss, backward, AdamW) per
network, fp32 and bf16 autocast side by side (bf16 only where the CPU computes it natively), and
the line network's fp32 samples/s per batch size (the default run's batch is chosen by steps, so
its time budget needs the cost per sample). Labels are full length, the worst case per batch."""

import functools
from collections.abc import Callable
from typing import Any

import torch
from omegaconf import OmegaConf

from benchmarks.common import (
    LINES,
    PARAGRAPH,
    PRECISIONS,
    ROOT,
    best_of,
    build,
    machine,
    precision,
    print_table,
    write,
)
from text_recognizer.model.lit_transformer import LitTransformer
from text_recognizer.network.conv_transformer import ConvTransformer

Step = Callable[[], None]
NETWORKS = ("line", "paragraph")

# The loss the experiments train with: the model config's CTC weight.
CTC_WEIGHT = OmegaConf.load(ROOT / "training/conf/model/lit_transformer.yaml").ctc_weight


def trainer(config: dict[str, Any]) -> tuple[ConvTransformer, Callable[[int, str], Step]]:
    """The network, and a function that gives one training step of it on a fixed batch of a size
    in a precision."""
    network = build(config).train()
    model = LitTransformer(network, torch.optim.AdamW, ctc_weight=CTC_WEIGHT)
    optimizer = torch.optim.AdamW(network.parameters(), lr=1e-4)
    length = network.max_output_length

    def at(batch: int, name: str) -> Step:
        images = torch.randn(batch, *config["image"])
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


def throughput(config: dict[str, Any], batch: int, repeats: int) -> dict[str, Any]:
    """Best samples/s per precision over 1 and 2 threads (on a shared machine 1 can win)."""
    network, at = trainer(config)
    variants: list[dict[str, Any]] = []
    for threads in (1, 2):
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
        "batch": batch,
        "image": list(config["image"]),
        "tokens": network.max_output_length - 1,
        "parameters": network.num_parameters(),
        "fp32_samples_per_s": fp32,
        "bf16_samples_per_s": bf16,
        "fp32_steps_per_s": fp32 / batch,
        "bf16_steps_per_s": bf16 / batch if bf16 else None,
        "bf16_vs_fp32": bf16 / fp32 if bf16 else None,
        "variants": variants,
    }


def batch_sizes(config: dict[str, Any], batches: tuple[int, ...], samples: int) -> dict[str, float]:
    """fp32 samples/s per batch size, each timed over the same `samples` samples, at 2 threads."""
    torch.set_num_threads(2)
    _, at = trainer(config)
    result = {}
    for batch in batches:
        steps = functools.partial(repeat, at(batch, "fp32"), samples // batch)
        result[str(batch)] = samples / best_of(steps, 2)
    return result


def repeat(step: Step, times: int) -> None:
    for _ in range(times):
        step()


def main() -> None:
    results: dict[str, Any] = {
        "line": throughput(LINES, 32, 4),
        "paragraph": throughput(PARAGRAPH, 2, 2),
    }
    results["line_batch_sizes"] = batch_sizes(LINES, (8, 16, 32), 64)
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
    print(f"wrote {write('train', {**results, 'machine': machine()})}")


if __name__ == "__main__":
    main()
