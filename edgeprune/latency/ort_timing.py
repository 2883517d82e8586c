"""Time ONNX models on ONNX Runtime (CPU): fresh sessions, warm-up, interleaved repetitions.

Used by the local profiler and by the remote agent, so a table measured through the agent is made
exactly as a local one. Models passed together are run alternately (A, B, A, B, ...) so that slow
drifts of a shared machine hit them equally and their difference is paired.
"""

from __future__ import annotations

import platform
import time
from typing import Any

import numpy as np

from edgeprune.errors import ProfileError, RuntimeUnavailableError


def _session(model: bytes, threads: int) -> Any:
    try:
        import onnxruntime as ort
    except ImportError:  # pragma: no cover - a hard dependency
        raise RuntimeUnavailableError("onnxruntime is not installed") from None
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.log_severity_level = 3
    try:
        return ort.InferenceSession(model, sess_options=so, providers=["CPUExecutionProvider"])
    except Exception as err:  # ORT raises its own exception types for malformed models
        raise ProfileError(f"ONNX Runtime rejected the model: {err}".splitlines()[0][:300]) from None


def _feed(sess: Any) -> dict[str, np.ndarray]:
    feed = {}
    for inp in sess.get_inputs():
        shape = [d if isinstance(d, int) and d > 0 else 1 for d in inp.shape]
        if inp.type != "tensor(float)":
            raise ProfileError(f"input {inp.name!r} has type {inp.type}; only float inputs are timed")
        feed[inp.name] = np.zeros(shape, dtype=np.float32)
    return feed


def time_models_ms(
    models: list[bytes], threads: int = 1, warmup: int = 30, runs: int = 100
) -> list[list[float]]:
    """Per-model timings (ms) of ``runs`` interleaved calls after ``warmup`` calls each."""
    if not models:
        return []
    sessions = [_session(m, threads) for m in models]
    feeds = [_feed(s) for s in sessions]
    for s, f in zip(sessions, feeds, strict=True):
        for _ in range(warmup):
            s.run(None, f)
    samples: list[list[float]] = [[] for _ in models]
    clock = time.perf_counter_ns
    for _ in range(runs):
        for i, (s, f) in enumerate(zip(sessions, feeds, strict=True)):
            t0 = clock()
            s.run(None, f)
            samples[i].append((clock() - t0) / 1e6)
    return samples


def summarize_ms(samples: list[float]) -> dict[str, float]:
    """median / p10 / p90 / count of a list of timings."""
    a = np.asarray(samples, dtype=np.float64)
    return {
        "median_ms": float(np.median(a)),
        "p10_ms": float(np.percentile(a, 10)),
        "p90_ms": float(np.percentile(a, 90)),
        "count": len(samples),
    }


def paired_difference(base_ms: list[float], full_ms: list[float]) -> tuple[float, float, float, int]:
    """``(median, p10, p90, count)`` of the kernel's time = full − base (paired, interleaved runs)."""
    diff = np.asarray(full_ms) - np.asarray(base_ms)
    median = float(np.median(full_ms) - np.median(base_ms))
    return median, float(np.percentile(diff, 10)), float(np.percentile(diff, 90)), len(diff)


def runtime_info() -> dict[str, Any]:
    """Device and runtime description recorded in a table's provenance."""
    import onnxruntime as ort

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    import os

    return {
        "device": f"{cpu} ({os.cpu_count()} logical CPUs, {platform.system()} {platform.machine()})",
        "runtime": "onnxruntime-cpu",
        "runtime_version": ort.__version__,
        "python": platform.python_version(),
    }
