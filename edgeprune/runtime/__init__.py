"""Runtimes (after export): one interface over ONNX Runtime and TensorRT — load, run, benchmark.

``get_runtime("onnxruntime-cpu", threads=1).load(path)`` gives a :class:`Session` with ``run(x)``
and ``benchmark(x, warmup, repetitions, passes) -> LatencyStats``. ``RUNTIMES.names()`` lists the
registered runtimes: ``onnxruntime-cpu``, ``onnxruntime-cuda``, ``onnxruntime-trt``, ``tensorrt``.
"""

from edgeprune.latency.timing import LatencyStats, benchmark_callable, interleaved_benchmark
from edgeprune.runtime.base import RUNTIMES, Runtime, RuntimeFactory, Session, get_runtime

__all__ = [
    "RUNTIMES",
    "LatencyStats",
    "Runtime",
    "RuntimeFactory",
    "Session",
    "benchmark_callable",
    "get_runtime",
    "interleaved_benchmark",
]
