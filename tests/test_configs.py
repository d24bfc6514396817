"""Every config composes, and every experiment builds with every debug config."""

from pathlib import Path

import pytest
import pytorch_lightning as pl
from fake_documents import lines_of, untrained_checkpoint, write_page
from helpers import compose_with
from hydra.utils import get_object
from omegaconf import OmegaConf

from text_recognizer.data import registry
from text_recognizer.data.base import BaseDataModule
from text_recognizer.errors import ConfigError
from text_recognizer.model.lit_transformer import LitTransformer
from text_recognizer.network import ConvTransformer
from training.run import build

CONF = Path(__file__).parents[1] / "training" / "conf"
# Hydra's search path: training's configs, then the library's (the datamodule group).
SEARCH_PATH = (CONF, registry.CONFIGS.parent)
GROUPS = sorted({p.parent.name for root in SEARCH_PATH for p in root.glob("*/*.yaml")})


def options(group: str) -> list[str]:
    return sorted(p.stem for root in SEARCH_PATH for p in (root / group).glob("*.yaml"))


def targets(node: object) -> list[str]:
    if isinstance(node, dict):
        found = [str(node["_target_"])] if "_target_" in node else []
        return found + [t for value in node.values() for t in targets(value)]
    if isinstance(node, list):
        return [t for value in node for t in targets(value)]
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
    for target in targets(OmegaConf.to_container(cfg)):
        assert callable(get_object(target)), target


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    """What an experiment leaves to the user (`???`): for fine-tuning, pages and a checkpoint."""
    folder = tmp_path_factory.mktemp("inputs")
    for split in ("train", "val", "test"):
        write_page(folder / split, split, lines_of(["a line of text"]))
    return {
        "finetune_documents": [
            f"model.init_from={untrained_checkpoint(folder / 'base.ckpt')}",
            *(f"datamodule.{s}_sources=[{folder / s}]" for s in ("train", "val", "test")),
        ]
    }


@pytest.mark.parametrize("experiment", options("experiment"))
@pytest.mark.parametrize("debug", options("debug"))
def test_every_experiment_builds_with_every_debug_config(
    experiment: str, debug: str, tmp_path: Path, inputs: dict[str, list[str]]
) -> None:
    """Datamodule, network, model and Trainer, as `main.py` builds them, without fitting."""
    given = inputs.get(experiment, [])
    cfg = compose_with(f"+experiment={experiment}", f"+debug={debug}", *given, run_dir=tmp_path)
    datamodule, model, trainer = build(cfg, tmp_path)
    assert isinstance(datamodule, BaseDataModule) and isinstance(trainer, pl.Trainer)
    assert isinstance(model, LitTransformer) and isinstance(model.network, ConvTransformer)
    network = model.network
    assert network.num_tokens == len(datamodule.tokenizer)
    assert network.max_output_length == datamodule.max_output_length
    assert network.decoder.max_length == datamodule.max_output_length
    assert model.inference is not None
    assert model.inference.transform == datamodule.eval_transform.params()
    debug_cfg = OmegaConf.load(CONF / "debug" / f"{debug}.yaml").trainer
    if debug_cfg.get("fast_dev_run"):
        assert trainer.fast_dev_run
    if debug_cfg.get("overfit_batches"):
        assert trainer.overfit_batches == debug_cfg.overfit_batches
    if debug_cfg.get("limit_train_batches"):
        assert trainer.limit_train_batches == debug_cfg.limit_train_batches


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("max_steps", 500),
        ("limit_train_batches", 4),
        ("limit_val_batches", 2),
        ("limit_test_batches", 2),
        ("limit_predict_batches", 2),
        ("fast_dev_run", True),
        ("val_check_interval", 0.5),
        ("log_every_n_steps", 1),
        ("num_sanity_val_steps", 2),
        ("overfit_batches", 1),
        ("gradient_clip_val", 0.5),
        ("accumulate_grad_batches", 4),
        ("precision", "32-true"),
        ("deterministic", True),
    ],
)
def test_everyday_trainer_arguments_override_without_a_plus(key: str, value: object) -> None:
    assert compose_with(f"trainer.{key}={value}").trainer[key] == value


def test_a_network_value_the_datamodule_decides_is_refused_if_it_disagrees(
    tmp_path: Path,
) -> None:
    cfg = compose_with("+network.num_tokens=90", run_dir=tmp_path)
    with pytest.raises(
        ConfigError, match=r"network\.num_tokens is 90, but the datamodule gives 83"
    ):
        build(cfg, tmp_path)
