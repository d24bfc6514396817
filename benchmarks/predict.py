"""Prediction throughput through the API: images/s for lines at batch 1, 8 and 32 and for
paragraphs at batch 1 and 8, the network (PyTorch, eager) and its ONNX export (onnxruntime),
each in fp32 and with int8 linear layers (`--quantize int8`), side by side.

Lines are read as the default experiment reads them, pages as
`+experiment=conv_transformer_paragraphs` does: its network, input size, stem and output length.
Random weights with the end token suppressed, so every image the attention decoder reads
decodes exactly `tokens` tokens: every token of the line datamodule's output length; for
paragraphs a bound of 128 (a full page's decoding costs about its output length over 128 times
as much; `decode.json` measures it). The line network is also read with its CTC head alone
(`ctc`, `ctc_int8`, `onnx_ctc`: one encoder pass and no token loop, so no `tokens`). Lines are
rendered as the line datamodule renders its own (its height, width, text length and
variation), cropped per batch as in validation; pages are noise of the page datamodule's size
(their size, not their content, sets the cost).
`python -m benchmarks.predict --smoke` reads one image of each a few tokens deep, eager only (the
ONNX export has its own tests: tests/test_export.py).
"""

import argparse
import dataclasses
import functools
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import numpy as np
import torch

from benchmarks.common import (
    LINES,
    PARAGRAPHS,
    Experiment,
    add_arguments,
    best_of,
    experiment,
    machine,
    print_table,
    results_folder,
    write,
)
from text_recognizer.data.synthetic.fonts import load_fonts
from text_recognizer.data.synthetic.lines import SyntheticLines
from text_recognizer.data.synthetic.render import Augmentation, render_line
from text_recognizer.data.synthetic.text import sample_line
from text_recognizer.inference import Recognizer, TextRecognizer, load_recognizer
from text_recognizer.inference.export import export

# One packaged font, so that the lines do not depend on the fonts a machine has fetched.
LINE_FONT = "kalam"


def line_images(lines: Experiment, count: int) -> list[np.ndarray]:
    """`count` lines drawn as the experiment's synthetic lines are: the same height, width,
    text length and kinds of variation."""
    datamodule = lines.datamodule
    if not isinstance(datamodule, SyntheticLines):
        raise TypeError(f"lines are rendered for SyntheticLines, not {type(datamodule).__name__}")
    config = datamodule.config
    aug = Augmentation(strength=config.augmentation_strength, kinds=frozenset(config.augmentations))
    rng = np.random.default_rng(0)
    font = load_fonts([LINE_FONT])[0]
    images: list[np.ndarray] = []
    while len(images) < count:
        text = sample_line(rng, config.max_text_length)
        line = render_line(text, font, rng, config.height, config.width, aug)
        if line is not None:
            images.append(line)
    return images


def page_images(pages: Experiment, count: int) -> list[np.ndarray]:
    """`count` pages of noise, of the experiment's page size."""
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, pages.image[1:], dtype=np.uint8) for _ in range(count)]


@dataclass(frozen=True)
class Kind:
    """An experiment whose network and evaluation transform are timed, its images, and how."""

    overrides: tuple[str, ...]
    images: Callable[[Experiment, int], list[np.ndarray]]
    tokens: int | None  # decoded per image; None: the datamodule's whole output length
    repeats: int
    count: int
    batches: tuple[int, ...]
    onnx: bool = True  # the exported runtimes too (an export costs a minute on 2 cores)

    def smoke(self) -> Self:
        """One image, a few tokens deep, eager: checks the code in seconds."""
        return dataclasses.replace(self, tokens=4, repeats=1, count=1, batches=(1,), onnx=False)


KINDS = {
    "lines": Kind(LINES, line_images, None, repeats=2, count=32, batches=(1, 8, 32)),
    "paragraphs": Kind(PARAGRAPHS, page_images, 128, repeats=1, count=8, batches=(1, 8)),
}


def recognizers(
    composed: Experiment, tokens: int, folder: Path, onnx: bool = True
) -> dict[str, Recognizer]:
    """The network in eager fp32 and int8, and with `onnx` its export into `folder` in fp32 and
    int8, reading through the transform a checkpoint of the experiment records."""
    network = composed.network()
    with torch.no_grad():  # never end: every image costs exactly `tokens` steps
        network.decoder.to_logits.bias[network.end_index] = float("-inf")
    spec = composed.spec()
    eager = TextRecognizer(network, spec, max_length=tokens)
    found: dict[str, Recognizer] = {
        "eager": eager,
        "eager_int8": TextRecognizer(network, spec, max_length=tokens, quantize="int8"),
    }
    if onnx:
        for name, quantize in (("onnx", None), ("onnx_int8", "int8")):
            export(eager, "onnx", folder / name, quantize)
            found[name] = load_recognizer(folder / name, max_length=tokens)
    if network.ctc_head is not None:  # one encoder pass, no token loop: the bulk-reading path
        ctc = TextRecognizer(network, spec, decoder="ctc")
        found["ctc"] = ctc
        found["ctc_int8"] = TextRecognizer(network, spec, decoder="ctc", quantize="int8")
        if onnx:
            export(ctc, "onnx", folder / "onnx_ctc", None)
            found["onnx_ctc"] = load_recognizer(folder / "onnx_ctc")
    return found


def measure(name: str, kind: Kind, composed: Experiment) -> list[dict[str, Any]]:
    tokens = kind.tokens or composed.max_output_length
    images = kind.images(composed, kind.count)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for runtime, recognizer in recognizers(composed, tokens, Path(folder), kind.onnx).items():
            for batch in kind.batches:
                read = functools.partial(recognizer.predict_batch, images, batch)
                seconds = best_of(read, kind.repeats)
                rows.append(
                    {
                        "kind": name,
                        "runtime": runtime,
                        "decoder": recognizer.decoder,
                        "batch": batch,
                        "tokens": tokens if recognizer.decoder == "joint" else None,
                        "images": kind.count,
                        "seconds": seconds,
                        "images_per_s": kind.count / seconds,
                    }
                )
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_arguments(parser)
    args = parser.parse_args(argv)
    kinds = {name: kind.smoke() if args.smoke else kind for name, kind in KINDS.items()}
    composed = {name: experiment(*kind.overrides) for name, kind in kinds.items()}
    rows = [row for name, kind in kinds.items() for row in measure(name, kind, composed[name])]
    print_table(rows)
    speedups = {
        f"{row['kind']}_batch{row['batch']}_{row['runtime']}_over_eager": row["images_per_s"]
        / next(
            r["images_per_s"]
            for r in rows
            if (r["kind"], r["batch"], r["runtime"]) == (row["kind"], row["batch"], "eager")
        )
        for row in rows
        if row["runtime"] != "eager"
    }
    results = {
        "note": "random weights, end token suppressed: each image decodes exactly `tokens` "
        "tokens (paragraphs bounded to 128 of their output length); images/s through "
        "predict_batch, preprocessing included",
        "threads": torch.get_num_threads(),
        "experiments": {name: c.describe() for name, c in composed.items()},
        "rows": rows,
        "speedups": speedups,
        "machine": machine(),
    }
    for key, ratio in speedups.items():
        print(f"{key}: {ratio:.2f}x")
    write("predict", results, results_folder(args))


if __name__ == "__main__":
    main()
