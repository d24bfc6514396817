"""Lines longer than the model's input: read in windows at the training height against shrunk
to fit it (as inference did before), and against a wider input read by the CTC head alone.

    python -m benchmarks.long_lines --checkpoint runs/<run>/checkpoints/best.ckpt

Long lines are built from the held-out `plain` test lines (`benchmarks.heldout`): consecutive
lines of one font family, each cut to its ink, joined with a word gap until the line is at
least `--min-width` px wide at 48 px, then scaled to `SCAN_HEIGHT` px high, as a scan holds
them (a 2,400 x 100 line); their texts joined by spaces. `--lines` of them, the families in
turn. Each is read:

- `shrunk`: the line stem's width limit (the line shrunk to fit the input), the joint decoder;
- `windows`: what `predict` does: the height kept, cut at gaps into windows, the joint decoder;
- `windows_ctc`: the same windows, read by the CTC head alone (`--decoder ctc`);
- `wide`: the height kept and the whole line in one input, the joint decoder (which writes at
  most `max_output_length` tokens, and has learnt no positions past them);
- `wide_ctc`: the same input, read by the CTC head alone (as many characters as columns);
- `source`: the short lines they were built from, each read alone, for reference.

CER is torchmetrics' over all lines (as `evaluate`), seconds are per long line on one thread.
Writes `benchmarks/results/long_lines.json`. `--smoke` joins 2 long lines from the 8 lines of
the smoke set, whatever their families: it checks the code on any checkpoint.
"""

import argparse
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torchmetrics.functional.text import char_error_rate

from benchmarks.common import (
    add_arguments,
    checkpoint_name,
    machine,
    print_table,
    results_folder,
    write,
)
from benchmarks.heldout import datamodule
from text_recognizer.data.transforms.ink import content_widths, ink_mask
from text_recognizer.decode import decode_images
from text_recognizer.inference import Recognizer, TextRecognizer, load_recognizer

SCAN_HEIGHT = 100
WORD_GAP = 16
"""Paper between joined lines at 48 px: a wide word gap of the held-out fonts."""


def long_lines(
    images: np.ndarray, texts: list[str], families: list[str], count: int, min_width: int
) -> list[tuple[np.ndarray, str, list[int]]]:
    """`count` long lines (uint8 image, text, the indices of the lines joined), families in turn;
    each joins two lines or more, until it is at least `min_width` px wide."""
    widths = content_widths(images)
    queues = {f: [i for i, g in enumerate(families) if g == f] for f in dict.fromkeys(families)}
    built: list[tuple[np.ndarray, str, list[int]]] = []
    while len(built) < count and any(queues.values()):
        for queue in queues.values():
            joined: list[int] = []
            while queue and (
                len(joined) < 2 or sum(widths[i] + WORD_GAP for i in joined) < min_width
            ):
                joined.append(queue.pop(0))
            if len(joined) > 1 and len(built) < count:
                built.append(
                    (_join(images, widths, joined), " ".join(texts[i] for i in joined), joined)
                )
    return built


def _join(images: np.ndarray, widths: np.ndarray, joined: list[int]) -> np.ndarray:
    paper = np.full((images.shape[1], WORD_GAP), 255, dtype=np.uint8)
    parts = []
    for i in joined:
        first = int(np.argmax(ink_mask(images[i]).any(axis=0)))
        parts += [images[i][:, first : widths[i]], paper]
    line = Image.fromarray(np.concatenate([paper, *parts], axis=1))
    scale = SCAN_HEIGHT / line.height
    return np.asarray(
        line.resize((round(line.width * scale), SCAN_HEIGHT), Image.Resampling.LANCZOS)
    )


def timed(read: Callable[[], list[str]], lines: int) -> tuple[list[str], float]:
    began = time.perf_counter()
    texts = read()
    return texts, (time.perf_counter() - began) / lines


def wide(recognizer: TextRecognizer, images: list[np.ndarray], decoder: str) -> list[str]:
    """Each line in one input at the training height, one at a time: the CTC head reads as many
    characters as the columns allow, the joint decoder at most the model's output length."""
    stem, network = recognizer.transform.stem, recognizer.network
    texts = []
    with torch.inference_mode():
        for image in images:
            fitted = torch.from_numpy(stem.fit(image, any_width=True))
            batch = (1.0 - fitted.float() / 255.0)[None, None]  # as the stem inverts
            longest = batch.shape[-1] if decoder == "ctc" else recognizer.max_length
            tokens = decode_images(network, batch, decoder, max_length=longest)
            texts += recognizer.tokenizer.decode_batch(tokens)
    return texts


def shrunk(recognizer: Recognizer, images: list[np.ndarray]) -> list[str]:
    """The line stem as it fits training lines: a long line shrunk to the input's width."""
    fitted = [recognizer.transform.stem.fit(image) for image in images]
    return [p.text for p in recognizer.predict_fitted(fitted)]


def measure(checkpoint: Path, count: int, min_width: int, smoke: bool) -> dict[str, Any]:
    data = datamodule("plain", smoke)
    data.setup("test")
    test = data.data_test
    families = ["any"] * len(test) if smoke else data.groups("test")  # 8 lines, 16 families
    built = long_lines(test.images, test.texts, families, count, min_width)
    images, targets = [image for image, _, _ in built], [text for _, text, _ in built]
    joint = load_recognizer(checkpoint)
    ctc = load_recognizer(checkpoint, decoder="ctc")
    assert isinstance(joint, TextRecognizer) and isinstance(ctc, TextRecognizer)
    sources = [i for _, _, joined in built for i in joined]
    reads: dict[str, tuple[Callable[[], list[str]], list[str]]] = {
        "shrunk": (lambda: shrunk(joint, images), targets),
        "windows": (lambda: joint.predict_batch(images), targets),
        "windows_ctc": (lambda: ctc.predict_batch(images), targets),
        "wide": (lambda: wide(joint, images, "joint"), targets),
        "wide_ctc": (lambda: wide(ctc, images, "ctc"), targets),
        "source": (
            lambda: joint.predict_batch([test.images[i] for i in sources]),
            [test.texts[i] for i in sources],
        ),
    }
    results: dict[str, Any] = {}
    for name, (read, expected) in reads.items():
        texts, seconds = timed(read, len(images))
        results[name] = {
            "cer": round(float(char_error_rate(texts, expected)), 4),
            "seconds_per_long_line": round(seconds, 4),
            "examples": [
                {"target": t, "read": r} for t, r in zip(expected[:2], texts[:2], strict=True)
            ],
        }
    sizes = np.array([image.shape[::-1] for image in images])
    return {
        "checkpoint": checkpoint_name(checkpoint),
        "lines": len(images),
        "joined_lines": len(sources),
        "width_px": [int(sizes[:, 0].min()), int(np.median(sizes[:, 0])), int(sizes[:, 0].max())],
        "height_px": SCAN_HEIGHT,
        "characters": [int(np.median([len(t) for t in targets])), max(len(t) for t in targets)],
        "torch_threads": torch.get_num_threads(),
        "reads": results,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--lines", type=int, default=100)
    parser.add_argument("--min-width", type=int, default=800, help="px at the 48 px height")
    add_arguments(parser)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    count, min_width = (2, 0) if args.smoke else (args.lines, args.min_width)
    results = measure(args.checkpoint, count, min_width, args.smoke)
    print_table(
        [{"read": name, **{k: v for k, v in row.items() if k != "examples"}}
         for name, row in results["reads"].items()]
    )  # fmt: skip
    write("long_lines", {"machine": machine(), **results}, results_folder(args))


if __name__ == "__main__":
    main()
