"""The one quantizer: the export's INT8 models and the INT8 profiler's timed models come from it."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from edgeprune.errors import ProfileError
from edgeprune.latency.kernel_models import kernel_models
from edgeprune.latency.kernels import KernelKey
from edgeprune.latency.quantize import ProfileQuantizer, input_signature, load_recipe, quantize_onnx
from edgeprune.latency.timing import time_models_ms


def _ops(model: bytes) -> list[str]:
    return [n.op_type for n in onnx.load_from_string(model).graph.node]


def test_profile_quantizer_gives_the_graph_the_recipe_gives_the_shipped_model():
    block = KernelKey("cifar_block", 8, 8, 16, 16, 16)
    base, full = kernel_models(block)
    q = ProfileQuantizer(load_recipe("host-cpu"))  # QOperator, uint8 activations
    qbase, qfull = q(base), q(full)
    assert _ops(qbase) == ["QuantizeLinear", "QLinearConv", "DequantizeLinear"]  # context conv, ReLU fused
    assert _ops(qfull).count("QLinearConv") == 3 and "QLinearAdd" in _ops(qfull) and "Conv" not in _ops(qfull)
    assert q(full) == qfull  # seeded: the same model every time
    assert input_signature(onnx.load_from_string(qfull)) == ("x", (1, 3, 8, 8))  # still a float input
    a, b = time_models_ms([qbase, qfull], threads=1, warmup=2, runs=5)
    assert len(a) == len(b) == 5 and min(a + b) > 0


def test_a_failed_quantization_is_one_line_of_the_callers_error(tmp_path, monkeypatch):
    import onnxruntime.quantization as ortq

    def crash(*args, **kwargs):
        raise RuntimeError("calibration ran out of memory\nsecond line")

    monkeypatch.setattr(ortq, "quantize_static", crash)
    base, _ = kernel_models(KernelKey("conv", 8, 8, 3, 0, 16, variant="input"))
    out = tmp_path / "m.int8.onnx"
    x = np.zeros((2, 3, 8, 8), np.float32)
    with pytest.raises(
        ProfileError, match=r"INT8 quantization of a model failed: calibration ran out of memory$"
    ):
        quantize_onnx(base, x, load_recipe("host-cpu"), out, error=ProfileError)
    assert list(tmp_path.iterdir()) == []  # nothing left behind
