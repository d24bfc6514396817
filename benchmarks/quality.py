"""Reading quality against time: each decoder on the same checkpoint and the same held-out test
lines, and int8 against fp32.

`python -m benchmarks.quality --checkpoint CKPT` reads the first `--lines` (500) lines of the
test split of the checkpoint's datamodule (the held-out font families for the synthetic lines)
with the attention decoder (`joint`: greedy, beam 5, beam 5 with the character language model)
and, where the network has a CTC head, with that head alone (`ctc`: best path, and a prefix
beam of 5 with the language model); then the whole split with each decoder's best path in fp32
and in int8. The language model is `--lm`, or the default one (`make generate` builds it, as
`text-recognizer lm train --if-missing` does), built here if missing. Writes
`benchmarks/results/quality.json`. `--smoke` reads 4 lines with each decoder and 8 of the
split, with an order-3 model of 100 lines: it checks the code on any checkpoint.
"""

import argparse
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torchmetrics.functional.text import char_error_rate

from benchmarks.common import (
    add_arguments,
    checkpoint_name,
    machine,
    print_table,
    results_folder,
    write,
)
from text_recognizer.data import lm_corpus
from text_recognizer.data.lm_corpus import ORDER, SYNTHETIC_LINES, synthetic_corpus
from text_recognizer.data.paths import data_root
from text_recognizer.decode import BeamOptions
from text_recognizer.inference import Recognizer, TextRecognizer, load_recognizer
from text_recognizer.lm import LM_WEIGHT, load_token_lm, train, write_arpa

BATCH = 8


@dataclass(frozen=True)
class Settings:
    """How much is read, and the language model built when none is given."""

    lines: int  # the first test lines, read with each decoder
    split_lines: int | None  # the test split read greedily in fp32 and int8 (None: all)
    lm_lines: int
    lm_order: int


FULL = Settings(lines=500, split_lines=None, lm_lines=SYNTHETIC_LINES, lm_order=ORDER)
SMOKE = Settings(lines=4, split_lines=8, lm_lines=100, lm_order=3)


def default_lm(lines: int, order: int) -> Path:
    """The default language model (`make generate` builds it), or a smaller one of the same
    source; built here if not yet there."""
    path = data_root() / "lm" / f"synthetic-{lines}-order{order}.arpa"
    if (lines, order) == (FULL.lm_lines, FULL.lm_order):
        path = lm_corpus.default_lm()
    if not path.is_file():
        print(f"building {path} ({lines} lines of synthetic text, order {order})")
        write_arpa(train(synthetic_corpus(lines), order), path)
    return path


def read(
    recognizer: Recognizer, images: list[Any], texts: list[str], beam: BeamOptions | None
) -> dict[str, float]:
    fitted = [recognizer.fit(image) for image in images]
    began = time.perf_counter()
    predictions = [p.text for p in recognizer.predict_fitted(fitted, BATCH, beam=beam)]
    seconds = time.perf_counter() - began
    return {
        "lines": len(texts),
        "cer": float(char_error_rate(predictions, texts)),
        "seconds_per_line": seconds / len(texts),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--lines", type=int, help="test lines for the beams (default: 500)")
    parser.add_argument("--lm", help="an ARPA file (default: built from the synthetic text)")
    parser.add_argument("--lm-weight", type=float, default=LM_WEIGHT)
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    add_arguments(parser)
    args = parser.parse_args(argv)
    settings = SMOKE if args.smoke else FULL
    lines = args.lines or settings.lines
    if args.threads:
        torch.set_num_threads(args.threads)
    decoders = ["joint"]
    joint = load_recognizer(args.checkpoint)
    assert isinstance(joint, TextRecognizer)
    if joint.network.ctc_head is not None:
        decoders.append("ctc")
    datamodule = joint.spec.build_datamodule(args.checkpoint)
    datamodule.prepare_data()
    datamodule.setup("test")
    data = datamodule.data_test
    images = list(data.images[: settings.split_lines])
    texts = list(data.texts[: settings.split_lines])
    lm_path = Path(args.lm) if args.lm else default_lm(settings.lm_lines, settings.lm_order)
    lm = load_token_lm(lm_path, joint.tokenizer)
    subset = (images[:lines], texts[:lines])
    beam, fused = BeamOptions(5), BeamOptions(5, lm, args.lm_weight)
    searches = {
        "greedy": ("joint", None),
        "beam5": ("joint", beam),
        "beam5_lm": ("joint", fused),
        "ctc": ("ctc", None),
        "ctc_beam5_lm": ("ctc", fused),
    }
    rows = []
    results: dict[str, Any] = {}
    whole: dict[str, Any] = {}
    for decoder in decoders:
        fp32 = joint if decoder == "joint" else load_recognizer(args.checkpoint, decoder=decoder)
        for name, (kind, search) in searches.items():
            if kind == decoder:
                results[name] = read(fp32, *subset, search)
                rows.append({"decoder": name, "split": f"test[:{lines}]", **results[name]})
        int8 = load_recognizer(args.checkpoint, quantize="int8", decoder=decoder)
        for precision, recognizer in (("fp32", fp32), ("int8", int8)):
            name = precision if decoder == "joint" else f"{decoder}_{precision}"
            whole[name] = read(recognizer, images, texts, None)
            rows.append(
                {"decoder": f"{decoder} best path {precision}", "split": "test", **whole[name]}
            )
    print_table(rows)
    gain = results["greedy"]["cer"] - results["beam5_lm"]["cer"]
    cost = whole["int8"]["cer"] - whole["fp32"]["cer"]
    print(
        f"beam 5 + LM: CER {results['beam5_lm']['cer']:.4f} against greedy "
        f"{results['greedy']['cer']:.4f} ({gain:+.4f} lower) on the first {lines} test "
        f"lines; int8 costs {cost:+.4f} CER against fp32 on all {len(texts)}"
    )
    if "ctc" in decoders:
        print(
            f"ctc best path: CER {whole['ctc_fp32']['cer']:.4f} in "
            f"{whole['ctc_fp32']['seconds_per_line'] * 1000:.1f} ms a line, against the "
            f"attention decoder's {whole['fp32']['cer']:.4f} in "
            f"{whole['fp32']['seconds_per_line'] * 1000:.1f} ms, on all {len(texts)}"
        )
    out = {
        "checkpoint": checkpoint_name(Path(args.checkpoint)),
        "datamodule": type(datamodule).__name__,
        "subset": f"the first {len(subset[1])} lines of the test split",
        "batch": BATCH,
        "threads": torch.get_num_threads(),
        "lm": {"file": lm_path.name, "order": lm.model.order, "weight": args.lm_weight},
        "length_norm": BeamOptions().length_norm,
        **results,
        "decoders": decoders,
        "test_split": {**whole, "int8_minus_fp32_cer": cost},
        "machine": machine(),
    }
    write("quality", out, results_folder(args))


if __name__ == "__main__":
    main()
