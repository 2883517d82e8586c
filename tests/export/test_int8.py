"""INT8: recipes, deterministic calibration samples, ORT static quantization, calibration table formats."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch

from edgeprune.config import ModelConfig
from edgeprune.errors import ConfigError, ExportError
from edgeprune.export import export_onnx, load_recipe, quantize_int8
from edgeprune.export.calibration_table import float_to_hex, hex_to_float, read_trt_cache, symmetric_scale
from edgeprune.export.int8 import CalibrationRecipe, calibration_samples
from edgeprune.models import build_model
from edgeprune.runtime import get_runtime


def test_recipes_per_target():
    cpu, orin = load_recipe("host-cpu"), load_recipe("jetson-orin")
    assert cpu.format == "qoperator" and cpu.activation_type == "uint8" and cpu.per_channel
    assert orin.format == "qdq" and orin.symmetric_activations and orin.activation_type == "int8"
    assert load_recipe("desktop-gpu").format == "qdq" and load_recipe("mobile-cpu").format == "qoperator"
    with pytest.raises(ConfigError, match="no INT8 calibration recipe"):
        load_recipe("no-such-target")


def test_bad_recipe_is_one_line(tmp_path):
    (tmp_path / "x.yaml").write_text("method: magic\n")
    with pytest.raises(ConfigError, match="method"):
        load_recipe("x", tmp_path)
    with pytest.raises(ConfigError, match="symmetric"):
        CalibrationRecipe(format="qdq", symmetric_activations=True, activation_type="uint8").check()


def test_calibration_samples_deterministic():
    x = np.arange(50 * 3 * 2 * 2, dtype=np.float32).reshape(50, 3, 2, 2)
    a, b = calibration_samples(x, 10, seed=1), calibration_samples(x, 10, seed=1)
    c = calibration_samples(x, 10, seed=2)
    assert a.shape == (10, 3, 2, 2) and np.array_equal(a, b) and not np.array_equal(a, c)
    assert len({float(v) for v in a[:, 0, 0, 0]}) == 10  # without replacement
    assert calibration_samples(x, 500, seed=0).shape[0] == 50
    with pytest.raises(ExportError):
        calibration_samples(np.zeros((0, 3, 2, 2)), 4, 0)


def test_trt_cache_hex_format():
    assert float_to_hex(1.0) == "3f800000" and float_to_hex(-2.0) == "c0000000"
    assert hex_to_float("3c010204") == pytest.approx(0.0078740, rel=1e-4)  # 1/127
    assert symmetric_scale(-2.54, 1.0) == pytest.approx(0.02)
    assert symmetric_scale(0.0, 0.0) > 0


@pytest.fixture(scope="module")
def resnet20_onnx(pretrained, tmp_path_factory):
    model = build_model(ModelConfig(name="resnet20", weights=pretrained["resnet20"])).model
    path = tmp_path_factory.mktemp("r20") / "model.onnx"
    export_onnx(model, torch.zeros(1, 3, 32, 32), path)
    return path


def test_quantize_qoperator_for_cpu(resnet20_onnx, cifar, test_1000):
    recipe = load_recipe("host-cpu").model_copy(update={"num_samples": 64})
    art = quantize_int8(resnet20_onnx, cifar.train.x, recipe, resnet20_onnx.parent / "model.int8.onnx")
    ops = {n.op_type for n in onnx.load(str(art.model_path)).graph.node}
    assert "QLinearConv" in ops and "Conv" not in ops
    rt = get_runtime("onnxruntime-cpu")
    x, y = test_1000
    fp = rt.load(resnet20_onnx).run(x)
    q = rt.load(art.model_path).run(x)
    drop = np.mean(fp.argmax(1) == y) - np.mean(q.argmax(1) == y)
    assert drop <= 0.02 and np.mean(fp.argmax(1) == q.argmax(1)) >= 0.93
    table = json.loads(art.table_path.read_text())
    assert table["num_samples"] == 64 and table["recipe"]["method"] == "minmax"
    header, scales = read_trt_cache(art.trt_cache_path)
    assert header == "TRT-100800-EntropyCalibration2"
    assert len(scales) == art.tensors_calibrated > 20
    name = next(iter(scales))
    lo, hi = table["tensors"][name]["min"], table["tensors"][name]["max"]
    assert scales[name] == pytest.approx(max(abs(lo), abs(hi)) / 127, rel=1e-6)
    fp_names = {o for n in onnx.load(str(resnet20_onnx)).graph.node for o in n.output} | {"input"}
    assert set(scales) <= fp_names  # TensorRT parses model.onnx: the cache names its tensors


def test_quantize_qdq_for_tensorrt_is_symmetric(resnet20_onnx, cifar):
    recipe = load_recipe("jetson-orin").model_copy(update={"num_samples": 32, "method": "minmax"})
    art = quantize_int8(
        resnet20_onnx, cifar.train.x, recipe, resnet20_onnx.parent / "qdq" / "model.int8.onnx"
    )
    g = onnx.load(str(art.model_path)).graph
    assert any(n.op_type == "QuantizeLinear" for n in g.node) and any(n.op_type == "Conv" for n in g.node)
    zps = [i for i in g.initializer if i.name.endswith("zero_point")]
    dtypes = {onnx.numpy_helper.to_array(z).dtype for z in zps}
    assert dtypes <= {np.dtype(np.int8), np.dtype(np.int32)} and np.dtype(np.int8) in dtypes  # int32: biases
    assert all(not onnx.numpy_helper.to_array(z).any() for z in zps)  # zero point 0 everywhere
