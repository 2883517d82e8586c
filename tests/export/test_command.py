"""``edgeprune export`` then ``edgeprune verify`` on the built-in digits job (no shared data needed)."""

from __future__ import annotations

import json

from edgeprune.cli import main


def test_export_then_verify_digits(tmp_path, capsys):
    out = tmp_path / "pick"
    rc = main(
        [
            "export",
            "digits-resnet",
            "--data",
            "digits",
            "--target",
            "host-cpu",
            "--precision",
            "int8",
            "--out",
            str(out),
        ]
    )
    assert rc == 0, capsys.readouterr().err
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(manifest["files"]) >= {
        "model.onnx",
        "model.int8.onnx",
        "calibration.json",
        "calibration.cache",
        "weights.pt",
    }
    assert (
        manifest["input_shape"] == [1, 1, 8, 8]
        and manifest["precision"] == "int8"
        and len(manifest["class_names"]) == 10
    )
    rc = main(
        [
            "verify",
            str(out),
            "--target",
            "host-cpu",
            "--data",
            "digits",
            "--images",
            "200",
            "--repetitions",
            "10",
        ]
    )
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    doc = json.loads((out / "verify.json").read_text())
    assert doc["parity_fp32"]["images"] == 200 and doc["parity_fp32"]["top1_agreement"] == 1.0
    assert (
        main(["export", "digits-resnet", "--data", "digits", "--target", "host-cpu", "--out", str(out)]) != 0
    )
    assert "not empty" in capsys.readouterr().err
