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
) -> tuple[LatencyTable, int]:
    """Measure ``keys`` (plus the empty-call overhead) for ``passes`` passes; returns (table, measured).

    Kernels that already have ``passes`` passes in the table at ``table_path`` are skipped.
    """
    table = LatencyTable.load(table_path) if table_path.is_file() else new_table(timer, passes, warmup, runs)
    precision = keys[0].precision if keys else "fp32"
    todo_keys = [overhead_key(precision), *keys]
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
                table.add_pass(key, *measure_kernel(key, timer))
                done += 1
                if on_progress:
                    on_progress(done, total, key)
                if time.monotonic() - last_save > save_every_s:
                    table.save(table_path)
                    last_save = time.monotonic()
    finally:
        table.provenance["date"] = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        table.save(table_path)
    return table, done
