"""Time ONNX models as TensorRT engines on the local NVIDIA GPU (the optional ``tensorrt`` extra).

Each model is parsed with the TensorRT ONNX parser, built into an engine for the profile's precision
(FP16 / INT8 builder flags; an INT8 build of a model without Q/DQ nodes gets a fixed dynamic range on
every tensor — timing does not depend on the values), deserialized, and run with
``execute_async_v3`` on one CUDA stream; each run is timed with CUDA events. Buffers are torch CUDA
tensors. Engines are built on the device that runs them (DESIGN.md) — this module is what
``edgeprune profile --target jetson-orin`` or the agent on the device runs.

Status: written against the TensorRT 10 Python API; it has not run in the development environment
(no GPU, no tensorrt wheel there). The ``gpu`` tests exercise it where both are present.
"""

from __future__ import annotations

from typing import Any

from edgeprune.errors import ProfileError, RuntimeUnavailableError

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


def build_engine(onnx_bytes: bytes, precision: str, workspace_bytes: int = 1 << 30) -> bytes:
    """A serialized TensorRT engine of ``onnx_bytes`` at ``precision`` (fp32 / fp16 / int8)."""
    trt = import_tensorrt()
    logger = trt.Logger(trt.Logger.ERROR)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # explicit batch is the only mode in TensorRT 10
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_bytes):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ProfileError(f"TensorRT cannot parse the ONNX model: {errors}"[:300])
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_bytes)
    if precision in ("fp16", "int8"):
        config.set_flag(trt.BuilderFlag.FP16)
    if precision == "int8":
        config.set_flag(trt.BuilderFlag.INT8)
        has_qdq = any(network.get_layer(i).type == trt.LayerType.QUANTIZE for i in range(network.num_layers))
        if not has_qdq:
            for i in range(network.num_inputs):
                network.get_input(i).dynamic_range = (-_INT8_RANGE, _INT8_RANGE)
            for i in range(network.num_layers):
                layer = network.get_layer(i)
                for j in range(layer.num_outputs):
                    layer.get_output(j).dynamic_range = (-_INT8_RANGE, _INT8_RANGE)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise ProfileError(f"TensorRT could not build a {precision} engine for the model")
    return bytes(serialized)


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
        engines = [_Engine(build_engine(m, self.precision)) for m in models]
        stream = torch.cuda.Stream()
        samples: list[list[float]] = [[] for _ in engines]
        with torch.cuda.stream(stream):
            for e in engines:
                for _ in range(self.warmup):
                    e.run(stream)
            stream.synchronize()
            for _ in range(self.runs):
                for i, e in enumerate(engines):
                    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                    start.record(stream)
                    e.run(stream)
                    end.record(stream)
                    end.synchronize()
                    samples[i].append(float(start.elapsed_time(end)))
        return samples

    def info(self) -> dict[str, Any]:
        trt = import_tensorrt()
        torch = torch_cuda()
        return {
            "device": torch.cuda.get_device_name(0),
            "runtime": "tensorrt",
            "runtime_version": trt.__version__,
            "threads": 1,
            "precision": self.precision,
        }
