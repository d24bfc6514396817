"""Does each kind of variation earn its place? Train the default line reader once per arm (none,
then each kind alone) on a short budget, and read two fixed held-out test sets with each: the
default's plain one and one rendered with all six kinds (a scan-like one).

Each arm is a real `main.py` run of the default experiment (its own rendered data, validation
picking best.ckpt), so it costs a few minutes on 2 cores; the test sets are the default
experiment's lines. Results go to `benchmarks/results/augmentations.json`. `--smoke` trains
the plain arm for 2 steps on 16 lines, with 2 lines to validate and test.

    python -m benchmarks.augmentations [--arms none,glyph,ink] [--steps 2000] [--train-size 8000]
"""

import argparse
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.common import (
    LINES,
    ROOT,
    add_arguments,
    experiment,
    machine,
    print_table,
    results_folder,
    write,
)
from text_recognizer.data.base import BaseDataModule
from text_recognizer.data.synthetic.render import KINDS
from text_recognizer.inference import load_recognizer
from text_recognizer.inference.evaluate import evaluate


@dataclass(frozen=True)
class Settings:
    """The arms and their budget; `overrides` of the runs' and the test sets' other splits."""

    arms: str
    steps: int
    train_size: int
    overrides: tuple[str, ...]


FULL = Settings(arms=",".join(["none", *KINDS]), steps=2000, train_size=8000, overrides=())
SMOKE = Settings(
    arms="none",
    steps=2,
    train_size=16,
    overrides=("datamodule.val_size=2", "datamodule.test_size=2"),
)


def test_sets(overrides: tuple[str, ...]) -> dict[str, BaseDataModule]:
    """The default experiment's held-out test lines plain, and with every kind; only the test
    split matters, whose bytes do not depend on the other splits' sizes."""
    small = ("datamodule.train_size=8", "datamodule.val_size=8", *overrides)
    six = f"datamodule.augmentations=[{','.join(KINDS)}]"
    return {
        "plain": experiment(*LINES, *small).datamodule,
        "six": experiment(*LINES, six, *small).datamodule,
    }


def train(arm: str, steps: int, train_size: int, overrides: tuple[str, ...], runs: Path) -> Path:
    kinds = "" if arm == "none" else arm
    run = runs / f"{arm}-{steps}"
    command = [
        *LINES,
        f"hydra.run.dir={run}",
        f"datamodule.train_size={train_size}",
        f"datamodule.augmentations=[{kinds}]",
        f"trainer.max_steps={steps}",
        "trainer.max_epochs=-1",
        "test=false",
        "logger=csv",
        *overrides,
    ]
    subprocess.run([sys.executable, "main.py", *command], cwd=ROOT, check=True)
    return run


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--arms", help="none and kinds, comma-separated (default: all)")
    parser.add_argument("--steps", type=int, help="optimizer steps an arm (default: 2000)")
    parser.add_argument("--train-size", type=int, help="training lines an arm (default: 8000)")
    parser.add_argument("--runs", type=Path, default=ROOT / "runs" / "augmentations")
    add_arguments(parser)
    args = parser.parse_args(argv)
    settings = SMOKE if args.smoke else FULL
    steps = args.steps or settings.steps
    train_size = args.train_size or settings.train_size
    arms = (args.arms or settings.arms).split(",")
    for arm in arms:
        if arm != "none" and arm not in KINDS:
            parser.error(f"--arms: unknown {arm!r}; choose from none, {', '.join(KINDS)}")
    tests = test_sets(settings.overrides)  # read once, for every arm
    rows: list[dict[str, Any]] = []
    for arm in arms:
        started = time.perf_counter()
        run = train(arm, steps, train_size, settings.overrides, args.runs)
        recognizer = load_recognizer(str(run / "checkpoints" / "best.ckpt"))
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
    config = {"steps": steps, "train_size": train_size, "batch_size": tests["plain"].batch_size}
    results = {"machine": machine(), "config": config, "arms": rows}
    write("augmentations", results, results_folder(args))


if __name__ == "__main__":
    main()
