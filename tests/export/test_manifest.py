"""manifest.json: sizes and sha256 of every file, the input contract; tampering is caught."""

from __future__ import annotations

import hashlib
import json

import pytest

from edgeprune.errors import VerificationError
from edgeprune.export import check_manifest, read_manifest, write_manifest


def _write(tmp_path):
    (tmp_path / "model.onnx").write_bytes(b"model-bytes")
    (tmp_path / "weights.pt").write_bytes(b"w" * 100)
    return write_manifest(
        tmp_path, files=["model.onnx", "weights.pt"], input_name="input", input_shape=[1, 3, 32, 32],
        mean=[0.5, 0.5, 0.5], std=[0.25, 0.25, 0.25], class_names=["a", "b"], target="host-cpu",
        precision="fp32", expected_latency_ms=1.25, latency_source="measured", model_name="resnet20",
    )  # fmt: skip


def test_manifest_round_trip(tmp_path):
    path = _write(tmp_path)
    m = check_manifest(tmp_path)
    assert m.files["model.onnx"].sha256 == hashlib.sha256(b"model-bytes").hexdigest()
    assert m.files["weights.pt"].bytes == 100
    assert m.input_shape == [1, 3, 32, 32] and m.class_names == ["a", "b"] and m.expected_latency_ms == 1.25
    assert json.loads(path.read_text())["latency_source"] == "measured"


def test_sha256_mismatch_is_refused(tmp_path):
    _write(tmp_path)
    (tmp_path / "model.onnx").write_bytes(b"model-bytez")  # same size, other bytes
    with pytest.raises(VerificationError, match="sha256 does not match"):
        check_manifest(tmp_path)


def test_missing_listed_file_and_bad_manifest(tmp_path):
    _write(tmp_path)
    (tmp_path / "weights.pt").unlink()
    with pytest.raises(VerificationError, match="missing"):
        check_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(VerificationError, match="not readable JSON"):
        read_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text('{"files": {}}')
    with pytest.raises(VerificationError, match="field"):
        read_manifest(tmp_path)
    with pytest.raises(VerificationError, match="no manifest.json"):
        read_manifest(tmp_path / "nowhere")


def test_listing_a_missing_file_is_refused(tmp_path):
    with pytest.raises(VerificationError, match="does not exist"):
        write_manifest(
            tmp_path, files=["model.onnx"], input_name="input", input_shape=[1, 3, 8, 8], mean=[0.0], std=[1.0],
            class_names=["a"], target="t", precision="fp32", expected_latency_ms=None, latency_source="estimate",
        )  # fmt: skip
