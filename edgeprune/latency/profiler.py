"""Profile a target: measure every kernel of a search space into the target's table, resumably.

Passes are spread in time: pass 1 measures every kernel once (in a shuffled order), pass 2 again,
and so on; each entry keeps the minimum of its pass medians. The table is rewritten atomically after
every few kernels, so an interrupted run loses at most those, and a restart skips every kernel that
already has the requested number of passes. Timing goes through a :class:`KernelTimer`: local ONNX
Runtime or a remote agent (:mod:`edgeprune.latency.agent_client`).
"""

from __future__ import annotations

import datetime as _dt
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from edgeprune.latency.kernels import KernelKey
from edgeprune.latency.predictor import OVERHEAD_KEY_OP, overhead_key
from edgeprune.latency.table import LatencyTable

METHOD = (
    "per-kernel ONNX models timed in context: t(context conv + kernel) - t(context conv), paired "
    "interleaved runs in fresh ONNX Runtime sessions, {warmup} warm-up + {runs} timed runs per pass, "
    "{passes} passes spread in time, entry = min over passes of the pass median; kernels reading the "
    "network input are timed alone minus an empty (Identity) call, which is the per-network overhead"
)


class KernelTimer(Protocol):
    """Times a list of ONNX models (interleaved) and says where it ran."""

    def time_models_ms(self, models: list[bytes]) -> list[list[float]]: ...

    def info(self) -> dict[str, Any]: ...


class LocalOrtTimer:
    """ONNX Runtime on this machine."""

    def __init__(self, threads: int = 1, warmup: int = 30, runs: int = 100):
        self.threads, self.warmup, self.runs = threads, warmup, runs

    def time_models_ms(self, models: list[bytes]) -> list[list[float]]:
        from edgeprune.latency.ort_timing import time_models_ms

        return time_models_ms(models, self.threads, self.warmup, self.runs)

    def info(self) -> dict[str, Any]:
        from edgeprune.latency.ort_timing import runtime_info

        return {**runtime_info(), "threads": self.threads}


def measure_kernel(key: KernelKey, timer: KernelTimer) -> tuple[float, float, float, int]:
    """One pass of one kernel: ``(median, p10, p90, count)`` in ms, overhead removed."""
    from edgeprune.latency.kernel_models import empty_model, kernel_models
    from edgeprune.latency.ort_timing import paired_difference, summarize_ms

    if key.op == OVERHEAD_KEY_OP:
        s = summarize_ms(timer.time_models_ms([empty_model()])[0])
        return s["median_ms"], s["p10_ms"], s["p90_ms"], int(s["count"])
    base, full = kernel_models(key)
    base_ms, full_ms = timer.time_models_ms([base, full])
    return paired_difference(base_ms, full_ms)


def network_keys(kernels: Sequence[KernelKey]) -> tuple[KernelKey, KernelKey]:
    """``(total, residual)`` entries of an unpruned network: its end-to-end time, and that minus its kernels."""
    from edgeprune.latency.predictor import network_overhead_key

    residual = network_overhead_key(kernels[0], len(kernels))
    total = KernelKey(
        OVERHEAD_KEY_OP,
        residual.h,
        residual.w,
        residual.cin,
        0,
        residual.cout,
        residual.k,
        residual.stride,
        residual.groups,
        "total-" + kernels[0].op,
        residual.precision,
    )
    return total, residual


def _measure_network(onnx_model: bytes, timer: KernelTimer) -> tuple[float, float, float, int]:
    from edgeprune.latency.ort_timing import summarize_ms

    s = summarize_ms(timer.time_models_ms([onnx_model])[0])
    return s["median_ms"], s["p10_ms"], s["p90_ms"], int(s["count"])


def _store_residuals(table: LatencyTable, networks: Sequence[tuple[Sequence[KernelKey], bytes]]) -> None:
    for kernels, _ in networks:
        total, residual = network_keys(kernels)
        t = table.entries[total]
        k_ms = sum(table.entries[k].median_ms for k in kernels)
        table.entries.pop(residual, None)
        table.add_pass(residual, t.median_ms - k_ms, t.p10_ms - k_ms, t.p90_ms - k_ms, t.count)


def new_table(timer: KernelTimer, passes: int, warmup: int, runs: int) -> LatencyTable:
    info = timer.info()
    prov = {
        "source": "measured",
        "device": info["device"],
        "runtime": info["runtime"],
        "runtime_version": info["runtime_version"],
        "threads": info.get("threads", 1),
        "date": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "method": METHOD.format(warmup=warmup, runs=runs, passes=passes),
        "repetitions": {"warmup": warmup, "runs_per_pass": runs, "passes": passes},
        "via": info.get("via", "local"),
    }
    return LatencyTable(prov, {})


def profile_kernels(
    keys: Sequence[KernelKey],
    table_path: Path,
    timer: KernelTimer,
    *,
    passes: int = 3,
    warmup: int = 30,
    runs: int = 100,
    seed: int = 0,
    save_every_s: float = 5.0,
    on_progress: Callable[[int, int, KernelKey | None], None] | None = None,
    networks: Sequence[tuple[Sequence[KernelKey], bytes]] = (),
) -> tuple[LatencyTable, int]:
    """Measure ``keys`` (plus the empty-call overhead) for ``passes`` passes; returns (table, measured).

    ``networks`` — ``(kernels, onnx)`` of unpruned networks — are timed end to end in the same
    passes; their time minus their kernels becomes the family's per-network overhead entry.
    Kernels that already have ``passes`` passes in the table at ``table_path`` are skipped.
    """
    table = LatencyTable.load(table_path) if table_path.is_file() else new_table(timer, passes, warmup, runs)
    if any(k.op == OVERHEAD_KEY_OP for k in keys):
        raise ValueError("overhead keys are measured by the profiler itself")
    precision = keys[0].precision if keys else "fp32"
    onnx_of = {network_keys(kernels)[0]: model for kernels, model in networks}
    todo_keys = [overhead_key(precision), *keys, *onnx_of]
    total = sum(max(passes - table.passes_of(k), 0) for k in todo_keys)
    done = 0
    rng = np.random.default_rng(seed)
    last_save = time.monotonic()
    if on_progress:
        on_progress(done, total, None)
    try:
        for p in range(1, passes + 1):
            order = [todo_keys[i] for i in rng.permutation(len(todo_keys))]
            for key in order:
                if table.passes_of(key) >= p:
                    continue
                stats = (
                    _measure_network(onnx_of[key], timer) if key in onnx_of else measure_kernel(key, timer)
                )
                table.add_pass(key, *stats)
                done += 1
                if on_progress:
                    on_progress(done, total, key)
                if time.monotonic() - last_save > save_every_s:
                    table.save(table_path)
                    last_save = time.monotonic()
        _store_residuals(table, networks)
    finally:
        table.provenance["date"] = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        table.save(table_path)
    return table, done
