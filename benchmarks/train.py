"""Training throughput: lines (or pages) a second of training, fp32 and bf16 side by side (bf16
only where the CPU computes it natively).

The line network is timed as users train it: `python main.py` (the default run), one process
per precision as a run is, alternated, each the seconds per optimizer step after its first
`skip` steps (new batch shapes, the allocator growing), with its data loading, logging and
checkpoints. Timing the same steps in a loop in one process favoured bf16 (1.02x fp32 there,
against 0.63-0.88x in real runs), so a loop cannot pick the precision (`training/precision.py`).
Without the line data built (`make generate`), and for the paragraph network (IAM), a loop
times worst-case batches (full input size, labels of the full output length) instead; it also
gives the line network's fp32 samples/s per batch size.
`python -m benchmarks.train --smoke` times one small step of each network in a loop.
"""

import argparse
import functools
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch

from benchmarks.common import (
    LINES,
    PARAGRAPHS,
    PRECISIONS,
    ROOT,
    Experiment,
    add_arguments,
    best_of,
    experiment,
    machine,
    precision,
    print_table,
    results_folder,
    write,
)

Step = Callable[[], None]
LIGHTNING_PRECISION = {"fp32": "32-true", "bf16": "bf16-mixed"}


@dataclass(frozen=True)
class Settings:
    """How much is timed; `tokens` None: labels of the network's whole output length."""

    threads: tuple[int, ...]
    batches: dict[str, int | None]  # per network; None: its datamodule's batch size
    repeats: dict[str, int]
    line_batches: tuple[int, ...]  # the line network's fp32 samples/s per batch size
    line_samples: int  # ... each over this many samples
    tokens: int | None
    run_steps: int  # real runs of the line network: steps, of which the first `run_skip` ...
    run_skip: int  # ... are not timed
    run_rounds: int  # runs per precision, alternated


FULL = Settings(
    threads=(1, 2),
    batches={"line": None, "paragraph": 2},
    repeats={"line": 4, "paragraph": 2},
    line_batches=(8, 16, 32),
    line_samples=64,
    tokens=None,
    run_steps=700,
    run_skip=200,
    run_rounds=2,
)
SMOKE = Settings(
    threads=(2,),
    batches={"line": 2, "paragraph": 1},
    repeats={"line": 1, "paragraph": 1},
    line_batches=(1, 2),
    line_samples=2,
    tokens=8,
    run_steps=0,  # no real runs
    run_skip=0,
    run_rounds=0,
)
NETWORKS = {"line": LINES, "paragraph": PARAGRAPHS}


class StepTimer(pl.Callback):
    """Writes the seconds per optimizer step after the first `skip` to `path` (JSON) when
    training ends; `main.py` adds it as `+callbacks.step_timer._target_=...`."""

    def __init__(self, skip: int, path: str) -> None:
        self.skip = skip
        self.path = Path(path)
        self.start: float | None = None

    def on_train_batch_start(self, trainer: pl.Trainer, *args: Any) -> None:
        if trainer.global_step == self.skip and self.start is None:
            self.start = time.perf_counter()

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.start is None:
            raise RuntimeError(f"the run stopped before step {self.skip}")
        steps = trainer.global_step - self.skip
        seconds = (time.perf_counter() - self.start) / steps
        self.path.write_text(json.dumps({"steps": steps, "seconds_per_step": seconds}))


def real_run(name: str, steps: int, skip: int, overrides: Sequence[str] = ()) -> float:
    """Seconds per step of `python main.py OVERRIDES` in precision `name`, a process of its own,
    after `skip` steps."""
    with tempfile.TemporaryDirectory() as folder:
        timings = Path(folder) / "steps.json"
        command = [
            sys.executable,
            "main.py",
            *overrides,
            f"trainer.max_steps={steps}",
            f"trainer.precision={LIGHTNING_PRECISION[name]}",
            "test=false",
            "logger=csv",
            f"hydra.run.dir={folder}/run",
            "+trainer.enable_progress_bar=false",
            "+callbacks.step_timer._target_=benchmarks.train.StepTimer",
            f"+callbacks.step_timer.skip={skip}",
            f"+callbacks.step_timer.path={timings}",
        ]
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
        return float(json.loads(timings.read_text())["seconds_per_step"])


def real_training(composed: Experiment, settings: Settings) -> dict[str, Any]:
    """Lines/s of the default run's real training per precision, the best of its runs."""
    seconds: dict[str, list[float]] = {name: [] for name in PRECISIONS}
    for _ in range(settings.run_rounds):
        for name in PRECISIONS:
            seconds[name].append(real_run(name, settings.run_steps, settings.run_skip))
    batch = composed.datamodule.batch_size
    best = {name: batch / min(times) for name, times in seconds.items()}
    fp32, bf16 = best["fp32"], best.get("bf16")
    return {
        **composed.describe(),
        "batches": "main.py",
        "batch": batch,
        "steps_timed": settings.run_steps - settings.run_skip,
        "seconds_per_step": seconds,
        "fp32_samples_per_s": fp32,
        "bf16_samples_per_s": bf16,
        "bf16_vs_fp32": bf16 / fp32 if bf16 else None,
    }


def trainer(composed: Experiment, tokens: int | None) -> tuple[int, Callable[[int, str], Step]]:
    """The network's parameter count, and a function that gives one training step of it (loss,
    backward, clipping, optimizer) on a fixed worst-case batch of a size in a precision."""
    network = composed.network().train()
    model = composed.model(network)
    optimizer = model.configure_optimizers()
    assert isinstance(optimizer, torch.optim.Optimizer)
    length = tokens or network.max_output_length
    clip = composed.config.trainer.gradient_clip_val

    def at(batch: int, name: str) -> Step:
        images = torch.randn(batch, *composed.image)
        targets = torch.randint(4, network.num_tokens, (batch, length))
        targets[:, 0], targets[:, -1] = network.start_index, network.end_index

        def step() -> None:
            with precision(name):
                value = model._losses(images, targets)["loss"]
            optimizer.zero_grad(set_to_none=True)
            value.backward()
            if clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
            optimizer.step()

        return step

    return network.num_parameters(), at


def throughput(
    composed: Experiment, batch: int, repeats: int, settings: Settings
) -> dict[str, Any]:
    """Best samples/s per precision over the thread counts (on a shared machine 1 can win)."""
    parameters, at = trainer(composed, settings.tokens)
    variants: list[dict[str, Any]] = []
    for threads in settings.threads:
        torch.set_num_threads(threads)
        for name in PRECISIONS:
            samples = batch / best_of(at(batch, name), repeats)
            variants.append(
                {
                    "threads": threads,
                    "precision": name,
                    "samples_per_s": samples,
                    "steps_per_s": samples / batch,
                }
            )
    best = {
        name: max(v["samples_per_s"] for v in variants if v["precision"] == name)
        for name in PRECISIONS
    }
    fp32, bf16 = best["fp32"], best.get("bf16")
    return {
        **composed.describe(),
        "batches": "worst case",
        "batch": batch,
        "tokens": (settings.tokens or composed.max_output_length) - 1,
        "parameters": parameters,
        "fp32_samples_per_s": fp32,
        "bf16_samples_per_s": bf16,
        "bf16_vs_fp32": bf16 / fp32 if bf16 else None,
        "variants": variants,
    }


def batch_sizes(composed: Experiment, settings: Settings) -> dict[str, float]:
    """fp32 samples/s per batch size, each timed over the same samples, at 2 threads."""
    torch.set_num_threads(2)
    _, at = trainer(composed, settings.tokens)
    samples = settings.line_samples
    result = {}
    for batch in settings.line_batches:
        steps = functools.partial(repeat, at(batch, "fp32"), samples // batch)
        result[str(batch)] = samples / best_of(steps, 2)
    return result


def repeat(step: Step, times: int) -> None:
    for _ in range(times):
        step()


def data_built(composed: Experiment) -> bool:
    return all(path.exists() for path in composed.datamodule.paths)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_arguments(parser)
    args = parser.parse_args(argv)
    settings = SMOKE if args.smoke else FULL
    composed = {name: experiment(*overrides) for name, overrides in NETWORKS.items()}
    results: dict[str, Any] = {}
    for name, network in composed.items():
        if name == "line" and settings.run_rounds and data_built(network):
            results[name] = real_training(network, settings)
        else:
            batch = settings.batches[name] or network.datamodule.batch_size
            results[name] = throughput(network, batch, settings.repeats[name], settings)
    results["line_batch_sizes"] = batch_sizes(composed["line"], settings)
    variants = [{"network": n, **v} for n in NETWORKS for v in results[n].get("variants", [])]
    if variants:
        print_table(variants)
    for name in NETWORKS:
        r = results[name]
        bf16 = (
            f"bf16 {r['bf16_samples_per_s']:.2f} ({r['bf16_vs_fp32']:.2f}x)"
            if r["bf16_samples_per_s"]
            else "bf16 not timed (emulated on this CPU)"
        )
        print(
            f"{name} ({r['batches']}, batches of {r['batch']}): "
            f"fp32 {r['fp32_samples_per_s']:.2f} samples/s, {bf16}"
        )
    sizes = results["line_batch_sizes"]
    print("line fp32 samples/s by batch: " + ", ".join(f"{b}: {v:.1f}" for b, v in sizes.items()))
    write("train", {**results, "machine": machine()}, results_folder(args))


if __name__ == "__main__":
    main()
