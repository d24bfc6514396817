"""Prediction throughput through the API: images/s for lines at batch 1, 8 and 32 and for
paragraphs at batch 1 and 8, the network (PyTorch, eager) and its ONNX export (onnxruntime),
each in fp32 and with int8 linear layers (`--quantize int8`), side by side.

Random weights with the end token suppressed, so every image decodes exactly `tokens` tokens:
all 82 for lines; for paragraphs a bound of 128 of the 682 (a full page's decoding costs about
682/128 times as much; `decode.json` measures it). Lines are rendered sample text, cropped per
batch as in validation; pages are noise (their size, not their content, sets the cost).
`python -m benchmarks.predict --smoke` runs a few tokens once to check the code, writes nothing.
"""

import argparse
import functools
import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.common import LINES, PARAGRAPH, best_of, build, machine, print_table, write
from text_recognizer.data import registry
from text_recognizer.data.synthetic.fonts import load_fonts
from text_recognizer.data.synthetic.render import render_line
from text_recognizer.data.synthetic.text import sample_line
from text_recognizer.inference import InferenceSpec, Recognizer, TextRecognizer
from text_recognizer.inference.export import ExportedRecognizer, export

# Each network with the datamodule whose evaluation transform its experiment reads through.
KINDS: dict[str, dict[str, Any]] = {
    "lines": {
        **LINES,
        "tokens": LINES["max_output_length"],
        "repeats": 2,
        "images": 32,
        "batches": (1, 8, 32),
    },
    "paragraphs": {
        **PARAGRAPH,
        "tokens": 128,
        "repeats": 1,
        "images": 8,
        "batches": (1, 8),
    },
}


def line_images(count: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    font = load_fonts(["kalam"])[0]
    images: list[np.ndarray] = []
    while len(images) < count:
        line = render_line(sample_line(rng), font, rng, *LINES["image"][1:])
        if line is not None:
            images.append(line)
    return images


def page_images(count: int, shape: tuple[int, int, int]) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, shape[1:], dtype=np.uint8) for _ in range(count)]


def recognizers(kind: dict[str, Any], tokens: int, folder: Path) -> dict[str, Recognizer]:
    """The network in eager fp32 and int8, and its ONNX export in fp32 and int8."""
    network = build(kind)
    with torch.no_grad():  # never end: every image costs exactly `tokens` steps
        network.decoder.to_logits.bias[network.end_index] = float("-inf")
    datamodule = registry.DATASETS[kind["datamodule"]]()
    spec = InferenceSpec({}, datamodule.tokenizer.charset, datamodule.eval_transform.params())
    eager = TextRecognizer(network, spec, max_length=tokens)
    found: dict[str, Recognizer] = {
        "eager": eager,
        "eager_int8": TextRecognizer(network, spec, max_length=tokens, quantize="int8"),
    }
    for name, quantize in (("onnx", None), ("onnx_int8", "int8")):
        export(eager, "onnx", folder / name, quantize)
        found[name] = ExportedRecognizer(folder / name, max_length=tokens)
    return found


def measure(smoke: bool) -> list[dict[str, Any]]:
    rows = []
    for name, kind in KINDS.items():
        tokens = 4 if smoke else kind["tokens"]
        count = 2 if smoke else kind["images"]
        images = line_images(count) if name == "lines" else page_images(count, kind["image"])
        with tempfile.TemporaryDirectory() as folder:
            for runtime, recognizer in recognizers(kind, tokens, Path(folder)).items():
                for batch in kind["batches"]:
                    seconds = best_of(
                        functools.partial(recognizer.predict_batch, images, batch),
                        1 if smoke else kind["repeats"],
                    )
                    rows.append(
                        {
                            "kind": name,
                            "runtime": runtime,
                            "batch": batch,
                            "tokens": tokens,
                            "images": count,
                            "seconds": seconds,
                            "images_per_s": count / seconds,
                        }
                    )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny settings, nothing written")
    args = parser.parse_args()
    rows = measure(args.smoke)
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
        "tokens (paragraphs bounded to 128 of 682); images/s through predict_batch, "
        "preprocessing included",
        "threads": torch.get_num_threads(),
        "rows": rows,
        "speedups": speedups,
        "machine": machine(),
    }
    for key, ratio in speedups.items():
        print(f"{key}: {ratio:.2f}x")
    if args.smoke:
        print(json.dumps(results, indent=2)[:400])
    else:
        print(f"wrote {write('predict', results)}")


if __name__ == "__main__":
    main()
