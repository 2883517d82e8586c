"""The runtime registry and ONNX Runtime sessions; TensorRT is reported unavailable without a GPU."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from edgeprune.config import ModelConfig
from edgeprune.errors import ConfigError, DataError, RuntimeUnavailableError, VerificationError
from edgeprune.export import export_onnx
from edgeprune.latency.runtimes import RUNTIME_KINDS
from edgeprune.models import build_model
from edgeprune.runtime import RUNTIMES, get_runtime

HAS_TRT = importlib.util.find_spec("tensorrt") is not None


@pytest.fixture(scope="module")
def digits_onnx(tmp_path_factory):
    torch.manual_seed(0)
    model = build_model(ModelConfig(name="digits-resnet", num_classes=10)).model
    path = tmp_path_factory.mktemp("rt") / "model.onnx"
    export_onnx(model, torch.zeros(1, 1, 8, 8), path)
    return model, path


def test_registry():
    assert RUNTIMES.names() == ["onnxruntime-cpu", "onnxruntime-cuda", "onnxruntime-trt", "tensorrt"]
    with pytest.raises(ConfigError, match=r"unknown runtime 'tflite' \(known: onnxruntime-cpu, .*tensorrt\)"):
        get_runtime("tflite")
    with pytest.raises(ConfigError, match="threads"):
        get_runtime("onnxruntime-cpu", threads=0)
    with pytest.raises(ValueError, match="already registered"):
        RUNTIMES.register("onnxruntime-cpu")(lambda threads: None)


def test_every_declared_runtime_has_one_implementation_and_no_other():
    """One source of truth for runtime names: the implementations registered in edgeprune.runtime are
    exactly the names declared in edgeprune.latency.runtimes (which hardware profiles are checked against),
    and each implementation reports its registered name."""
    assert RUNTIMES.names() == RUNTIME_KINDS.names()
    for name, factory in RUNTIMES.items():
        assert factory(1, True).name == name


def test_ort_cpu_run_and_benchmark(digits_onnx):
    model, path = digits_onnx
    sess = get_runtime("onnxruntime-cpu", threads=1).load(path)
    assert sess.input_name == "input" and sess.input_shape == (1, 1, 8, 8)
    x = np.random.default_rng(0).standard_normal((9, 1, 8, 8)).astype(np.float32)
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    assert np.abs(sess.run(x) - ref).max() < 1e-4  # 9 images through a batch-1 model, in chunks
    stats = sess.benchmark(x, warmup=2, repetitions=5, passes=2)
    assert stats.count == 10 and 0 < stats.min_ms <= stats.median_ms
    info = get_runtime("onnxruntime-cpu").info()
    assert info["runtime"] == "onnxruntime-cpu" and info["threads"] == 1 and info["runtime_version"]


def test_wrong_shape_missing_and_corrupt(digits_onnx, tmp_path):
    _, path = digits_onnx
    rt = get_runtime("onnxruntime-cpu")
    with pytest.raises(DataError, match="expects input of shape 1x1x8x8"):
        rt.load(path).run(np.zeros((1, 3, 8, 8), np.float32))
    with pytest.raises(VerificationError, match="not found"):
        rt.load(tmp_path / "none.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(path.read_bytes()[:200])
    with pytest.raises(VerificationError, match="cannot load"):
        rt.load(bad)


@pytest.mark.skipif(HAS_TRT, reason="TensorRT is installed here")
def test_tensorrt_unavailable_is_one_clear_error(digits_onnx, tmp_path):
    from edgeprune.runtime.tensorrt_rt import build_engine

    with pytest.raises(RuntimeUnavailableError, match="TensorRT is not installed"):
        build_engine(digits_onnx[1], tmp_path / "model.engine")
    (tmp_path / "model.engine").write_bytes(b"x")
    with pytest.raises(RuntimeUnavailableError, match="TensorRT is not installed"):
        get_runtime("tensorrt").load(tmp_path / "model.engine")


def test_ort_gpu_providers_unavailable_on_cpu_build(digits_onnx):
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has CUDA")
    with pytest.raises(RuntimeUnavailableError, match="CUDAExecutionProvider"):
        get_runtime("onnxruntime-cuda").load(digits_onnx[1])


@pytest.mark.gpu
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_tensorrt_engine_matches_onnxruntime(digits_onnx, tmp_path, precision):
    from edgeprune.runtime.tensorrt_rt import build_engine

    pytest.importorskip("tensorrt")
    _, path = digits_onnx
    engine = build_engine(path, tmp_path / "model.engine", precision=precision)
    sess = get_runtime("tensorrt").load(engine)
    x = np.random.default_rng(0).standard_normal((4, 1, 8, 8)).astype(np.float32)
    ref = get_runtime("onnxruntime-cpu").load(path).run(x)
    tol = 1e-3 if precision == "fp32" else 5e-2
    assert np.abs(sess.run(x) - ref).max() < tol
    assert sess.benchmark(x, warmup=5, repetitions=10, passes=1).count == 10


@pytest.mark.gpu
@pytest.mark.parametrize("source", ["qdq", "cache"])
def test_tensorrt_int8_engine_from_qdq_or_calibration_cache(digits_onnx, tmp_path, source):
    from edgeprune.export import load_recipe, quantize_int8
    from edgeprune.runtime.tensorrt_rt import build_engine

    pytest.importorskip("tensorrt")
    _, path = digits_onnx
    calib = np.random.default_rng(1).standard_normal((64, 1, 8, 8)).astype(np.float32)
    recipe = load_recipe("jetson-orin").model_copy(update={"method": "minmax", "num_samples": 64})
    art = quantize_int8(path, calib, recipe, tmp_path / "model.int8.onnx")
    onnx_in = art.model_path if source == "qdq" else path
    cache = art.trt_cache_path if source == "cache" else None
    engine = build_engine(onnx_in, tmp_path / "model.engine", precision="int8", calibration_cache=cache)
    x = calib[:16]
    ref = get_runtime("onnxruntime-cpu").load(path).run(x)
    got = get_runtime("tensorrt").load(engine).run(x)
    assert np.mean(got.argmax(1) == ref.argmax(1)) >= 0.8
