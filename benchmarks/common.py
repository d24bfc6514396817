"""The two networks the experiments train, and the timing helpers both benchmarks share.

Networks are built from the Hydra network configs, so a benchmark measures what is trained.
"""

import contextlib
import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from text_recognizer.data import registry
from text_recognizer.network import ConvTransformer
from text_recognizer.tokenizer import Tokenizer
from training.precision import native_bf16_cpu
from training.run import network_config

ROOT = Path(__file__).parents[1]
RESULTS = Path(__file__).parent / "results"
NETWORKS = ROOT / "training" / "conf" / "network"


def _reading(network: str, datamodule: str) -> dict[str, Any]:
    """A network the experiments train, with its datamodule's input (the widest, for lines) and
    output length, read off the datamodule its yaml builds rather than restated here."""
    data = registry.DATASETS[datamodule]()
    return {
        "config": network,
        "datamodule": datamodule,
        "image": data.input_dims,
        "max_output_length": data.max_output_length,
    }


PARAGRAPH = _reading("conv_transformer_paragraphs", "iam_extended_paragraphs")
LINES = _reading("conv_transformer_lines", "synthetic_lines")


def build(config: dict[str, Any], tokenizer: Tokenizer | None = None) -> ConvTransformer:
    """The network as `training/conf/network/<config>.yaml` defines it, seeded, for `tokenizer`
    (by default the default charset's)."""
    torch.manual_seed(0)
    node = OmegaConf.load(NETWORKS / f"{config['config']}.yaml")
    assert isinstance(node, DictConfig)
    tokenizer = tokenizer or Tokenizer()
    network = instantiate(network_config(node, tokenizer, config["max_output_length"]))
    assert isinstance(network, ConvTransformer)
    return network


# The precisions worth timing on this CPU.
PRECISIONS = ("fp32", "bf16") if native_bf16_cpu() else ("fp32",)


@contextlib.contextmanager
def precision(name: str) -> Iterator[None]:
    """'fp32' as is, or 'bf16' autocast."""
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=name == "bf16"):
        yield


def best_of(fn: Callable[[], object], repeats: int) -> float:
    """Fastest of `repeats` timed calls after one warm-up: on a shared machine the minimum is
    the run least disturbed by others."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def checkpoint_name(path: Path) -> str:
    """The checkpoint as results should name it: relative to the working directory when inside
    it, else from its run folder on (`<run>/checkpoints/best.ckpt`), never this machine's path."""
    path = path.resolve()
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(Path(*path.parts[-3:]))


def machine() -> dict[str, Any]:
    """What was running beside the benchmark (the load average skews every figure), and the CPU's
    vector instructions, which decide what bf16 and int8 can gain."""
    return {
        "cpus": os.cpu_count(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "native_bf16": native_bf16_cpu(),
    }


def print_table(rows: list[dict[str, Any]]) -> None:
    columns = list(rows[0])
    cells = [[_cell(row[c]) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))


def _cell(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def write(name: str, results: dict[str, Any]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(results, indent=2) + "\n")
    return path
