"""A run killed with SIGKILL in the middle of an epoch, resumed from its last checkpoint, ends
exactly where an uninterrupted run does; and two runs with the same seed agree step by step."""

import subprocess
import time
from pathlib import Path

import pytest
import torch
from helpers import (
    ROOT,
    SINGLE,
    load_checkpoint,
    main_command,
    main_env,
    metrics,
    run_main,
    step_losses,
)

pytestmark = pytest.mark.slow

KILL_AT = 7  # steps done when the run freezes; its last checkpoint is from step 6, mid-epoch


@pytest.fixture(scope="module")
def killed_run(
    shared_data_root: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[int, float]]:
    """A run frozen before step `KILL_AT` and killed with SIGKILL, as a crashed machine would;
    its directory, and the losses it logged."""
    folder = tmp_path_factory.mktemp("killed")
    run_dir, marker = folder / "run", folder / "frozen"
    hang = [
        "+callbacks.hang._target_=tests.helpers.HangAt",
        f"+callbacks.hang.step={KILL_AT}",
        f"+callbacks.hang.marker={marker}",
    ]
    with (folder / "output.txt").open("w") as output:
        process = subprocess.Popen(
            main_command(*SINGLE, f"hydra.run.dir={run_dir}", *hang),
            cwd=ROOT,
            env=main_env(shared_data_root),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 300
            while not marker.exists() and process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.1)
            assert marker.exists(), (folder / "output.txt").read_text()[-2000:]
        finally:
            process.kill()  # SIGKILL: no handler, no cleanup
            process.wait()
    return run_dir, step_losses(run_dir)


def test_the_same_seed_gives_the_same_losses(
    reference_run: Path, killed_run: tuple[Path, dict[int, float]]
) -> None:
    _, killed = killed_run
    assert sorted(killed) == list(range(KILL_AT))
    assert killed == {step: step_losses(reference_run)[step] for step in killed}


def test_a_killed_run_resumes_to_the_result_of_an_uninterrupted_one(
    reference_run: Path, killed_run: tuple[Path, dict[int, float]], shared_data_root: Path
) -> None:
    run_dir, killed_losses = killed_run
    last = load_checkpoint(run_dir / "checkpoints" / "last.ckpt")
    assert last["global_step"] == 6 and not (run_dir / "metrics.json").exists()
    # Epoch 1 of 4-batch epochs, 2 of its batches done: resuming must not start it over.
    assert last["SyntheticLines"] == {"train_position": {"epoch": 1, "batches": 2}}

    config = (run_dir / ".hydra" / "config.yaml").read_text()
    # With no hydra.run.dir, the resumed run goes on in the killed run's directory.
    result = run_main(shared_data_root, *SINGLE, f"ckpt_path={run_dir}/checkpoints/last.ckpt")
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"run directory: {run_dir}" in result.stdout
    assert (run_dir / ".hydra" / "config.yaml").read_text() == config
    (resumed_overrides,) = run_dir.glob(".hydra/resumed-*/overrides.yaml")
    assert "ckpt_path=" in resumed_overrides.read_text()

    resumed, reference = metrics(run_dir), metrics(reference_run)
    assert resumed["global_step"] == reference["global_step"] == 12
    for key in ("train/loss", "val/loss", "val/cer", "test/loss", "test/cer", "lr-AdamW"):
        assert resumed[key] == reference[key], key
    # Every step's loss: those before the checkpoint from the killed run, step 6 on from the
    # resumed one (step 6 was done twice: once lost with the kill).
    losses = step_losses(run_dir)
    assert losses == step_losses(reference_run)
    assert losses[6] == killed_losses[6]
    ours = load_checkpoint(run_dir / "checkpoints" / "last.ckpt")
    theirs = load_checkpoint(reference_run / "checkpoints" / "last.ckpt")
    assert ours["global_step"] == theirs["global_step"]
    for name, weight in theirs["state_dict"].items():
        assert torch.equal(ours["state_dict"][name], weight), name
