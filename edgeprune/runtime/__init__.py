"""Runtimes (after export): one interface over ONNX Runtime and TensorRT — load, run, benchmark.

``get_runtime("onnxruntime-cpu", threads=1).load(path)`` gives a :class:`Session` with ``run(x)``
and ``benchmark(x, warmup, repetitions, passes) -> LatencyStats``. Registered names:
``onnxruntime-cpu``, ``onnxruntime-cuda``, ``onnxruntime-trt``, ``tensorrt``.
"""

from edgeprune.latency.timing import LatencyStats, benchmark_callable, interleaved_benchmark
from edgeprune.runtime.base import Runtime, Session, get_runtime, register_runtime, runtime_names

__all__ = [
    "LatencyStats",
    "Runtime",
    "Session",
    "benchmark_callable",
    "get_runtime",
    "interleaved_benchmark",
    "register_runtime",
    "runtime_names",
]
