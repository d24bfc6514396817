"""Can the full paragraph reader learn? Train the 21.7M `conv_transformer_paragraphs` network on 8
synthetic pages, through the curriculum, until it reads all 8 full pages exactly (CER 0).

This is the check to run before paying for a GPU: it takes the network, the loss
(`LitTransformer`), the pages (`AssembledPages`) and the curriculum's line caps the experiments
use, and only fixes the pages, so that the same 8 are seen at every step. The network, the
pages' size and length, the learning rate and the gradient clip are those of
`+experiment=conv_transformer_paragraphs datamodule=synthetic_paragraphs`. It needs the
synthetic lines (`make generate`). Results go to `benchmarks/results/overfit_pages.json`.
`--smoke` trains 2 pages of a few dozen rendered lines for 2 steps and reads them 4 tokens deep.

    python -m benchmarks.overfit_pages [--steps 300] [--threads 2]
"""

import argparse
import functools
import time
from dataclasses import dataclass
from typing import Any

import torch
from torchmetrics.text import CharErrorRate
from tqdm import tqdm

from benchmarks.common import (
    PARAGRAPHS,
    PRECISIONS,
    Experiment,
    add_arguments,
    experiment,
    machine,
    precision,
    results_folder,
    write,
)
from text_recognizer.data.base import collate_cropped
from text_recognizer.data.pages.curriculum import AssembledPages, Curriculum
from text_recognizer.data.synthetic.paragraphs import SyntheticParagraphs
from text_recognizer.decode import greedy_decode
from text_recognizer.network import ConvTransformer

# Lines a page by pages drawn (8 a step): 1 line for 30 steps, 2 and 4 for 30 each, then the
# pages in full (2-8 lines, the layout's own counts).
CURRICULUM = Curriculum.parse([[0, 1], [240, 2], [480, 4], [720, 8]])
FULL_PAGE = CURRICULUM.stages[-1][1]
CHECK_EVERY = 25  # steps between readings of the full pages, once the pages are full


@dataclass(frozen=True)
class Settings:
    """How many pages, how long, and how deep a reading goes (None: the output length)."""

    pages: int
    steps: int
    read_tokens: int | None
    overrides: tuple[str, ...]  # of the pages' datamodule, beyond their count


FULL = Settings(pages=8, steps=300, read_tokens=None, overrides=())
SMOKE = Settings(  # a pool of a few dozen lines, one page to validate and one to test
    pages=2,
    steps=2,
    read_tokens=4,
    overrides=(
        "datamodule.val_size=1",
        "datamodule.test_size=1",
        "datamodule.lines.train_size=16",
        "datamodule.lines.val_size=8",
        "datamodule.lines.test_size=8",
    ),
)


def pages_experiment(settings: Settings) -> Experiment:
    """The paragraph reader's experiment on the synthetic pages, `settings.pages` of them a step
    and an epoch."""
    count = [f"datamodule.{key}={settings.pages}" for key in ("batch_size", "train_size")]
    return experiment(*PARAGRAPHS, "datamodule=synthetic_paragraphs", *count, *settings.overrides)


def read(
    network: ConvTransformer,
    images: torch.Tensor,
    pages: SyntheticParagraphs,
    tokens: int | None,
) -> list[str]:
    network.eval()
    found = greedy_decode(network, images, tokens)
    network.train()
    return pages.tokenizer.decode_batch(found)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, help="give up after this many (default: 300)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--lr", type=float, help="default: the experiment's")
    # bf16 where the CPU has it: at a page's full size it is faster than fp32 (benchmarks.train)
    parser.add_argument("--precision", choices=PRECISIONS, default=PRECISIONS[-1])
    add_arguments(parser)
    args = parser.parse_args(argv)
    settings = SMOKE if args.smoke else FULL
    steps = args.steps or settings.steps
    torch.set_num_threads(args.threads)

    composed = pages_experiment(settings)
    lr = args.lr or composed.config.optimizer.lr
    clip = composed.config.trainer.gradient_clip_val
    pages = composed.datamodule
    assert isinstance(pages, SyntheticParagraphs)
    pages.setup("fit")
    drawn = pages.data_train
    assert isinstance(drawn, AssembledPages)
    network = composed.network().train()
    model = composed.model(network)
    optimizer = torch.optim.AdamW(network.parameters(), lr=lr)
    # Decays to a twentieth over the steps: at a constant rate the loss spiked once it was low.
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps, lr / 20)

    @functools.cache
    def batch(lines: int | None) -> tuple[torch.Tensor, torch.Tensor]:
        return collate_cropped([drawn[(0, i, lines)] for i in range(settings.pages)], rows=True)

    full_images, full_targets = batch(None)
    truth = pages.tokenizer.decode_batch(full_targets[:, 1:])
    cer, start = CharErrorRate(), time.perf_counter()
    history: list[dict[str, Any]] = []
    result: dict[str, Any] = {"read_exactly_at_step": None}
    progress = tqdm(range(1, steps + 1), desc=f"overfit {settings.pages} pages", unit="step")
    for step in progress:
        cap = CURRICULUM.lines_at((step - 1) * settings.pages)
        full = cap == FULL_PAGE
        images, targets = batch(None if full else cap)
        with precision(args.precision):
            loss = model._losses(images, targets)["loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(network.parameters(), clip)
        optimizer.step()
        schedule.step()
        progress.set_postfix(loss=f"{loss.item():.3f}", lines=cap)
        last = step == steps
        if step % CHECK_EVERY and not last:
            continue
        if not (full or last):  # the last step reads the full pages however far it got
            history.append({"step": step, "cap": cap, "loss": loss.item()})
            continue
        with precision(args.precision):
            readings = read(network, full_images, pages, settings.read_tokens)
        value = float(cer(readings, truth))
        pairs = list(zip(readings, truth, strict=True))
        per_page = [round(float(cer(r, t)), 4) for r, t in pairs]
        history.append(
            {"step": step, "cap": cap, "loss": loss.item(), "full_page_cer": value}
            | {"per_page_cer": per_page}
        )
        result["readings"] = [{"target": t, "read": r} for r, t in pairs]
        tqdm.write(f"step {step}: cap {cap} loss {loss.item():.4f} full-page CER {value:.4f}")
        if value == 0.0:
            result["read_exactly_at_step"] = step
            break
    result |= {
        **composed.describe(),
        "pages": settings.pages,
        "parameters": sum(p.numel() for p in network.parameters()),
        "full_page_chars": sum(len(t) for t in truth),
        "seconds": time.perf_counter() - start,
        "threads": args.threads,
        "lr": lr,
        "lr_schedule": f"cosine to lr/20 over {steps} steps",
        "gradient_clip": clip,
        "precision": args.precision,
        "curriculum": [list(stage) for stage in CURRICULUM.stages],
        "history": history,
        "machine": machine(),
    }
    write("overfit_pages", result, results_folder(args))


if __name__ == "__main__":
    main()
