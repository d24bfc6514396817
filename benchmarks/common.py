"""What the benchmarks share: the experiments they measure, composed as `main.py` composes them,
the timing helpers, the flags every benchmark takes, and where results go.

Networks, input sizes and output lengths come from the composed Hydra config of an experiment,
so a benchmark measures what that experiment trains, and fails when the two no longer match.
"""

import argparse
import contextlib
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from text_recognizer.data.base import BaseDataModule
from text_recognizer.io import atomic_path
from text_recognizer.model.lit_transformer import LitTransformer
from text_recognizer.network import ConvTransformer
from text_recognizer.spec import InferenceSpec
from training.run import network_config

ROOT = Path(__file__).parents[1]
RESULTS = Path(__file__).parent / "results"
CONFIGS = ROOT / "training" / "conf"

# The experiments measured, by the overrides that compose them on `main.py`'s command line.
LINES: tuple[str, ...] = ()  # the default run: synthetic lines, the 1.6M line reader
PARAGRAPHS = ("+experiment=conv_transformer_paragraphs",)  # IAM pages, the 21.7M reader


@dataclass
class Experiment:
    """A composed experiment's config and its datamodule, from which its network is built as
    `training/run.py` builds it: sizes and output length are the datamodule's."""

    overrides: tuple[str, ...]
    config: DictConfig
    datamodule: BaseDataModule

    @property
    def image(self) -> tuple[int, int, int]:
        """The largest input the network reads (training batches are cropped to content)."""
        return self.datamodule.input_dims

    @property
    def max_output_length(self) -> int:
        return self.datamodule.max_output_length

    @cached_property
    def network_config(self) -> DictConfig:
        datamodule = self.datamodule
        return network_config(self.config.network, datamodule.tokenizer, self.max_output_length)

    def network(self) -> ConvTransformer:
        """The network with seeded random weights."""
        torch.manual_seed(0)
        network = instantiate(self.network_config)
        assert isinstance(network, ConvTransformer)
        return network

    def model(self, network: ConvTransformer) -> LitTransformer:
        """`network` in the experiment's LightningModule: its loss (CTC weight, label smoothing)."""
        model = instantiate(
            self.config.model,
            network=network,
            optimizer=instantiate(self.config.optimizer),
            tokenizer=self.datamodule.tokenizer,
        )
        assert isinstance(model, LitTransformer)
        return model

    def describe(self) -> dict[str, Any]:
        """What the results were measured on."""
        return {
            "overrides": list(self.overrides),
            "datamodule": type(self.datamodule).__name__,
            "image": list(self.image),
            "max_output_length": self.max_output_length,
        }

    def spec(self) -> InferenceSpec:
        """What a checkpoint of this experiment records for inference."""
        return InferenceSpec.of_run(
            OmegaConf.to_container(self.network_config, resolve=True),
            OmegaConf.to_container(self.config.datamodule, resolve=True),
            self.datamodule,
        )


def experiment(*overrides: str) -> Experiment:
    """The experiment `python main.py OVERRIDES...` runs, with its datamodule built (nothing is
    read or rendered until its `prepare_data`)."""
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        config = compose(config_name="config", overrides=list(overrides))
    datamodule = instantiate(config.datamodule)
    assert isinstance(datamodule, BaseDataModule)
    return Experiment(overrides, config, datamodule)


def native_bf16_cpu() -> bool:
    """Whether this CPU has bf16 instructions (AVX-512 BF16 or AMX); without, it emulates bf16
    about 10x slower than fp32."""
    return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


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
    """What was running beside the benchmark (the load average skews every figure), and the CPU
    and its vector instructions, which decide what bf16 and int8 can gain."""
    return {
        "cpus": os.cpu_count(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        **cpu_info(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "native_bf16": native_bf16_cpu(),
    }


def cpu_info(path: Path = Path("/proc/cpuinfo")) -> dict[str, Any]:
    """The first CPU's model name and whether it has AVX2 and AVX-512 BF16, as the kernel lists
    them (None where it does not: not Linux)."""
    fields: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for line in path.read_text().splitlines():
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
    flags = fields["flags"].split() if "flags" in fields else None
    return {
        "cpu_model": fields.get("model name"),
        "avx2": None if flags is None else "avx2" in flags,
        "avx512_bf16": None if flags is None else "avx512_bf16" in flags,
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """--smoke and --out, which every benchmark takes."""
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="tiny settings, seconds not minutes: checks the code; writes only with --out",
    )
    parser.add_argument(
        "--out", type=Path, help=f"folder for the JSON (default: {RESULTS.relative_to(ROOT)})"
    )


def results_folder(args: argparse.Namespace) -> Path | None:
    """Where to write: --out, else the results folder, except for a smoke run (nowhere)."""
    return args.out or (None if args.smoke else RESULTS)


def print_table(rows: list[dict[str, Any]]) -> None:
    columns = list(rows[0])
    cells = [[_cell(row[c]) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))


def _cell(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def write(name: str, results: dict[str, Any], folder: Path | None) -> None:
    """`<folder>/<name>.json`, written whole or not at all; with no folder, print its start."""
    text = json.dumps(results, indent=2) + "\n"
    if folder is None:
        print(text[:600])
        return
    with atomic_path(folder / f"{name}.json") as tmp:
        tmp.write_text(text)
    print(f"wrote {folder / f'{name}.json'}")
