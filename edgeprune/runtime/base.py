"""One interface over inference runtimes: load a shipped model, run it, benchmark it.

A runtime is registered in :data:`RUNTIMES` under a name declared in :mod:`edgeprune.latency.runtimes`
(the names hardware profiles use: ``onnxruntime-cpu``, ``tensorrt``, ...). The implementations import
this module to register themselves; :data:`RUNTIMES` imports them on its first lookup. Optional engines
are imported inside their runtime and raise :class:`RuntimeUnavailableError` when missing, so importing
:mod:`edgeprune.runtime` never needs them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from edgeprune.errors import ConfigError, DataError
from edgeprune.latency.timing import SPINNING_DEFAULT, LatencyStats
from edgeprune.registry import Registry


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
    spinning: bool  # intra-op worker threads spin-wait between parallel sections (CPU runtimes)

    def load(self, path: Path) -> Session: ...

    def info(self) -> dict[str, Any]:
        """Runtime name and version, device, threads (recorded in verify.json)."""
        ...


RuntimeFactory = Callable[[int, bool], Runtime]
"""Makes a runtime for a thread count and spinning."""

RUNTIMES: Registry[RuntimeFactory] = Registry(
    "runtime",
    error=ConfigError,
    # importing these registers the built-in runtimes; they import their engines lazily
    builtins=("edgeprune.runtime.onnxruntime_rt", "edgeprune.runtime.tensorrt_rt"),
)
"""Runtime factories by the names of :data:`edgeprune.latency.runtimes.RUNTIME_KINDS`:
``@RUNTIMES.register("name")`` on a ``(threads, spinning) -> Runtime`` factory."""


def get_runtime(name: str, threads: int = 1, spinning: bool = SPINNING_DEFAULT) -> Runtime:
    """The runtime registered as ``name``, at ``threads`` intra-op threads that spin-wait or not (a
    target's :attr:`~edgeprune.latency.profile.HardwareProfile.spinning`); an unknown name or
    ``threads < 1`` is a :class:`ConfigError`."""
    factory = RUNTIMES.get(name)
    if threads < 1:
        raise ConfigError(f"threads must be >= 1, got {threads}")
    return factory(threads, spinning)


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


def check_input(x: np.ndarray, shape: tuple[int | str, ...], where: str) -> np.ndarray:
    """``x`` as contiguous float32 NCHW matching ``shape`` in C, H, W; a mismatch is a :class:`DataError`."""
    if x.ndim != len(shape) or any(
        isinstance(s, int) and s != d for s, d in zip(shape[1:], x.shape[1:], strict=True)
    ):
        want = "x".join(str(s) for s in shape)
        raise DataError(f"{where} expects input of shape {want}, got {'x'.join(map(str, x.shape))}")
    return np.ascontiguousarray(x, dtype=np.float32)


class ChunkedSession:
    """What every session shares: its input is checked against the model's, and a model of a static
    batch runs a larger input in chunks (:func:`run_in_chunks`). Subclasses set ``path``,
    ``input_shape`` and ``batch`` and implement ``call`` (one batch, no checks)."""

    path: Path
    input_shape: tuple[int | str, ...]
    batch: int | None

    def call(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def checked(self, x: np.ndarray, one_batch: bool = False) -> np.ndarray:
        """``x`` checked (and, with ``one_batch``, cut to the model's static batch: what a benchmark times)."""
        x = check_input(x, self.input_shape, str(self.path))
        return x[: self.batch] if one_batch and self.batch is not None else x

    def run(self, x: np.ndarray) -> np.ndarray:
        """Logits for a float32 NCHW batch (batches larger than a static batch are run in chunks)."""
        return run_in_chunks(self.call, self.checked(x), self.batch)
