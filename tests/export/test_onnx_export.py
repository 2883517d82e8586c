"""ONNX export parity: max |Δ logits| <= 1e-4 and 100% top-1 agreement on 1,000 CIFAR-10 test images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from edgeprune.config import ModelConfig
from edgeprune.errors import ExportError, VerificationError
from edgeprune.export import describe_onnx, export_onnx, load_onnx_checked
from edgeprune.models import build_model
from edgeprune.runtime import get_runtime
from tests.export.fixtures import bn_calibrated, random_plan, torch_logits

EXAMPLE = torch.zeros(1, 3, 32, 32)


def _parity(model: torch.nn.Module, path: Path, x: np.ndarray) -> tuple[float, float, np.ndarray]:
    info = export_onnx(model, EXAMPLE, path)
    assert info.opset >= 17 and info.input_shape == (1, 3, 32, 32) and info.output_shape == (1, 10)
    got = get_runtime("onnxruntime-cpu").load(path).run(x)
    ref = torch_logits(model, x)
    return float(np.abs(got - ref).max()), float(np.mean(got.argmax(1) == ref.argmax(1))), got


@pytest.fixture(scope="module")
def resnet56(pretrained):
    return build_model(ModelConfig(name="resnet56", weights=pretrained["resnet56"])).model


def test_resnet56_unpruned_parity(resnet56, test_1000, tmp_path):
    x, y = test_1000
    max_diff, agree, logits = _parity(resnet56, tmp_path / "m.onnx", x)
    assert max_diff <= 1e-4 and agree == 1.0
    assert np.mean(logits.argmax(1) == y) > 0.75  # the pretrained weights really are in the file


def test_resnet56_random_plan_parity(resnet56, test_1000, tmp_path):
    from edgeprune.graph import apply_plan

    plan, analysis = random_plan(resnet56, seed=3)
    pruned = apply_plan(resnet56, plan, EXAMPLE, analysis=analysis)
    assert sum(p.numel() for p in pruned.parameters()) < sum(p.numel() for p in resnet56.parameters())
    max_diff, agree, _ = _parity(pruned, tmp_path / "p.onnx", test_1000[0])
    assert max_diff <= 1e-4 and agree == 1.0


@pytest.mark.slow
@pytest.mark.parametrize("pruning", ["none", "torch_pruning", "random_plan"])
def test_mobilenet_v2_parity(pruning, cifar, test_1000, tmp_path):
    import torch_pruning as tp

    from edgeprune.graph import apply_plan

    torch.manual_seed(0)
    model = bn_calibrated(
        build_model(ModelConfig(name="torchvision:mobilenet_v2", num_classes=10)).model, cifar.calib.x[:256]
    )
    if pruning == "torch_pruning":
        imp = tp.importance.MagnitudeImportance(p=1)
        last = model.classifier[-1]
        tp.pruner.MagnitudePruner(
            model, EXAMPLE, importance=imp, pruning_ratio=0.4, ignored_layers=[last]
        ).step()
    elif pruning == "random_plan":
        plan, analysis = random_plan(model, seed=1)
        model = apply_plan(model, plan, EXAMPLE, analysis=analysis)
    model = bn_calibrated(model, cifar.calib.x[:256])
    max_diff, agree, logits = _parity(model, tmp_path / "mbv2.onnx", test_1000[0])
    assert np.abs(logits).max() > 0.1  # real logits, not the ~1e-15 of an uncalibrated random network
    assert max_diff <= 1e-4 and agree == 1.0


def test_dynamic_batch(resnet56, tmp_path):
    info = export_onnx(resnet56, EXAMPLE, tmp_path / "d.onnx", dynamic_batch=True)
    assert info.dynamic_batch and info.input_shape[0] == "batch"
    sess = get_runtime("onnxruntime-cpu").load(tmp_path / "d.onnx")
    x = np.random.default_rng(0).standard_normal((7, 3, 32, 32)).astype(np.float32)
    assert sess.run(x).shape == (7, 10)


def test_static_model_runs_any_count_in_chunks(resnet56, test_1000, tmp_path):
    export_onnx(resnet56, EXAMPLE, tmp_path / "s.onnx")
    sess = get_runtime("onnxruntime-cpu").load(tmp_path / "s.onnx")
    x = test_1000[0][:5]
    assert np.allclose(sess.run(x), torch_logits(resnet56, x), atol=1e-4)


def test_old_opset_and_bad_input_refused(resnet56, tmp_path):
    with pytest.raises(ExportError, match="opset"):
        export_onnx(resnet56, EXAMPLE, tmp_path / "o.onnx", opset=13)
    with pytest.raises(ExportError, match="4-d"):
        export_onnx(resnet56, torch.zeros(3, 32, 32), tmp_path / "o.onnx")


def test_missing_and_corrupt_onnx(tmp_path):
    with pytest.raises(VerificationError, match="not found"):
        load_onnx_checked(tmp_path / "nope.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07garbage" * 10)
    with pytest.raises(VerificationError, match="not a valid ONNX model"):
        describe_onnx(bad)
