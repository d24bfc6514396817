"""What training time buys: held-out CER against training minutes, per recipe, from the curve
checkpoints a run saves on the way (`make train ARGS="callbacks=curve"` saves one every
`every_n_train_steps`) and its best checkpoint.

Each checkpoint is read on the plain and the scan-like held-out sets (`benchmarks.heldout`).
Minutes are the run's steps times the seconds a step takes on an idle machine (`--step-seconds`,
measured from an idle run of the same network and batch, validation included), so runs timed on a
shared machine still land on one axis. The points are checkpoints of one cosine schedule, not
separate runs of each length: a run as long as a point, with its schedule decayed, reads better.

    python -m benchmarks.learning_curve --run default=runs/base --run writers=runs/r1 \\
        --step-seconds 0.107

Writes `benchmarks/results/learning_curve.json` and `learning_curve.png`.
"""

import argparse
import re
from pathlib import Path
from typing import Any

import torch

from benchmarks.common import add_arguments, machine, print_table, results_folder, write
from benchmarks.heldout import read

SETS = ["plain", "scan"]


def checkpoints(run: Path) -> list[tuple[int, Path]]:
    """(step, path) of every curve checkpoint, in order."""
    found = []
    for path in (run / "curve").glob("*.ckpt"):
        match = re.fullmatch(r"step=(\d+)", path.stem)
        if match:
            found.append((int(match.group(1)), path))
    if not found:
        raise SystemExit(f"{run / 'curve'} holds no step=<N>.ckpt: train with +callbacks=curve")
    return sorted(found)


def curve(
    run: Path, step_seconds: float, every: int, smoke: bool, reuse: bool
) -> list[dict[str, Any]]:
    points = []
    for step, path in checkpoints(run)[every - 1 :: every]:
        results = read(path, SETS, smoke, reuse)
        points.append(
            {
                "steps": step,
                "minutes": round(step * step_seconds / 60, 1),
                "test_cer": results["plain"]["cer"],
                "scan_cer": results["scan"]["cer"],
            }
        )
    return points


def plot(recipes: dict[str, list[dict[str, Any]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6.4, 4))
    for (name, points), colour in zip(recipes.items(), ("C0", "C1", "C2", "C3"), strict=False):
        minutes = [p["minutes"] for p in points]
        axes.plot(minutes, [p["test_cer"] for p in points], "o-", color=colour,
                  label=f"{name}: plain held-out")  # fmt: skip
        axes.plot(minutes, [p["scan_cer"] for p in points], "s--", color=colour,
                  label=f"{name}: scan-like held-out")  # fmt: skip
    axes.set(xlabel="training minutes (2 CPU cores)", ylabel="test CER (greedy)", ylim=(0, None))
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", action="append", required=True, help="NAME=RUN_DIR")
    parser.add_argument("--step-seconds", type=float, required=True)
    parser.add_argument("--every", type=int, default=1, help="read every Nth checkpoint")
    parser.add_argument(
        "--reuse", action="store_true", help="read the reports already beside the checkpoints"
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    recipes = {}
    for spec in args.run:
        name, _, run = spec.partition("=")
        if not run:
            parser.error(f"--run {spec!r}: expected NAME=RUN_DIR")
        recipes[name] = curve(Path(run), args.step_seconds, args.every, args.smoke, args.reuse)
    print_table([{"recipe": name, **point} for name, points in recipes.items() for point in points])
    folder = results_folder(args)
    results = {"machine": machine(), "step_seconds": args.step_seconds, "recipes": recipes}
    write("learning_curve", results, folder)
    if folder:
        plot(recipes, folder / "learning_curve.png")


if __name__ == "__main__":
    main()
