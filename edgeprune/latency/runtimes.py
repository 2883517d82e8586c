"""The inference runtimes edgeprune knows by name: the one list hardware profiles and runtimes share.

``latency`` sits below ``runtime`` (docs/architecture.md), so the names are declared here, in the lower
package: a hardware profile's ``runtime`` field is checked against :data:`RUNTIME_KINDS`, and
:mod:`edgeprune.runtime` registers one implementation under each declared name (a test checks the two
agree). To add a runtime, declare it here and register its implementation in ``edgeprune/runtime/``.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgeprune.errors import ConfigError
from edgeprune.registry import Registry


@dataclass(frozen=True)
class RuntimeKind:
    """A runtime name and what edgeprune can do with it.

    ``profiled``: edgeprune has a latency profiler for it (:mod:`edgeprune.latency.profile_run`), so a
    hardware profile may name it as its target's runtime. ``precisions``: the precisions of the models
    it runs, which a run may ship and search for (ONNX Runtime's CPU provider runs FP32 models and INT8
    models quantized by :mod:`edgeprune.latency.quantize`; it has no FP16 kernels worth shipping).
    """

    name: str
    description: str
    profiled: bool
    precisions: tuple[str, ...] = ("fp32", "fp16", "int8")


RUNTIME_KINDS: Registry[RuntimeKind] = Registry("runtime", error=ConfigError)


def declare_runtime(kind: RuntimeKind) -> RuntimeKind:
    """Declare a runtime name; a duplicate is refused (``ValueError``)."""
    return RUNTIME_KINDS.register(kind.name, kind)


def profiled_runtimes() -> list[str]:
    """Runtime names a hardware profile may name (those with a latency profiler), sorted."""
    return [name for name, kind in RUNTIME_KINDS.items() if kind.profiled]


declare_runtime(
    RuntimeKind(
        "onnxruntime-cpu", "ONNX Runtime, CPU execution provider", profiled=True, precisions=("fp32", "int8")
    )
)
declare_runtime(
    RuntimeKind("onnxruntime-cuda", "ONNX Runtime, CUDA execution provider (onnxruntime-gpu)", profiled=False)
)
declare_runtime(
    RuntimeKind(
        "onnxruntime-trt", "ONNX Runtime, TensorRT execution provider (onnxruntime-gpu)", profiled=False
    )
)
declare_runtime(RuntimeKind("tensorrt", "NVIDIA TensorRT engine built on the device", profiled=True))
