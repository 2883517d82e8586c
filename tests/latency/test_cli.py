from __future__ import annotations

import json

from edgeprune.cli import main


def test_targets_lists_the_four_profiles_with_provenance(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEPRUNE_HOME", str(tmp_path))  # no table of this machine yet
    assert main(["targets", "--json"]) == 0
    rows = {r["name"]: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    host = rows["host-cpu"]
    assert host["source"] == "measured elsewhere" and "compile` measures what it needs" in host["provenance"]
    assert [t["kind"] for t in host["tables"]] == ["reference"] and not host["tables"][0]["this_machine"]
    assert {rows[n]["source"] for n in ("jetson-orin", "mobile-cpu", "desktop-gpu")} == {"estimate"}
    for n in ("jetson-orin", "mobile-cpu", "desktop-gpu"):
        check = rows[n]["estimate"]["published_check"]
        assert {"n", "median_abs_pct_err", "max_abs_pct_err"} <= set(check)
    assert host["channel_multiple"] == 16
    assert rows["mobile-cpu"]["threads"] == 4 and rows["mobile-cpu"]["spinning"] is True


def test_targets_in_a_pipe_keeps_whole_names():
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "edgeprune", "targets"], capture_output=True, text=True, check=True
    ).stdout
    lines = [ln for ln in out.splitlines() if "jetson-orin" in ln]
    assert lines and all(n in out for n in ("desktop-gpu", "mobile-cpu", "host-cpu", "measured elsewhere"))
    assert "…" not in out
    assert "4 (spinning on)" in next(ln for ln in out.splitlines() if "mobile-cpu" in ln)


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
