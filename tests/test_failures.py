"""Runs that cannot go on stop with one line saying why, and keep what they wrote before:
a diverging loss, memory running out, a config value the run cannot use."""

from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from conftest import TINY_LINES
from helpers import compose_with, load_checkpoint, run_main, tiny_model
from hydra.errors import InstantiationException

from text_recognizer.data.paths import DATA_DIR_ENV
from text_recognizer.data.synthetic.lines import SyntheticLines
from text_recognizer.errors import ConfigError
from text_recognizer.model.errors import NonFiniteLossError, OutOfMemoryError
from text_recognizer.model.lit_transformer import LitTransformer
from training.run import build

# Four training steps of the default network on the shared tiny lines, with a checkpoint
# after every step.
SHORT = [
    *(f"datamodule.{key}={value}" for key, value in TINY_LINES.items()),
    "datamodule.batch_size=4",
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=4",
    "trainer.limit_val_batches=1",
    "+trainer.enable_progress_bar=false",
    "+trainer.enable_model_summary=false",
    "logger=csv",
    "callbacks.last_checkpoint_steps.every_n_train_steps=1",
    "~callbacks.log_predictions",
]


@pytest.fixture
def short_run(
    shared_data_root: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> tuple[Path, list[str]]:
    monkeypatch.setenv(DATA_DIR_ENV, str(shared_data_root))
    return tmp_path / "run", SHORT


def fit(run_dir: Path, *overrides: str) -> None:
    pl.seed_everything(0)
    datamodule, model, trainer = build(compose_with(*overrides, run_dir=run_dir), run_dir)
    trainer.fit(model, datamodule=datamodule)


@pytest.mark.parametrize(
    ("at", "message", "kept_step"),
    [
        # NaN weights before step 3: its loss is NaN; step 3's checkpoint (of step 2) stays.
        ("start", "loss is nan at step 3", 3),
        # NaN weights after step 3's update: its checkpoint is refused, step 2's stays.
        ("end", "the weights became NaN or infinite by step 3", 2),
    ],
)
def test_a_diverging_run_stops_naming_the_step_and_keeps_the_last_good_checkpoint(
    short_run: tuple[Path, list[str]], at: str, message: str, kept_step: int
) -> None:
    run_dir, overrides = short_run
    poison = ["+callbacks.poison._target_=helpers.PoisonWeights", "+callbacks.poison.step=3"]
    with pytest.raises(NonFiniteLossError, match=message) as error:
        fit(run_dir, *overrides, *poison, f"+callbacks.poison.at={at}")
    assert "\n" not in str(error.value)
    last = load_checkpoint(run_dir / "checkpoints" / "last.ckpt")
    assert last["global_step"] == kept_step
    assert all(torch.isfinite(w).all() for w in last["state_dict"].values())
    assert not list((run_dir / "checkpoints").glob(".*.tmp"))


@pytest.mark.parametrize(
    ("method", "error", "where"),
    [
        ("_losses", torch.OutOfMemoryError("CUDA out of memory."), "training step 0"),
        (
            "backward",
            RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 9 GB"),
            "the backward pass of step 0",
        ),
        ("forward", torch.OutOfMemoryError("CUDA out of memory."), "validation"),
    ],
)
def test_running_out_of_memory_names_the_batch_and_what_to_lower(
    short_run: tuple[Path, list[str]],
    monkeypatch: pytest.MonkeyPatch,
    method: str,
    error: Exception,
    where: str,
) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise error

    run_dir, overrides = short_run
    owner = pl.LightningModule if method == "backward" else LitTransformer
    monkeypatch.setattr(owner, method, fail)
    if method == "forward":  # validation first, before any training step
        overrides = [*overrides, "trainer.num_sanity_val_steps=1"]
    with pytest.raises(OutOfMemoryError) as raised:
        fit(run_dir, *overrides)
    message = str(raised.value)
    # Training reads batches of 4; validation, all 16 lines at once (eval_batch_size 64).
    size, lower = (16, "eval_batch_size") if where == "validation" else (4, "batch_size")
    assert message.startswith(f"out of memory in {where} on a batch of {size} images of 1 x 48 x ")
    assert f"lower datamodule.{lower}" in message and "\n" not in message


def test_other_runtime_errors_pass_through(
    short_run: tuple[Path, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(*args: object) -> None:
        raise RuntimeError("shape mismatch")

    monkeypatch.setattr(LitTransformer, "_losses", fail)
    run_dir, overrides = short_run
    with pytest.raises(RuntimeError, match="shape mismatch") as raised:
        fit(run_dir, *overrides)
    assert not isinstance(raised.value, OutOfMemoryError)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("datamodule.batch_size=-4", "datamodule: batch_size must be positive, got -4"),
        ("datamodule.batch_size=0", "datamodule: batch_size must be positive, got 0"),
        ("datamodule.train_size=0", "datamodule: train_size must be positive, got 0"),
        ("datamodule.num_workers=-1", "datamodule: num_workers must be >= 0, got -1"),
        ("+datamodule.nope=1", "datamodule: SyntheticLines.__init__() got an unexpected keyword"),
        ("trainer.max_epochs=-5", "trainer: `max_epochs` must be a non-negative integer or -1"),
        ("trainer.accelerator=gpu", "trainer: No supported gpu backend found!"),
    ],
)
def test_a_value_the_run_cannot_use_is_named(tmp_path: Path, override: str, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        build(compose_with(override, run_dir=tmp_path), tmp_path)
    assert str(error.value).startswith(message) and "\n" not in str(error.value)


def test_a_type_error_inside_a_constructor_is_a_bug_not_a_bad_override(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: object, *args: object, **kwargs: object) -> None:
        raise TypeError("unsupported operand type(s) for +: 'int' and 'str'")

    monkeypatch.setattr(SyntheticLines, "__init__", broken)
    with pytest.raises(InstantiationException) as error:
        build(compose_with(run_dir=tmp_path), tmp_path)
    assert not isinstance(error.value, ConfigError)
    assert isinstance(error.value.__cause__, TypeError)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["optimizer.lr=-1"], "optimizer: Invalid learning rate: -1"),
        (
            ["lr_scheduler=one_cycle", "lr_scheduler.pct_start=2"],
            "lr_scheduler: Expected float between 0 and 1 pct_start, but got 2",
        ),
    ],
)
def test_an_optimizer_or_schedule_value_the_run_cannot_use_is_named(
    short_run: tuple[Path, list[str]], overrides: list[str], message: str
) -> None:
    run_dir, short = short_run
    with pytest.raises(ConfigError) as error:
        fit(run_dir, *short, *overrides)
    assert str(error.value).startswith(message)
    assert not (run_dir / "checkpoints").exists()


def test_a_checkpoint_of_another_network_is_named() -> None:
    model, other = tiny_model(), tiny_model()
    model.on_load_checkpoint({"state_dict": other.state_dict()})  # the same network: fine
    other.network.decoder.to_logits = torch.nn.Linear(16, 99)
    with pytest.raises(ConfigError, match=r"the checkpoint holds another network \(2 tensors"):
        model.on_load_checkpoint({"state_dict": other.state_dict()})


@pytest.mark.parametrize(
    ("override", "says"),
    [
        ("nope=1", "Could not override 'nope'."),
        ("+experiment=nope", "Could not find 'experiment/nope'"),
    ],
)
def test_hydra_names_an_unknown_key_or_experiment(
    data_root: Path, tmp_path: Path, override: str, says: str
) -> None:
    result = run_main(data_root, override, f"hydra.run.dir={tmp_path / 'run'}")
    assert result.returncode == 1 and says in result.stderr
    assert not (tmp_path / "run").exists() and not data_root.exists()
