"""Thresholds, checks and the verdict of ``verify.json``.

Every check records its value, its limit and whether it passed; the thresholds themselves are
written into the file, so a reader sees what was applied.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from pydantic import Field, model_validator

from edgeprune.config import FrozenConfig


class VerifyThresholds(FrozenConfig):
    """The limits ``edgeprune verify`` applies."""

    min_images: int = Field(default=1000, ge=1)  # parity is computed on at least this many test images
    fp32_max_abs_logit_diff: float = Field(default=1e-4, gt=0)  # runtime FP32 vs PyTorch
    fp32_min_top1_agreement: float = Field(default=1.0, ge=0, le=1)
    fp16_max_abs_logit_diff: float = Field(default=5e-2, gt=0)  # TensorRT FP16 engine vs PyTorch
    fp16_min_top1_agreement: float = Field(default=0.99, ge=0, le=1)
    int8_min_top1_agreement: float = Field(default=0.95, ge=0, le=1)  # INT8 vs FP32 on the runtime
    int8_max_accuracy_drop: float = Field(default=0.01, ge=0, le=1)  # 1 point
    latency_ratio_min: float = Field(default=0.5, gt=0)  # measured / predicted; checked for measured tables
    latency_ratio_max: float = Field(default=1.5, gt=0)
    # (measured / predicted) of the pick over the same ratio of the table's reference network, timed in
    # alternating passes with it: a busy machine slows both, a wrong prediction moves only the pick
    latency_relative_max: float = Field(default=1.2, gt=1)  # band [1/max, max]

    @model_validator(mode="after")
    def _band_is_ordered(self) -> VerifyThresholds:
        if self.latency_ratio_min > self.latency_ratio_max:
            raise ValueError(
                f"latency_ratio_min {self.latency_ratio_min} is above latency_ratio_max {self.latency_ratio_max}"
            )
        return self


@dataclass(frozen=True)
class Check:
    """One named check: value against limit (``op`` is ``<=`` or ``>=`` or ``in``)."""

    name: str
    value: float | None
    limit: Any
    op: str
    passed: bool
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def at_most(name: str, value: float, limit: float, note: str = "") -> Check:
    return Check(name, float(value), limit, "<=", bool(value <= limit), note)


def at_least(name: str, value: float, limit: float, note: str = "") -> Check:
    return Check(name, float(value), limit, ">=", bool(value >= limit), note)


def within(name: str, value: float, lo: float, hi: float, note: str = "") -> Check:
    return Check(name, float(value), [lo, hi], "in", bool(lo <= value <= hi), note)


def informational(name: str, value: float | None, note: str) -> Check:
    """Recorded, not judged (e.g. measured latency against an *estimated* prediction)."""
    return Check(name, None if value is None else float(value), None, "info", True, note)


def compare_logits(ref: np.ndarray, got: np.ndarray) -> dict[str, float]:
    """max |Δ| and top-1 agreement of two logit arrays of the same shape."""
    ref, got = np.asarray(ref, dtype=np.float64), np.asarray(got, dtype=np.float64)
    return {
        "max_abs_logit_diff": float(np.max(np.abs(ref - got))) if ref.size else 0.0,
        "top1_agreement": float(np.mean(ref.argmax(1) == got.argmax(1))) if ref.size else 1.0,
        "images": int(ref.shape[0]),
    }


def accuracy(logits: np.ndarray, y: np.ndarray) -> float:
    """Top-1 accuracy."""
    return float(np.mean(np.asarray(logits).argmax(1) == np.asarray(y)))
