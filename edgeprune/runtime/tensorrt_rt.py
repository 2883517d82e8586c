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

from edgeprune.errors import ConfigError, ExportError, VerificationError
from edgeprune.latency.tensorrt_profiler import import_tensorrt, torch_cuda
from edgeprune.runtime.base import register_runtime, run_in_chunks
from edgeprune.runtime.benchmark import LatencyStats, benchmark_callable
from edgeprune.runtime.onnxruntime_rt import check_input

PRECISIONS = ("fp32", "fp16", "int8")


def _cache_calibrator(trt: Any, cache: bytes) -> Any:
    """An INT8 calibrator that serves a stored calibration cache and never asks for images."""

    class CacheCalibrator(trt.IInt8EntropyCalibrator2):  # type: ignore[misc,name-defined]
        def __init__(self) -> None:
            super().__init__()
            self._cache = cache

        def get_batch_size(self) -> int:
            return 1

        def get_batch(self, names: list[str]) -> None:
            return None  # no images: everything comes from the cache

        def read_calibration_cache(self) -> bytes:
            return self._cache

        def write_calibration_cache(self, cache: bytes) -> None:
            return None

    return CacheCalibrator()


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
    trt = import_tensorrt()
    torch_cuda()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # TensorRT 10: networks are always explicit-batch
    parser = trt.OnnxParser(network, logger)
    data = Path(onnx_path).read_bytes()
    if not parser.parse(data):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ExportError(f"TensorRT cannot parse {onnx_path}: {errors[:300]}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_bytes)
    if precision == "fp32":
        config.clear_flag(trt.BuilderFlag.TF32)  # TF32 (on by default on Ampere+) would break FP32 parity
    if precision in ("fp16", "int8"):
        config.set_flag(trt.BuilderFlag.FP16)
    if precision == "int8":
        config.set_flag(trt.BuilderFlag.INT8)
        has_qdq = any(network.get_layer(i).type == trt.LayerType.QUANTIZE for i in range(network.num_layers))
        if not has_qdq:
            if calibration_cache is None:
                raise ConfigError("an INT8 engine from a model without Q/DQ nodes needs a calibration cache")
            config.int8_calibrator = _cache_calibrator(trt, Path(calibration_cache).read_bytes())
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise ExportError(f"TensorRT failed to build an engine from {onnx_path} ({precision})")
    engine_path = Path(engine_path)
    engine_path.write_bytes(bytes(serialized))
    return engine_path


class TensorRTSession:
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
        self._batch = shape[0] if shape[0] >= 0 else None
        self._stream = torch.cuda.Stream()
        self._torch = torch

    def _call(self, x: np.ndarray) -> np.ndarray:
        torch = self._torch
        xin = torch.from_numpy(x).cuda()
        self._context.set_input_shape(self.input_name, tuple(xin.shape))
        out_shape = tuple(self._context.get_tensor_shape(self._output_name))
        out = torch.empty(out_shape, dtype=torch.float32, device="cuda")
        self._context.set_tensor_address(self.input_name, xin.data_ptr())
        self._context.set_tensor_address(self._output_name, out.data_ptr())
        self._context.execute_async_v3(self._stream.cuda_stream)
        self._stream.synchronize()
        return out.cpu().numpy()

    def run(self, x: np.ndarray) -> np.ndarray:
        x = check_input(x, self.input_shape, str(self.path))
        return run_in_chunks(self._call, x, self._batch)

    def benchmark(
        self, x: np.ndarray, warmup: int = 30, repetitions: int = 100, passes: int = 3
    ) -> LatencyStats:
        """Device time of one execution with the input already on the GPU (no host copies)."""
        torch = self._torch
        x = check_input(x, self.input_shape, str(self.path))
        xin = torch.from_numpy(x[: self._batch] if self._batch else x).cuda()
        self._context.set_input_shape(self.input_name, tuple(xin.shape))
        out = torch.empty(
            tuple(self._context.get_tensor_shape(self._output_name)), dtype=torch.float32, device="cuda"
        )
        self._context.set_tensor_address(self.input_name, xin.data_ptr())
        self._context.set_tensor_address(self._output_name, out.data_ptr())

        def call() -> None:
            self._context.execute_async_v3(self._stream.cuda_stream)
            self._stream.synchronize()

        return benchmark_callable(call, warmup=warmup, repetitions=repetitions, passes=passes)


class TensorRTRuntime:
    """Loads ``model.engine`` files; :func:`build_engine` makes them on the device."""

    name = "tensorrt"

    def __init__(self, threads: int = 1):
        self.threads = threads

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


register_runtime("tensorrt")(TensorRTRuntime)
