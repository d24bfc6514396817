"""Does each kind of variation earn its place? Train the default line reader once per arm (none,
then each kind alone) on a short budget, and read two fixed held-out test sets with each: the
default's plain one and one rendered with all six kinds (a scan-like one).

Each arm is a real `main.py` run (its own rendered data, validation picking best.ckpt), so it
costs a few minutes on 2 cores. Results go to `benchmarks/results/augmentations.json`.

    python -m benchmarks.augmentations [--arms none,glyph,ink] [--steps 2000] [--train-size 8000]
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.common import machine, print_table, write
from text_recognizer.data import registry
from text_recognizer.data.synthetic.render import KINDS
from text_recognizer.data.synthetic_lines import SyntheticLines
from text_recognizer.inference import TextRecognizer
from text_recognizer.inference.evaluate import evaluate

ROOT = Path(__file__).resolve().parent.parent


def lines(**values: Any) -> SyntheticLines:
    """synthetic_lines.yaml's datamodule (what the arms train on), with `values` in its place."""
    built = registry.configured("synthetic_lines")(**values)
    assert isinstance(built, SyntheticLines)
    return built


def test_sets() -> dict[str, SyntheticLines]:
    """The held-out test lines plain (the default's) and with every kind; only the test split
    matters, whose bytes do not depend on the other splits' sizes."""
    return {
        "plain": lines(),
        "six": lines(train_size=8, val_size=8, augmentations=list(KINDS)),
    }


def train(arm: str, steps: int, train_size: int, runs: Path) -> Path:
    kinds = "" if arm == "none" else arm
    run = runs / f"{arm}-{steps}"
    overrides = [
        f"hydra.run.dir={run}",
        f"datamodule.train_size={train_size}",
        f"datamodule.augmentations=[{kinds}]",
        f"trainer.max_steps={steps}",
        "trainer.max_epochs=-1",
        "test=false",
        "logger=csv",
    ]
    subprocess.run([sys.executable, "main.py", *overrides], cwd=ROOT, check=True)
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--arms", default=",".join(["none", *KINDS]))
    parser.add_argument("--steps", type=int, default=2000, help="optimizer steps an arm")
    parser.add_argument("--train-size", type=int, default=8000, help="training lines an arm")
    parser.add_argument("--runs", type=Path, default=ROOT / "runs" / "augmentations")
    args = parser.parse_args()
    arms = args.arms.split(",")
    for arm in arms:
        if arm != "none" and arm not in KINDS:
            parser.error(f"--arms: unknown {arm!r}; choose from none, {', '.join(KINDS)}")
    tests = test_sets()  # read once, for every arm
    rows: list[dict[str, Any]] = []
    for arm in arms:
        started = time.perf_counter()
        run = train(arm, args.steps, args.train_size, args.runs)
        recognizer = TextRecognizer.from_pretrained(str(run / "checkpoints" / "best.ckpt"))
        metrics = json.loads((run / "metrics.json").read_text())
        row: dict[str, Any] = {
            "arm": arm,
            "val_cer_best": round(metrics["val/cer_best"], 4),
            "wall_s": round(time.perf_counter() - started, 1),
        }
        for name, datamodule in tests.items():
            report = evaluate(recognizer, datamodule, run / f"test-{name}", source=str(run))
            row[f"test_{name}"] = round(report["cer"], 4)
        rows.append(row)
    print_table(rows)
    config = {"steps": args.steps, "train_size": args.train_size, "batch_size": 8}
    path = write("augmentations", {"machine": machine(), "config": config, "arms": rows})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
