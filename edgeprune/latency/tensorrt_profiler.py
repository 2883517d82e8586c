"""Time ONNX models as TensorRT engines on the local NVIDIA GPU (the optional ``tensorrt`` extra).

Each model is parsed with the TensorRT ONNX parser, built into an engine for the profile's precision
(FP16 / INT8 builder flags; an INT8 build of a model without Q/DQ nodes gets a fixed dynamic range on
every tensor — timing does not depend on the values), deserialized, and run with
``execute_async_v3`` on one CUDA stream; each run is timed with CUDA events. Buffers are torch CUDA
tensors. Engines are built on the device that runs them (an engine is tied to its GPU and TensorRT
version) — this module is what ``edgeprune profile --target jetson-orin`` or the agent on the device
runs, and :mod:`edgeprune.runtime.tensorrt_rt` builds and times shipped engines with the same
:func:`build_engine_bytes` and :func:`device_times_ms`.

Status: written against the TensorRT 10 Python API; it has not run in the development environment
(no GPU, no tensorrt wheel there). The ``gpu`` tests exercise it where both are present.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from edgeprune.errors import ConfigError, ProfileError, RuntimeUnavailableError

_INT8_RANGE = 4.0


def import_tensorrt() -> Any:
    """The ``tensorrt`` module, or a :class:`RuntimeUnavailableError` saying how to get it
    (shared with :mod:`edgeprune.runtime.tensorrt_rt`)."""
    try:
        import tensorrt as trt
    except ImportError:
        raise RuntimeUnavailableError(
            "TensorRT is not installed: pip install 'edgeprune[tensorrt]' on a machine with an NVIDIA GPU "
            "(on a Jetson it comes with JetPack)"
        ) from None
    return trt


def torch_cuda() -> Any:
    """``torch`` once a CUDA GPU is known to be visible (TensorRT buffers and events live there)."""
    import torch

    if not torch.cuda.is_available():
        raise RuntimeUnavailableError("TensorRT needs a CUDA GPU, and none is visible to PyTorch")
    return torch


def build_engine_bytes(
    onnx_bytes: bytes, precision: str, *, calibration_cache: bytes | None = None,
    placeholder_ranges: bool = False, workspace_bytes: int = 1 << 30, where: str = "the ONNX model",
) -> bytes:  # fmt: skip
    """The one TensorRT engine builder: a serialized engine of ``onnx_bytes`` at ``precision``.

    FP32 clears TF32 (on by default on Ampere and newer; it would break FP32 parity, and a table and
    a verification must time the same arithmetic). FP16 is enabled alongside INT8 for layers without
    INT8 kernels. An INT8 model without Q/DQ nodes needs ``calibration_cache`` (TensorRT's text
    format), or ``placeholder_ranges`` — a fixed dynamic range on every tensor, for timing only (the
    profiler's kernels: timing does not depend on values).
    """
    trt = import_tensorrt()
    logger = trt.Logger(trt.Logger.ERROR)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # explicit batch is the only mode in TensorRT 10
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_bytes):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ProfileError(f"TensorRT cannot parse {where}: {errors}"[:300])
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_bytes)
    if precision == "fp32":
        config.clear_flag(trt.BuilderFlag.TF32)
    if precision in ("fp16", "int8"):
        config.set_flag(trt.BuilderFlag.FP16)
    if precision == "int8":
        config.set_flag(trt.BuilderFlag.INT8)
        has_qdq = any(network.get_layer(i).type == trt.LayerType.QUANTIZE for i in range(network.num_layers))
        if not has_qdq and calibration_cache is not None:
            config.int8_calibrator = _cache_calibrator(trt, calibration_cache)
        elif not has_qdq and placeholder_ranges:
            for i in range(network.num_inputs):
                network.get_input(i).dynamic_range = (-_INT8_RANGE, _INT8_RANGE)
            for i in range(network.num_layers):
                layer = network.get_layer(i)
                for j in range(layer.num_outputs):
                    layer.get_output(j).dynamic_range = (-_INT8_RANGE, _INT8_RANGE)
        elif not has_qdq:
            raise ConfigError("an INT8 engine from a model without Q/DQ nodes needs a calibration cache")
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise ProfileError(f"TensorRT could not build a {precision} engine for {where}")
    return bytes(serialized)


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


def device_times_ms(
    executions: Sequence[Callable[[Any], None]],
    stream: Any,
    *,
    warmup: int,
    repetitions: int,
    passes: int = 1,
) -> list[list[list[float]]]:
    """The one device-side timer: GPU time (CUDA events, ms) of each ``execute(stream)``, interleaved,
    ``[execution][pass][repetition]`` — what the profiler's tables and a verification both measure."""
    torch = torch_cuda()
    out: list[list[list[float]]] = [[] for _ in executions]
    with torch.cuda.stream(stream):
        for execute in executions:
            for _ in range(warmup):
                execute(stream)
        stream.synchronize()
        for _ in range(passes):
            this: list[list[float]] = [[] for _ in executions]
            for _ in range(repetitions):
                for i, execute in enumerate(executions):
                    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                    start.record(stream)
                    execute(stream)
                    end.record(stream)
                    end.synchronize()
                    this[i].append(float(start.elapsed_time(end)))
            for i in range(len(executions)):
                out[i].append(this[i])
    return out


class _Engine:
    """A deserialized engine, its execution context and torch CUDA buffers for every I/O tensor."""

    def __init__(self, engine_bytes: bytes):
        trt = import_tensorrt()
        torch = torch_cuda()
        self.runtime = trt.Runtime(trt.Logger(trt.Logger.ERROR))
        self.engine = self.runtime.deserialize_cuda_engine(engine_bytes)
        if self.engine is None:
            raise ProfileError("TensorRT could not deserialize the engine")
        self.context = self.engine.create_execution_context()
        self.buffers = []
        for i in range(self.engine.num_io_tensors):
            name = self.engine.get_tensor_name(i)
            shape = tuple(max(int(d), 1) for d in self.engine.get_tensor_shape(name))
            dtype = {
                trt.float32: torch.float32,
                trt.float16: torch.float16,
                trt.int8: torch.int8,
                trt.int32: torch.int32,
            }[self.engine.get_tensor_dtype(name)]
            if self.engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT:
                self.context.set_input_shape(name, shape)
            buf = torch.zeros(shape, dtype=dtype, device="cuda")
            self.context.set_tensor_address(name, buf.data_ptr())
            self.buffers.append(buf)

    def run(self, stream: Any) -> None:
        if not self.context.execute_async_v3(stream.cuda_stream):
            raise ProfileError("TensorRT execution failed")


class TensorRTTimer:
    """A :class:`~edgeprune.latency.profiler.KernelTimer` for TensorRT on this machine's GPU."""

    def __init__(self, precision: str = "fp16", warmup: int = 30, runs: int = 100):
        import_tensorrt()
        torch_cuda()
        self.precision, self.warmup, self.runs = precision, warmup, runs

    def time_models_ms(self, models: list[bytes]) -> list[list[float]]:
        """Per-model GPU times (CUDA events, ms) of interleaved runs after warm-up."""
        torch = torch_cuda()
        engines = [_Engine(build_engine_bytes(m, self.precision, placeholder_ranges=True)) for m in models]
        times = device_times_ms(
            [e.run for e in engines], torch.cuda.Stream(), warmup=self.warmup, repetitions=self.runs
        )
        return [t[0] for t in times]

    def info(self) -> dict[str, Any]:
        fp = gpu_fingerprint(self.precision)
        if fp is None:  # pragma: no cover - the constructor already checked
            raise RuntimeUnavailableError("TensorRT or a CUDA GPU is not available")
        return {
            "device": fp["device_name"],
            "runtime": "tensorrt",
            "runtime_version": fp["runtime_version"],
            "threads": 1,
            "precision": self.precision,
            "fingerprint": fp,
        }


def gpu_fingerprint(precision: str) -> dict[str, Any] | None:
    """What a TensorRT table is measured on: GPU name, compute capability, driver, CUDA and TensorRT
    versions, precision; None where TensorRT or a CUDA GPU is not available here."""
    try:
        trt = import_tensorrt()
        torch = torch_cuda()
    except RuntimeUnavailableError:
        return None
    major, minor = torch.cuda.get_device_capability(0)
    try:
        driver: Any = torch._C._cuda_getDriverVersion()
    except Exception:  # a private API: the driver is informative, not essential
        driver = None
    return {
        "kind": "gpu",
        "device_name": torch.cuda.get_device_name(0),
        "compute_capability": f"{major}.{minor}",
        "driver": driver,
        "cuda": torch.version.cuda,
        "runtime": "tensorrt",
        "runtime_version": trt.__version__,
        "precision": precision,
        "threads": 1,
    }
