"""Native TensorRT (10.x API): build an engine from ONNX (FP32/FP16/INT8), serialise it, run it.

INT8 comes either from a QDQ model (explicit quantization: the scales are in the graph) or from a
calibration cache in TensorRT's text format (written by :mod:`edgeprune.export.calibration_table`),
fed through an ``IInt8EntropyCalibrator2`` that only reads the cache — so an engine is built on the
device from what the host shipped, without the calibration images.

Device buffers are CUDA tensors from PyTorch (no pycuda dependency). This module needs the optional
``tensorrt`` extra and an NVIDIA GPU; it cannot run on a machine without them, where it raises
:class:`RuntimeUnavailableError` ("TensorRT is not installed ..."). Its tests are marked ``gpu``; it
has not been executed on the CPU-only machine it was written on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgeprune.atomic import write_bytes_atomic
from edgeprune.errors import ConfigError, ExportError, ProfileError, VerificationError
from edgeprune.latency.tensorrt_profiler import (
    build_engine_bytes,
    device_times_ms,
    import_tensorrt,
    torch_cuda,
)
from edgeprune.latency.timing import LatencyStats, stats_of
from edgeprune.runtime.base import RUNTIMES, ChunkedSession

PRECISIONS = ("fp32", "fp16", "int8")


def build_engine(
    onnx_path: Path, engine_path: Path, *, precision: str = "fp16", calibration_cache: Path | None = None,
    workspace_bytes: int = 1 << 30,
) -> Path:  # fmt: skip
    """Build and serialise a TensorRT engine for this GPU from an ONNX file.

    ``precision="int8"``: a QDQ model is quantized explicitly; a plain FP32 model needs
    ``calibration_cache`` (TensorRT's text format). FP16 is enabled alongside INT8 for layers
    without INT8 kernels.
    """
    if precision not in PRECISIONS:
        raise ConfigError(f"unknown TensorRT precision {precision!r} (use one of {', '.join(PRECISIONS)})")
    import_tensorrt()  # "not installed" before "no GPU": the first thing a user must fix
    torch_cuda()
    cache = Path(calibration_cache).read_bytes() if calibration_cache is not None else None
    try:
        serialized = build_engine_bytes(
            Path(onnx_path).read_bytes(), precision, calibration_cache=cache, workspace_bytes=workspace_bytes,
            where=str(onnx_path),
        )  # fmt: skip
    except ProfileError as err:
        raise ExportError(str(err)) from None
    engine_path = Path(engine_path)
    write_bytes_atomic(engine_path, serialized)
    return engine_path


class TensorRTSession(ChunkedSession):
    """A deserialised engine with one input and one output, run on CUDA tensors."""

    def __init__(self, path: Path):
        trt = import_tensorrt()
        torch = torch_cuda()
        self.path = path
        runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self._engine = runtime.deserialize_cuda_engine(path.read_bytes())
        if self._engine is None:
            raise VerificationError(
                f"TensorRT cannot deserialise {path} (corrupt, or built for another GPU/TensorRT version)"
            )
        self._context = self._engine.create_execution_context()
        names = [self._engine.get_tensor_name(i) for i in range(self._engine.num_io_tensors)]
        inputs = [n for n in names if self._engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outputs = [n for n in names if self._engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        if len(inputs) != 1 or len(outputs) != 1:
            raise VerificationError(
                f"{path}: expected one input and one output, found {len(inputs)} and {len(outputs)}"
            )
        self.input_name, self._output_name = inputs[0], outputs[0]
        shape = tuple(self._engine.get_tensor_shape(self.input_name))
        self.input_shape: tuple[int | str, ...] = tuple(d if d >= 0 else "batch" for d in shape)
        self.batch = shape[0] if shape[0] >= 0 else None
        self._stream = torch.cuda.Stream()
        self._torch = torch

    def _bind(self, x: np.ndarray) -> tuple[Any, Any]:
        """``x`` copied to the GPU and an output tensor of the matching shape, both bound to the context."""
        torch = self._torch
        xin = torch.from_numpy(x).cuda()
        self._context.set_input_shape(self.input_name, tuple(xin.shape))
        out_shape = tuple(self._context.get_tensor_shape(self._output_name))
        out = torch.empty(out_shape, dtype=torch.float32, device="cuda")
        self._context.set_tensor_address(self.input_name, xin.data_ptr())
        self._context.set_tensor_address(self._output_name, out.data_ptr())
        return xin, out

    def call(self, x: np.ndarray) -> np.ndarray:
        _, out = self._bind(x)
        self._context.execute_async_v3(self._stream.cuda_stream)
        self._stream.synchronize()
        return out.cpu().numpy()

    def benchmark(
        self, x: np.ndarray, warmup: int = 30, repetitions: int = 100, passes: int = 3
    ) -> LatencyStats:
        """Device time of one execution with the input already on the GPU (no host copies)."""
        _bound = self._bind(self.checked(x, one_batch=True))  # the tensors stay alive while timing

        def execute(stream: Any) -> None:
            self._context.execute_async_v3(stream.cuda_stream)

        times = device_times_ms(
            [execute], self._stream, warmup=warmup, repetitions=repetitions, passes=passes
        )
        return stats_of(times[0], warmup)


class TensorRTRuntime:
    """Loads ``model.engine`` files; :func:`build_engine` makes them on the device."""

    name = "tensorrt"

    def __init__(self, threads: int = 1, spinning: bool = False):
        # host threads and spinning do not change a GPU engine; kept for the record in verify.json
        self.threads = threads
        self.spinning = spinning

    def load(self, path: Path) -> TensorRTSession:
        path = Path(path)
        if not path.is_file():
            raise VerificationError(f"TensorRT engine not found: {path}")
        return TensorRTSession(path)

    def info(self) -> dict[str, Any]:
        trt = import_tensorrt()
        torch = torch_cuda()
        return {
            "runtime": self.name,
            "runtime_version": trt.__version__,
            "gpu": torch.cuda.get_device_name(0),
            "threads": self.threads,
        }


RUNTIMES.register("tensorrt", TensorRTRuntime)
