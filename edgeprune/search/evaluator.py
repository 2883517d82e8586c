"""Approximate evaluation of a candidate (Neurocomputing 2020's "approximate compressed models").

A candidate plan is applied to the pretrained weights, BatchNorm statistics are recalibrated on a few
calibration batches (optionally a few fine-tuning steps), and top-1 error is measured on a fixed
validation subset; parameters are counted exactly and latency comes from the target's table. No
candidate is retrained. Every evaluation runs with one torch thread, so a result is bit-identical
whichever process computes it: the front does not depend on the number of workers.

Latency is predicted for the precision the run ships (``EvaluatorSpec.precision``: ``compile
--precision int8`` searches on INT8 latency). When that is not FP32 and this device's table also holds
FP32 kernels (measured, not an estimate), each record also carries ``latency_fp32_ms``, the same
network's FP32 prediction — one more lookup per kernel — so the report can show both.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn

from edgeprune.config import DataConfig, ModelConfig
from edgeprune.data import Split, load_data
from edgeprune.data.corruptions import CORRUPTIONS, corrupt
from edgeprune.errors import ConfigError, ProfileError
from edgeprune.graph import ModelAnalysis, PruningPlan, analyze, apply_plan, count_macs
from edgeprune.latency import LatencyPredictor, extract_kernels, predictor_for
from edgeprune.latency.profile import target_profile
from edgeprune.models import build_model
from edgeprune.search.config import SearchConfig
from edgeprune.train import evaluate_accuracy, fine_tune, recalibrate_changed_bn


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run a block with ``n`` intra-op threads, restoring the previous setting."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@dataclass(frozen=True)
class EvaluatorSpec:
    """Plain data from which any process (or Ray worker) rebuilds the same evaluator."""

    model: ModelConfig
    data: DataConfig
    target: str
    search: SearchConfig
    threads: int | None = None  # the target's intra-op threads when not the profile's
    precision: str | None = None  # the shipped precision latency is predicted for (None, auto: the profile's)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model.to_dict(),
            "data": self.data.to_dict(),
            "target": self.target,
            "search": self.search.to_dict(),
            **({"threads": self.threads} if self.threads is not None else {}),
            **({"precision": self.precision} if self.precision not in (None, "auto") else {}),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EvaluatorSpec:
        return cls(
            ModelConfig.from_mapping(d["model"]),
            DataConfig.from_mapping(d["data"]),
            d["target"],
            SearchConfig.from_mapping(d["search"]),
            d.get("threads"),
            d.get("precision"),
        )


class Evaluator:
    """Scores pruning plans of one network: ``evaluate(plan) -> metrics``."""

    def __init__(self, spec: EvaluatorSpec):
        self.spec = spec
        cfg = spec.search
        loaded = build_model(spec.model)
        data = load_data(spec.data)
        self.model: nn.Module = loaded.model
        self.input_shape = data.input_shape
        self.example = torch.zeros(1, *self.input_shape)
        self.val = data.val.head(cfg.val_size)
        n_calib = min(len(data.train), cfg.calib_batches * cfg.batch_size)
        self.calib = data.train.head(n_calib)
        # the optional short fine-tune reads its own training images (not only the calibration batches)
        self.tune = data.train.head(cfg.finetune_steps * cfg.batch_size)
        self.robust: Split | None = None
        if "robustness" in cfg.objectives:
            head = data.val.head(cfg.robustness_size)
            xs = corrupt(head.x, data.mean, data.std, severity=cfg.corruption_severity, seed=cfg.seed)
            self.robust = Split(xs, head.y.repeat(len(CORRUPTIONS)))
        self.profile = target_profile(spec.target, spec.threads, spec.precision)
        self.predictor: LatencyPredictor = predictor_for(self.profile)
        self.fp32_predictor: LatencyPredictor | None = self._fp32_predictor()
        with torch_threads(1):
            self.analysis: ModelAnalysis = analyze(self.model, self.example, self.profile.channel_multiple)

    def _fp32_predictor(self) -> LatencyPredictor | None:
        """The FP32 predictor shown beside a search at another precision: only from a table of the same
        standing as the search's (this device's table, never an estimate); None where there is none."""
        if self.profile.precision == "fp32" or self.predictor.source == "estimate":
            return None
        try:
            pred = predictor_for(self.profile.with_precision("fp32"))
        except (ConfigError, ProfileError):
            return None  # no FP32 table here: the FP32 figure is left out, not measured
        return pred if pred.source == self.predictor.source else None

    @property
    def latency_source(self) -> str:
        return self.predictor.source

    def build(self, plan: PruningPlan) -> nn.Module:
        """The pruned, BN-recalibrated network of ``plan`` (what the search scores)."""
        cfg = self.spec.search
        pruned = apply_plan(self.model, plan, self.example, analysis=self.analysis)
        recalibrate_changed_bn(self.model, pruned, self.calib.x, batch_size=cfg.batch_size)
        if cfg.finetune_steps:
            fine_tune(
                pruned,
                self.tune.x,
                self.tune.y,
                epochs=1,
                lr=0.01,
                batch_size=cfg.batch_size,
                seed=cfg.seed,
            )
        pruned.eval()
        return pruned

    def _fp32_ms(self, kernels: list[Any]) -> float | None:
        """The FP32 prediction of a network given its kernels at the search's precision, or None where the
        FP32 table cannot bound one of them (the figure is left out, never invented)."""
        if self.fp32_predictor is None:
            return None
        try:
            return float(
                self.fp32_predictor.predict_kernels_ms([replace(k, precision="fp32") for k in kernels])
            )
        except ProfileError:
            return None

    def evaluate(self, plan: PruningPlan) -> dict[str, float]:
        """Metrics of one candidate: error, params, macs, latency_ms (at the shipped precision), eval_s;
        robust_error with the robustness objective; latency_fp32_ms beside a search at another precision
        where this device's table holds FP32 kernels covering the network."""
        start = time.perf_counter()
        with torch_threads(1):
            pruned = self.build(plan)
            acc = evaluate_accuracy(pruned, self.val.x, self.val.y, batch_size=self.spec.search.batch_size)
            params = sum(p.numel() for p in pruned.parameters())
            macs = count_macs(pruned, self.example)
            kernels = extract_kernels(pruned, self.input_shape, self.predictor.precision)
            latency_ms = self.predictor.predict_kernels_ms(kernels)
            fp32_ms = self._fp32_ms(kernels)
            robust = None
            if self.robust is not None:
                robust = 1.0 - float(
                    evaluate_accuracy(
                        pruned, self.robust.x, self.robust.y, batch_size=self.spec.search.batch_size
                    )
                )
        extra = {} if robust is None else {"robust_error": round(robust, 6)}
        if fp32_ms is not None:
            extra["latency_fp32_ms"] = fp32_ms
        return {
            **extra,
            "error": round(1.0 - float(acc), 6),
            "params": int(params),
            "macs": int(macs),
            "latency_ms": float(latency_ms),
            "eval_s": round(time.perf_counter() - start, 3),
        }
