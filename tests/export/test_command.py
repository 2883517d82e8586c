"""``edgeprune export`` then ``edgeprune verify`` on the built-in digits job (no shared data needed)."""

from __future__ import annotations

import json

from edgeprune.cli import main


def test_export_then_verify_digits(tmp_path, capsys):
    import torch

    # export builds an untrained digits-resnet: seed its init, or the INT8 agreement of random weights
    # depends on whatever ran before in the session (0.945 against the 0.95 limit was seen)
    torch.manual_seed(0)
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
            "--latency-band",
            "0.1,10",
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


def test_export_with_a_rank_larger_than_the_layer_allows_is_one_line(tmp_path, capsys):
    plan = tmp_path / "plan.json"
    plan.write_text(
        json.dumps({"version": 1, "keep": {}, "drop_blocks": [], "ranks": {"layer3.0.conv1": 999}})
    )
    rc = main(["export", "digits-resnet", "--data", "digits", "--target", "host-cpu", "--plan", str(plan),
               "--out", str(tmp_path / "pick")])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert rc != 0 and len(err.splitlines()) == 1 and "larger than the layer allows" in err, err
    assert not (tmp_path / "pick").exists()


def test_export_of_a_factorised_network_verifies(tmp_path, capsys):
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"version": 1, "channel_multiple": 16, "ranks": {"layer3.0.conv1": 16}}))
    out = tmp_path / "pick"
    rc = main(["export", "digits-resnet", "--data", "digits", "--target", "host-cpu", "--plan", str(plan),
               "--out", str(out)])  # fmt: skip
    assert rc == 0, capsys.readouterr().err
    # parity is what this test is about: a digits-resnet runs in tens of microseconds, and 10 timed
    # runs on a loaded machine are noise, so the latency band is opened wide
    assert main(["verify", str(out), "--target", "host-cpu", "--data", "digits", "--images", "200",
                 "--repetitions", "10", "--latency-band", "0.1,10"]) == 0, capsys.readouterr().err  # fmt: skip
    doc = json.loads((out / "verify.json").read_text())
    assert doc["parity_fp32"]["top1_agreement"] == 1.0
