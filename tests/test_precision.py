"""`trainer.precision=auto`: bf16 on a GPU that has it, fp32 on every CPU."""

from __future__ import annotations

import pytest
import torch

from training import precision


def test_auto_on_the_cpu_is_fp32(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert precision.resolve("auto", "auto") == "32-true"
    assert precision.resolve("auto", "cpu") == "32-true"


@pytest.mark.parametrize(("bf16", "expected"), [(True, "bf16-mixed"), (False, "16-mixed")])
def test_auto_on_a_gpu_uses_bf16_where_it_has_it(
    monkeypatch: pytest.MonkeyPatch, bf16: bool, expected: str
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: bf16)
    assert precision.resolve("auto", "auto") == expected
    assert precision.resolve("auto", "gpu") == expected


def test_an_explicit_precision_is_kept() -> None:
    assert precision.resolve("bf16-mixed", "cpu") == "bf16-mixed"
    assert precision.resolve("32-true", "cpu") == "32-true"
    assert precision.resolve(16, "gpu") == 16
