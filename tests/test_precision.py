"""`trainer.precision=auto` picks bf16 only where the hardware computes it."""

from __future__ import annotations

import pytest
import torch

from training import precision


@pytest.mark.parametrize(("native", "expected"), [(True, "bf16-mixed"), (False, "32-true")])
def test_auto_on_the_cpu_follows_the_cpus_bf16_instructions(
    monkeypatch: pytest.MonkeyPatch, native: bool, expected: str
) -> None:
    monkeypatch.setattr(precision, "native_bf16_cpu", lambda: native)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert precision.resolve("auto", "auto") == expected
    assert precision.resolve("auto", "cpu") == expected


@pytest.mark.parametrize(("bf16", "expected"), [(True, "bf16-mixed"), (False, "16-mixed")])
def test_auto_on_a_gpu_uses_bf16_where_it_has_it(
    monkeypatch: pytest.MonkeyPatch, bf16: bool, expected: str
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: bf16)
    assert precision.resolve("auto", "auto") == expected
    assert precision.resolve("auto", "gpu") == expected


def test_an_explicit_precision_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(precision, "native_bf16_cpu", lambda: True)
    assert precision.resolve("32-true", "cpu") == "32-true"
    assert precision.resolve(16, "gpu") == 16
