"""The timing loop shared by every runtime: warm-up, repetitions, several passes, min of pass medians.

It is the method of the latency profiler (:mod:`edgeprune.latency.profiler`, MEASURED.md): a few
warm-up calls (the first calls of a fresh session are slower), then ``repetitions`` timed calls per
pass, ``passes`` passes; the reported latency is the minimum over passes of the pass median (slow
drifts of a shared machine hit whole passes), with p10/p90 of all calls as the spread. ONNX Runtime
sessions are opened with one intra-op thread by the runtimes unless the target says otherwise.

``latency`` cannot import ``runtime`` (one-way flow), so this loop is generic over a callable; when
``edgeprune.latency.timing`` lands the two should be merged there (docs/architecture.md).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from edgeprune.errors import ConfigError


@dataclass(frozen=True)
class LatencyStats:
    """Latency of one model call in ms: min over passes of the pass medians, and the spread."""

    median_ms: float  # min over passes of the per-pass median (the figure we report)
    p10_ms: float  # over all timed calls
    p90_ms: float
    min_ms: float
    count: int  # timed calls in all
    passes: int
    warmup: int
    pass_medians_ms: tuple[float, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["pass_medians_ms"] = list(self.pass_medians_ms)
        return d


def benchmark_callable(
    run: Callable[[], Any], *, warmup: int = 30, repetitions: int = 100, passes: int = 3,
    clock: Callable[[], int] = time.perf_counter_ns,
) -> LatencyStats:  # fmt: skip
    """Time ``run()`` (one model call) with the profiler's method; see the module docstring."""
    if warmup < 0 or repetitions < 1 or passes < 1:
        raise ConfigError(
            f"benchmark needs warmup >= 0, repetitions >= 1, passes >= 1 (got {warmup}, {repetitions}, {passes})"
        )
    for _ in range(warmup):
        run()
    samples: list[float] = []
    medians: list[float] = []
    for _ in range(passes):
        this: list[float] = []
        for _ in range(repetitions):
            t0 = clock()
            run()
            this.append((clock() - t0) / 1e6)
        medians.append(float(np.median(this)))
        samples.extend(this)
    a = np.asarray(samples)
    return LatencyStats(
        median_ms=min(medians), p10_ms=float(np.percentile(a, 10)), p90_ms=float(np.percentile(a, 90)),
        min_ms=float(a.min()), count=len(samples), passes=passes, warmup=warmup, pass_medians_ms=tuple(medians),
    )  # fmt: skip


def interleaved_benchmark(
    runs: list[Callable[[], Any]], *, warmup: int = 30, repetitions: int = 100, passes: int = 3,
) -> list[LatencyStats]:  # fmt: skip
    """Time several calls side by side (A, B, A, B, ...) so drifts hit them equally; for speedup ratios."""
    if not runs:
        return []
    if warmup < 0 or repetitions < 1 or passes < 1:
        raise ConfigError("benchmark needs warmup >= 0, repetitions >= 1, passes >= 1")
    for r in runs:
        for _ in range(warmup):
            r()
    clock = time.perf_counter_ns
    samples: list[list[float]] = [[] for _ in runs]
    medians: list[list[float]] = [[] for _ in runs]
    for _ in range(passes):
        this: list[list[float]] = [[] for _ in runs]
        for _ in range(repetitions):
            for i, r in enumerate(runs):
                t0 = clock()
                r()
                this[i].append((clock() - t0) / 1e6)
        for i in range(len(runs)):
            medians[i].append(float(np.median(this[i])))
            samples[i].extend(this[i])
    out = []
    for s, m in zip(samples, medians, strict=True):
        a = np.asarray(s)
        out.append(LatencyStats(
            median_ms=min(m), p10_ms=float(np.percentile(a, 10)), p90_ms=float(np.percentile(a, 90)),
            min_ms=float(a.min()), count=len(s), passes=passes, warmup=warmup, pass_medians_ms=tuple(m),
        ))  # fmt: skip
    return out
