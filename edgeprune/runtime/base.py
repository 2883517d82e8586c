"""One interface over inference runtimes: load a shipped model, run it, benchmark it.

A runtime is registered under the name hardware profiles use (``onnxruntime-cpu``, ``tensorrt``,
...). Optional engines are imported inside their runtime and raise :class:`RuntimeUnavailableError`
when missing, so importing :mod:`edgeprune.runtime` never needs them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from edgeprune.errors import ConfigError
from edgeprune.latency.timing import LatencyStats


class Session(Protocol):
    """A loaded model: a fixed input contract, a run call, a benchmark."""

    input_name: str
    input_shape: tuple[int | str, ...]

    def run(self, x: np.ndarray) -> np.ndarray:
        """Logits for a float32 NCHW batch (batches larger than a static batch are run in chunks)."""
        ...

    def benchmark(
        self, x: np.ndarray, warmup: int = 30, repetitions: int = 100, passes: int = 3
    ) -> LatencyStats:
        """Latency of one call on ``x`` (the profiler's method)."""
        ...


class Runtime(Protocol):
    """Loads models for one inference engine."""

    name: str
    threads: int

    def load(self, path: Path) -> Session: ...

    def info(self) -> dict[str, Any]:
        """Runtime name and version, device, threads (recorded in verify.json)."""
        ...


RuntimeFactory = Callable[[int], Runtime]
_RUNTIMES: dict[str, RuntimeFactory] = {}


def register_runtime(name: str) -> Callable[[RuntimeFactory], RuntimeFactory]:
    """Decorator: register a runtime factory (``threads -> Runtime``) under ``name``; duplicates are refused."""

    def deco(factory: RuntimeFactory) -> RuntimeFactory:
        if name in _RUNTIMES:
            raise ValueError(f"runtime {name!r} is already registered")
        _RUNTIMES[name] = factory
        return factory

    return deco


def runtime_names() -> list[str]:
    """Registered runtime names."""
    _load_builtin()
    return sorted(_RUNTIMES)


def get_runtime(name: str, threads: int = 1) -> Runtime:
    """The runtime registered as ``name``; an unknown name is a :class:`ConfigError`."""
    _load_builtin()
    if threads < 1:
        raise ConfigError(f"threads must be >= 1, got {threads}")
    try:
        factory = _RUNTIMES[name]
    except KeyError:
        raise ConfigError(f"unknown runtime {name!r} (known: {', '.join(sorted(_RUNTIMES))})") from None
    return factory(threads)


def _load_builtin() -> None:
    # importing the modules registers them; they import their engines lazily
    from edgeprune.runtime import onnxruntime_rt, tensorrt_rt  # noqa: F401


def run_in_chunks(call: Callable[[np.ndarray], np.ndarray], x: np.ndarray, batch: int | None) -> np.ndarray:
    """Run ``call`` over ``x`` in chunks of ``batch`` (``None``: all at once); a short last chunk is padded."""
    if batch is None or x.shape[0] == batch:
        return call(x)
    outs = []
    for i in range(0, x.shape[0], batch):
        chunk = x[i : i + batch]
        n = chunk.shape[0]
        if n < batch:
            chunk = np.concatenate([chunk, np.zeros((batch - n, *chunk.shape[1:]), dtype=chunk.dtype)])
        outs.append(call(chunk)[:n])
    return np.concatenate(outs)
