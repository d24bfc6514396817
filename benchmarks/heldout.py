"""Read checkpoints on the fixed held-out sets every recipe is judged by.

All three are the 1,000 test lines of the 16 held-out font families (never trained on), drawn
the same way apart from one thing each:

- `plain`: clean renderings of word-frequency text, the default's test split as it was before
  any recipe change, so figures stay comparable across recipes;
- `scan`: the same kind of text as a scanned page shows it: thin pens pressed unevenly, white
  or grey paper, the scanner's blur and JPEG. It stands for what users read, so it decides;
- `sentences`: clean renderings of English sentences from held-out addresses, to see what
  learning the language buys.

    python -m benchmarks.heldout --checkpoint runs/<run>/checkpoints/best.ckpt [--name NAME]

Results go to `benchmarks/results/heldout.json`, one entry per `--name` (kept across calls).
"""

import argparse
import json
from pathlib import Path
from typing import Any

from benchmarks.common import (
    add_arguments,
    checkpoint_name,
    machine,
    print_table,
    results_folder,
    write,
)
from text_recognizer.data.registry import configured
from text_recognizer.data.synthetic.lines import SyntheticLines
from text_recognizer.inference import load_recognizer
from text_recognizer.inference.evaluate import evaluate

# Each set as overrides of the default datamodule; only its test split is read, and a split's
# bytes do not depend on the other splits' sizes.
SETS: dict[str, list[str]] = {
    "plain": ["augmentations=[]", "sentences=0"],
    "scan": ["augmentations=[pen,scan]", "sentences=0"],
    "sentences": ["augmentations=[]", "sentences=1"],
}
TEST_ONLY = ["train_size=8", "val_size=8"]
SMOKE = ["test_size=8"]


def datamodule(name: str, smoke: bool = False) -> SyntheticLines:
    built = configured("synthetic_lines", [*TEST_ONLY, *SETS[name], *(SMOKE if smoke else [])])()
    assert isinstance(built, SyntheticLines)
    if built.config.sentences and not built.config.text_sentences():
        raise SystemExit(f"heldout: the {name!r} set needs the English sentences: run `make fonts`")
    return built


def read(
    checkpoint: Path, sets: list[str], smoke: bool = False, reuse: bool = False
) -> dict[str, Any]:
    """Greedy CER and per-family CER of `checkpoint` on each set; reports go beside it, and with
    `reuse` a report already there is read instead of reading the set again."""
    recognizer = load_recognizer(str(checkpoint))
    results: dict[str, Any] = {"checkpoint": checkpoint_name(checkpoint)}
    for name in sets:
        out = checkpoint.with_name(f"{checkpoint.stem}-heldout-{name}")
        if reuse and (out / "report.json").is_file():
            report = json.loads((out / "report.json").read_text())
        else:
            report = evaluate(recognizer, datamodule(name, smoke), out, source=str(checkpoint))
        results[name] = {
            "cer": round(report["cer"], 4),
            "wer": round(report["wer"], 4),
            "seconds": report["seconds"],
            "per_family": {f: round(row["cer"], 4) for f, row in report["per_family"].items()},
        }
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--name", help="the entry in heldout.json (default: the checkpoint)")
    parser.add_argument("--sets", default=",".join(SETS), help="comma-separated")
    add_arguments(parser)
    args = parser.parse_args(argv)
    sets = args.sets.split(",")
    if unknown := sorted(set(sets) - set(SETS)):
        parser.error(f"--sets: unknown {', '.join(unknown)}; choose from {', '.join(SETS)}")
    results = read(args.checkpoint, sets, args.smoke)
    print_table([{"set": name, "cer": results[name]["cer"]} for name in sets])
    folder = results_folder(args)
    path = folder / "heldout.json" if folder else None
    entries = json.loads(path.read_text())["entries"] if path and path.is_file() else {}
    entries[args.name or results["checkpoint"]] = results
    write("heldout", {"machine": machine(), "entries": entries}, folder)


if __name__ == "__main__":
    main()
