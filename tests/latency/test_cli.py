from __future__ import annotations

import json

from edgeprune.cli import main


def test_targets_lists_the_four_profiles_with_provenance(capsys):
    assert main(["targets", "--json"]) == 0
    rows = {r["name"]: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    assert rows["host-cpu"]["source"] == "measured"
    assert {rows[n]["source"] for n in ("jetson-orin", "mobile-cpu", "desktop-gpu")} == {"estimate"}
    assert rows["host-cpu"]["channel_multiple"] == 16 and "onnxruntime-cpu" in rows["host-cpu"]["provenance"]


def test_profile_unknown_target_is_one_line(capsys):
    assert main(["profile", "--target", "no-such-board", "--model", "resnet20"]) == 6
    err = capsys.readouterr().err.strip()
    assert err.startswith("edgeprune: error: unknown target 'no-such-board'") and "\n" not in err


def test_profile_tensorrt_target_without_tensorrt(capsys, tmp_path):
    code = main(
        ["profile", "--target", "jetson-orin", "--model", "resnet20", "--table", str(tmp_path / "t.json")]
    )
    err = capsys.readouterr().err
    assert code == 7 and ("TensorRT is not installed" in err or "CUDA GPU" in err)


def test_profile_digits_resnet_end_to_end_and_resume(capsys, tmp_path):
    table = tmp_path / "host.json"
    args = [
        "profile",
        "--target",
        "host-cpu",
        "--model",
        "digits-resnet",
        "--table",
        str(table),
        "--passes",
        "1",
        "--runs",
        "5",
        "--warmup",
        "2",
        "--quiet",
    ]
    assert main(args) == 0
    first = capsys.readouterr().out
    assert "62 kernels for digits-resnet" in first
    assert main(args) == 0
    assert "0 measurements now" in capsys.readouterr().out
