"""Can the full paragraph reader learn? Train the 21.7M `conv_transformer_paragraphs` network on 8
synthetic pages, through the curriculum, until it reads all 8 full pages exactly (CER 0).

This is the check to run before paying for a GPU: it takes the network, the loss
(`LitTransformer`), the pages (`AssembledPages`) and the curriculum's line caps the experiments
use, and only fixes the pages, so that the same 8 are seen at every step. It needs the synthetic
lines (`make generate`). Results go to `benchmarks/results/overfit_pages.json`.

    python -m benchmarks.overfit_pages [--steps 300] [--threads 2]
"""

import argparse
import functools
import time
from typing import Any

import torch
from torchmetrics.text import CharErrorRate
from tqdm import tqdm

from benchmarks.common import PARAGRAPH, PRECISIONS, build, machine, precision, write
from text_recognizer.data import registry
from text_recognizer.data.base import collate_cropped
from text_recognizer.data.curriculum import Curriculum
from text_recognizer.data.synthetic_paragraphs import SyntheticParagraphs
from text_recognizer.decode import greedy_decode
from text_recognizer.model.lit_transformer import LitTransformer

PAGES = 8
# Lines a page by pages drawn (8 a step): 1 line for 30 steps, 2 and 4 for 30 each, then the
# pages in full (2-8 lines, the layout's own counts).
CURRICULUM = Curriculum.parse([[0, 1], [240, 2], [480, 4], [720, 8]])
FULL = CURRICULUM.stages[-1][1]
CHECK_EVERY = 25  # steps between readings of the full pages, once the pages are full


def read(network: torch.nn.Module, images: torch.Tensor, pages: SyntheticParagraphs) -> list[str]:
    network.eval()
    tokens = greedy_decode(network, images)  # type: ignore[arg-type]
    network.train()
    return pages.tokenizer.decode_batch(tokens)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=300, help="give up after this many")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--lr", type=float, default=3e-4, help="conv_transformer_paragraphs'")
    # bf16 where the CPU has it, as trainer.precision=auto chooses
    parser.add_argument("--precision", choices=PRECISIONS, default=PRECISIONS[-1])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    pages = registry.configured("synthetic_paragraphs")(batch_size=PAGES, train_size=PAGES)
    assert isinstance(pages, SyntheticParagraphs)
    pages.setup("fit")
    network = build(PARAGRAPH, pages.tokenizer).train()
    model = LitTransformer(network, torch.optim.AdamW, tokenizer=pages.tokenizer)
    optimizer = torch.optim.AdamW(network.parameters(), lr=args.lr)
    # Decays to a twentieth over --steps: at a constant rate the loss spiked once it was low.
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, args.steps, args.lr / 20)

    @functools.cache
    def batch(lines: int | None) -> tuple[torch.Tensor, torch.Tensor]:
        return collate_cropped([pages.data_train[(0, i, lines)] for i in range(PAGES)], rows=True)

    full_images, full_targets = batch(None)
    truth = pages.tokenizer.decode_batch(full_targets[:, 1:])
    cer, start, history = CharErrorRate(), time.perf_counter(), []
    result: dict[str, Any] = {"read_exactly_at_step": None}
    progress = tqdm(range(1, args.steps + 1), desc="overfit 8 pages", unit="step")
    for step in progress:
        cap = CURRICULUM.lines_at((step - 1) * PAGES)
        full = cap == FULL
        images, targets = batch(None if full else cap)
        with precision(args.precision):
            loss = model._losses(images, targets)["loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(network.parameters(), 0.5)
        optimizer.step()
        schedule.step()
        progress.set_postfix(loss=f"{loss.item():.3f}", lines=cap)
        if step % CHECK_EVERY and step != args.steps:
            continue
        if not full:
            history.append({"step": step, "cap": cap, "loss": loss.item()})
            continue
        with precision(args.precision):
            readings = read(network, full_images, pages)
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
        "pages": PAGES,
        "parameters": sum(p.numel() for p in network.parameters()),
        "full_page_chars": sum(len(t) for t in truth),
        "seconds": time.perf_counter() - start,
        "threads": args.threads,
        "lr": args.lr,
        "lr_schedule": f"cosine to lr/20 over {args.steps} steps",
        "precision": args.precision,
        "curriculum": [list(stage) for stage in CURRICULUM.stages],
        "history": history,
        "machine": machine(),
    }
    print(f"wrote {write('overfit_pages', result)}")


if __name__ == "__main__":
    main()
