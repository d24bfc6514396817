"""Training throughput: samples/s of a full step (forward, backward, AdamW) per network,
fp32 and bf16 autocast side by side. Labels are full length, the worst case per batch."""

import functools
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor

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
from text_recognizer.network import ConvTransformer


def loss(network: ConvTransformer, images: Tensor, targets: Tensor) -> Tensor:
    """Teacher-forced cross-entropy, plus CTC (pad as blank) when the network has the head."""
    output = network(images, targets[:, :-1])
    total = F.cross_entropy(
        output.logits.float().transpose(1, 2), targets[:, 1:], ignore_index=network.pad_index
    )
    if output.ctc_logits is None:
        return total
    log_probs = output.ctc_logits.float().log_softmax(-1).transpose(0, 1)
    labels = targets[:, 1:-1]
    steps = torch.full((len(targets),), log_probs.shape[0])
    lengths = torch.full((len(targets),), labels.shape[1])
    return total + F.ctc_loss(log_probs, labels, steps, lengths, blank=network.pad_index)


def throughput(config: dict[str, Any], batch: int, repeats: int) -> dict[str, Any]:
    """Best samples/s per precision over 1 and 2 threads (on a shared machine 1 can win)."""
    network = build(config).train()
    optimizer = torch.optim.AdamW(network.parameters(), lr=1e-4)
    images = torch.randn(batch, *config["image"])
    length = network.max_output_length
    targets = torch.randint(4, network.num_tokens, (batch, length))
    targets[:, 0], targets[:, -1] = network.start_index, network.end_index

    def step(name: str) -> None:
        with precision(name):
            value = loss(network, images, targets)
        optimizer.zero_grad(set_to_none=True)
        value.backward()
        optimizer.step()

    variants: list[dict[str, Any]] = []
    for threads in (1, 2):
        torch.set_num_threads(threads)
        for name in ("fp32", "bf16"):
            samples = batch / best_of(functools.partial(step, name), repeats)
            variants.append(
                {
                    "threads": threads,
                    "precision": name,
                    "samples_per_s": samples,
                    "steps_per_s": samples / batch,
                }
            )
    fp32, bf16 = (
        max(v["samples_per_s"] for v in variants if v["precision"] == name)
        for name in ("fp32", "bf16")
    )
    return {
        "batch": batch,
        "image": list(config["image"]),
        "tokens": length - 1,
        "parameters": network.num_parameters(),
        "fp32_samples_per_s": fp32,
        "bf16_samples_per_s": bf16,
        "fp32_steps_per_s": fp32 / batch,
        "bf16_steps_per_s": bf16 / batch,
        "bf16_vs_fp32": bf16 / fp32,
        "variants": variants,
    }


def main() -> None:
    results = {"line": throughput(LINES, 32, 4), "paragraph": throughput(PARAGRAPH, 2, 2)}
    print_table([{"network": name, **v} for name, r in results.items() for v in r["variants"]])
    for name, r in results.items():
        print(
            f"{name}: fp32 {r['fp32_samples_per_s']:.2f}, bf16 {r['bf16_samples_per_s']:.2f} "
            f"samples/s (bf16 {r['bf16_vs_fp32']:.2f}x), {r['parameters'] / 1e6:.2f}M parameters"
        )
    print(f"wrote {write('train', {**results, 'machine': machine()})}")


if __name__ == "__main__":
    main()
