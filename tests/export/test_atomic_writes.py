"""Every file a pick directory gets is written through edgeprune.atomic: when the final rename fails,
the file that was there is left whole and nothing else is left beside it."""

from __future__ import annotations

import json
import os

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from edgeprune import atomic
from edgeprune.errors import ExportError
from edgeprune.export import export_onnx, quantize_int8
from edgeprune.export.aoti import export_aoti
from edgeprune.export.calibration_table import read_trt_cache, write_table_json, write_trt_cache
from edgeprune.export.int8 import CalibrationRecipe
from edgeprune.export.manifest import read_manifest, write_manifest
from edgeprune.export.pick import write_extra_buffers

EXAMPLE = torch.zeros(1, 3, 8, 8)
RANGES = {"input": (-1.0, 2.54), "conv_out": (0.0, 1.27)}


class Tiny(nn.Module):
    """conv-bn-relu-pool-linear with a non-persistent buffer (like the option-A shortcut's embedding)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv, self.bn, self.fc = nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.Linear(8, 4)
        self.register_buffer("mask", (torch.arange(8) % 2).float().view(1, 8, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.bn(self.conv(x))) * self.mask
        return self.fc(h.mean((2, 3)))


def _manifest(pick):
    (pick / "model.onnx").write_bytes(b"model")
    return write_manifest(
        pick, files=["model.onnx"], input_name="input", input_shape=[1, 3, 8, 8], mean=[0.5] * 3,
        std=[0.25] * 3, class_names=["a", "b", "c", "d"], target="host-cpu", precision="fp32",
        expected_latency_ms=None, latency_source="measured",
    )  # fmt: skip


WRITERS = {
    "model.onnx": lambda pick: export_onnx(Tiny(), EXAMPLE, pick / "model.onnx"),
    "buffers.pt": lambda pick: write_extra_buffers(Tiny(), pick / "buffers.pt"),
    "manifest.json": _manifest,
    "calibration.json": lambda pick: write_table_json(pick / "calibration.json", RANGES, {"recipe": {}}),
    "calibration.cache": lambda pick: write_trt_cache(pick / "calibration.cache", RANGES),
}


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_a_failed_rename_leaves_the_old_file(tmp_path, monkeypatch, name):
    pick = tmp_path / "pick"
    pick.mkdir()
    WRITERS[name](pick)
    before = {p.name: p.read_bytes() for p in pick.iterdir()}
    assert name in before  # the writer wrote its file there
    (pick / name).write_bytes(b"the old file")
    before[name] = b"the old file"

    def full(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic.os, "replace", full)
    with pytest.raises((OSError, ExportError), match="No space left"):
        WRITERS[name](pick)
    assert {p.name: p.read_bytes() for p in pick.iterdir()} == before  # no temporary left either


def test_the_writers_output_reads_back(tmp_path):
    for write in WRITERS.values():
        write(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(WRITERS)
    assert torch.equal(torch.load(tmp_path / "buffers.pt", weights_only=True)["mask"], Tiny().mask)
    assert read_trt_cache(tmp_path / "calibration.cache")[1]["input"] == pytest.approx(0.02)
    assert json.loads((tmp_path / "calibration.json").read_text())["tensors"]["conv_out"][
        "scale"
    ] == pytest.approx(0.01)
    # manifest.json lists model.onnx as _manifest wrote it, after export_onnx: only the name is checked
    assert list(read_manifest(tmp_path).files) == ["model.onnx"]


@pytest.fixture
def tiny_onnx(tmp_path):
    path = tmp_path / "pick" / "model.onnx"
    export_onnx(Tiny(), EXAMPLE, path)
    return path


RECIPE = CalibrationRecipe(num_samples=8, format="qoperator")
CALIB = np.random.default_rng(0).normal(size=(16, 3, 8, 8)).astype(np.float32)


def test_quantizer_output_is_moved_into_place(tiny_onnx, monkeypatch):
    seen = []
    real = atomic.os.replace
    monkeypatch.setattr(atomic.os, "replace", lambda a, b: (seen.append((str(a), str(b))), real(a, b)))
    art = quantize_int8(tiny_onnx, CALIB, RECIPE, tiny_onnx.parent / "model.int8.onnx")
    pick = tiny_onnx.parent
    assert sorted(p.name for p in pick.iterdir()) == [
        "calibration.cache", "calibration.json", "model.int8.onnx", "model.onnx",
    ]  # fmt: skip
    assert "QLinearConv" in {n.op_type for n in onnx.load(str(art.model_path)).graph.node}
    # the quantizer wrote into a hidden folder beside the model, renamed over model.int8.onnx
    src = next(a for a, b in seen if b.endswith("model.int8.onnx"))
    assert os.path.dirname(os.path.dirname(src)) == str(pick) and os.path.basename(src) == "model.int8.onnx"
    assert os.path.basename(os.path.dirname(src)).startswith(".model.int8.onnx.")


def test_a_failed_quantization_leaves_the_old_int8_model(tiny_onnx, monkeypatch):
    import onnxruntime.quantization as q

    pick = tiny_onnx.parent
    (pick / "model.int8.onnx").write_bytes(b"the old int8 model")

    def crash(model_input, model_output, *args, **kwargs):
        with open(model_output, "wb") as f:
            f.write(b"half an int8 mod")
        raise RuntimeError("calibration ran out of memory")

    monkeypatch.setattr(q, "quantize_static", crash)
    with pytest.raises(ExportError, match="INT8 quantization .* failed: calibration ran out of memory"):
        quantize_int8(tiny_onnx, CALIB, RECIPE, pick / "model.int8.onnx")
    assert (pick / "model.int8.onnx").read_bytes() == b"the old int8 model"
    assert sorted(p.name for p in pick.iterdir()) == ["model.int8.onnx", "model.onnx"]


def test_aoti_package_is_written_under_a_pt2_name_then_moved(tmp_path, monkeypatch):
    """AOTInductor's packager is replaced by one that records its path (the real one takes 10-30 s)."""
    paths = []

    def package(exported, package_path):
        assert str(package_path).endswith(".pt2")  # the real packager asserts the same
        paths.append(package_path)
        with open(package_path, "wb") as f:
            f.write(b"pt2 package")
        return package_path

    monkeypatch.setattr(torch._inductor, "aoti_compile_and_package", package)
    out = export_aoti(Tiny(), EXAMPLE, tmp_path / "model.pt2")
    assert out == tmp_path / "model.pt2" and out.read_bytes() == b"pt2 package"
    assert paths[0] != str(out) and os.path.dirname(os.path.dirname(paths[0])) == str(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt2"]

    def broken(exported, package_path):
        with open(package_path, "wb") as f:
            f.write(b"half")
        raise RuntimeError("g++ not found")

    monkeypatch.setattr(torch._inductor, "aoti_compile_and_package", broken)
    with pytest.raises(ExportError, match="AOTInductor export failed: g\\+\\+ not found"):
        export_aoti(Tiny(), EXAMPLE, tmp_path / "model.pt2")
    assert out.read_bytes() == b"pt2 package" and [p.name for p in tmp_path.iterdir()] == ["model.pt2"]
