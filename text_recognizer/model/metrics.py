"""Character and word error rates, from torchmetrics (edit distance over reference length)."""

from __future__ import annotations

from torchmetrics import MetricCollection
from torchmetrics.text import CharErrorRate, WordErrorRate


def error_rates(prefix: str) -> MetricCollection:
    return MetricCollection({"cer": CharErrorRate(), "wer": WordErrorRate()}, prefix=prefix)
