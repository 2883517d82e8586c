"""ONNX Runtime: CPU (threads), and its CUDA / TensorRT execution providers where installed.

Sessions are opened exactly as the latency profiler opens them (:mod:`edgeprune.latency.timing`):
``intra_op_num_threads`` = the target's threads and spinning, sequential execution, all graph
optimisations — so a verified latency is comparable with the table's prediction.
"""

from __future__ import annotations

import platform
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edgeprune.errors import RuntimeUnavailableError, VerificationError
from edgeprune.latency.timing import (
    SPINNING_DEFAULT,
    LatencyStats,
    benchmark_callable,
    cpu_model_name,
    import_onnxruntime,
    ort_session_options,
    threading_fields,
)
from edgeprune.runtime.base import RUNTIMES, ChunkedSession

PROVIDERS = {
    "onnxruntime-cpu": ["CPUExecutionProvider"],
    "onnxruntime-cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"],
    "onnxruntime-trt": ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
}


class OrtSession(ChunkedSession):
    """A model loaded in ONNX Runtime."""

    def __init__(self, sess: Any, path: Path):
        self._sess = sess
        self.path = path
        inp = sess.get_inputs()[0]
        self.input_name: str = inp.name
        self.input_shape: tuple[int | str, ...] = tuple(
            d if isinstance(d, int) else str(d) for d in inp.shape
        )
        self.providers: list[str] = sess.get_providers()
        b = self.input_shape[0]
        self.batch = b if isinstance(b, int) else None

    def call(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self._sess.run(None, {self.input_name: x})[0])

    def benchmark(
        self, x: np.ndarray, warmup: int = 30, repetitions: int = 100, passes: int = 3
    ) -> LatencyStats:
        feed = {self.input_name: self.checked(x, one_batch=True)}
        return benchmark_callable(
            lambda: self._sess.run(None, feed), warmup=warmup, repetitions=repetitions, passes=passes
        )


class OrtRuntime:
    """ONNX Runtime with a fixed provider list."""

    def __init__(self, name: str, threads: int, spinning: bool = SPINNING_DEFAULT):
        self.name = name
        self.threads = threads
        self.spinning = spinning
        self.providers = PROVIDERS[name]

    def session_options(self) -> Any:
        return ort_session_options(self.threads, self.spinning)

    def _check_providers(self) -> None:
        available = set(import_onnxruntime().get_available_providers())
        missing = [p for p in self.providers if p not in available]
        if missing:
            raise RuntimeUnavailableError(
                f"{self.name} needs ONNX Runtime's {missing[0]}, which this onnxruntime build lacks "
                "(install onnxruntime-gpu with CUDA/TensorRT on a machine with an NVIDIA GPU)"
            )

    def load(self, path: Path) -> OrtSession:
        """Open ``path`` in a fresh session; a missing or corrupt file is a :class:`VerificationError`."""
        self._check_providers()
        path = Path(path)
        if not path.is_file():
            raise VerificationError(f"model file not found: {path}")
        ort = import_onnxruntime()
        try:
            sess = ort.InferenceSession(
                str(path), sess_options=self.session_options(), providers=self.providers
            )
        except Exception as err:  # ORT raises its own exception types for malformed models
            raise VerificationError(
                f"ONNX Runtime cannot load {path}: {str(err).splitlines()[0][:200]}"
            ) from None
        return OrtSession(sess, path)

    def info(self) -> dict[str, Any]:
        import os

        ort = import_onnxruntime()
        return {
            "runtime": self.name, "runtime_version": ort.__version__, "providers": self.providers,
            **threading_fields(self.threads, self.spinning), "cpu": cpu_model_name(), "logical_cpus": os.cpu_count(),
            "os": f"{platform.system()} {platform.machine()}", "python": platform.python_version(),
        }  # fmt: skip


def _factory(name: str) -> Callable[[int, bool], OrtRuntime]:
    def make(threads: int, spinning: bool) -> OrtRuntime:
        return OrtRuntime(name, threads, spinning)

    return make


for _name in PROVIDERS:
    RUNTIMES.register(_name, _factory(_name))
