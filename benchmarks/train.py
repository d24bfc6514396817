"""Training throughput: samples/s of a full step (LitTransformer's own loss, backward, AdamW) per
network, fp32 and bf16 autocast side by side. Labels are full length, the worst case per batch."""

import functools
from typing import Any

import torch
from omegaconf import OmegaConf

from benchmarks.common import (
    LINES,
    PARAGRAPH,
    ROOT,
    best_of,
    build,
    machine,
    precision,
    print_table,
    write,
)
from text_recognizer.model.lit_transformer import LitTransformer

# The loss the experiments train with: the model config's CTC weight.
CTC_WEIGHT = OmegaConf.load(ROOT / "training/conf/model/lit_transformer.yaml").ctc_weight


def throughput(config: dict[str, Any], batch: int, repeats: int) -> dict[str, Any]:
    """Best samples/s per precision over 1 and 2 threads (on a shared machine 1 can win)."""
    network = build(config).train()
    model = LitTransformer(network, torch.optim.AdamW, ctc_weight=CTC_WEIGHT)
    optimizer = torch.optim.AdamW(network.parameters(), lr=1e-4)
    images = torch.randn(batch, *config["image"])
    length = network.max_output_length
    targets = torch.randint(4, network.num_tokens, (batch, length))
    targets[:, 0], targets[:, -1] = network.start_index, network.end_index

    def step(name: str) -> None:
        with precision(name):
            value = model._losses(images, targets)["loss"]
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
