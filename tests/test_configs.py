"""Every config composes, and the pieces it names can be built."""

import inspect
from pathlib import Path

import pytest
from helpers import compose_with
from hydra.utils import get_object, instantiate
from omegaconf import DictConfig, OmegaConf

from text_recognizer.data.synthetic_lines import SyntheticLines
from text_recognizer.tokenizer import Tokenizer

CONF = Path(__file__).parents[1] / "training" / "conf"
GROUPS = sorted(p.name for p in CONF.iterdir() if p.is_dir())


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def targets(node: object) -> list[str]:
    if isinstance(node, DictConfig):
        found = [str(node["_target_"])] if "_target_" in node else []
        return found + [t for key in node for t in targets(node[key])]
    return []


@pytest.mark.parametrize(
    "override",
    [f"{g}={o}" for g in GROUPS if g not in ("experiment", "debug") for o in options(g)]
    + [f"+experiment={o}" for o in options("experiment")]
    + [f"+debug={o}" for o in options("debug")],
)
def test_every_config_composes_and_names_importable_targets(override: str) -> None:
    cfg = compose_with(override)
    cfg = OmegaConf.masked_copy(cfg, [str(k) for k in cfg if k != "hydra"])
    OmegaConf.resolve(cfg)
    for target in targets(cfg):
        assert callable(get_object(target)), target


@pytest.mark.parametrize("experiment", options("experiment"))
@pytest.mark.parametrize("debug", options("debug"))
def test_every_experiment_composes_with_every_debug_config(experiment: str, debug: str) -> None:
    cfg = compose_with(f"+experiment={experiment}", f"+debug={debug}")
    assert cfg.trainer and cfg.datamodule and cfg.network


@pytest.mark.parametrize("network", options("network"))
def test_every_network_builds_with_the_tokenizer_vocabulary(network: str) -> None:
    cfg = compose_with(f"network={network}").network
    built = instantiate(cfg)
    assert cfg.num_tokens == len(Tokenizer())
    assert built.num_tokens == len(Tokenizer())


def test_default_datamodule_config_is_what_make_generate_renders() -> None:
    """`make generate` builds SyntheticLines() with its defaults; `make train` must read that."""
    cfg = compose_with().datamodule
    defaults = inspect.signature(SyntheticLines).parameters
    for key, value in cfg.items():
        if key in ("_target_", "batch_size", "num_workers"):
            continue
        default = defaults[str(key)].default
        assert list(value) == list(default or []) if isinstance(value, list) else value == default
