"""``edgeprune inspect``: the tables on a real model, and bad input as one line + exit code, no traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from edgeprune.cli import main


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["inspect", *args])
    out, err = capsys.readouterr()
    return code, out, err


def _one_line_error(err: str, code: int, expected_code: int, needle: str) -> None:
    assert code == expected_code, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("edgeprune: error: "), err
    assert needle in lines[0]
    assert "Traceback" not in err


def test_inspect_resnet20_tables(capsys, pretrained):
    code, out, err = _run(
        capsys, "resnet20", "--weights", str(pretrained["resnet20"]), "--channel-multiple", "8"
    )
    assert code == 0, err
    assert "params 269,722" in out and "MACs 40,813,184" in out and "channel multiple 8" in out
    assert "stage:layer1" in out and "layer3.2.conv1" in out and "layer2.1, layer2.2" in out


def test_inspect_json(capsys):
    code, out, _ = _run(
        capsys, "torchvision:mobilenet_v2", "--num-classes", "10", "--input-shape", "3x32x32", "--json"
    )
    assert code == 0
    data = json.loads(out)
    assert data["input_shape"] == [3, 32, 32] and data["params"] == 2_236_682
    assert {"name": "stage:features.3", "kind": "stage", "channels": 24, "layers": 6} in data["groups"]


def test_nonexistent_weights(capsys, tmp_path):
    code, _, err = _run(capsys, "resnet20", "--weights", str(tmp_path / "missing.th"))
    _one_line_error(err, code, 3, "weights file not found")


def test_truncated_weights(capsys, tmp_path, pretrained):
    data = pretrained["resnet20"].read_bytes()
    cut = tmp_path / "cut.th"
    cut.write_bytes(data[: len(data) // 2])
    code, _, err = _run(capsys, "resnet20", "--weights", str(cut))
    _one_line_error(err, code, 3, "corrupt or truncated")


class _Exploit:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickle_that_would_run_code_is_refused_unexecuted(capsys, tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.th"
    torch.save({"state_dict": {"conv1.weight": torch.zeros(1)}, "x": _Exploit(marker)}, evil)
    code, _, err = _run(capsys, "resnet20", "--weights", str(evil))
    _one_line_error(err, code, 3, "arbitrary pickled code")
    assert not marker.exists()


def test_unknown_family(capsys):
    code, _, err = _run(capsys, "resnet21")
    _one_line_error(err, code, 2, "unknown model 'resnet21'")
    code, _, err = _run(capsys, "torchvision:not_a_net")
    _one_line_error(err, code, 2, "unknown torchvision classification model")


def test_wrong_class_count(capsys, pretrained):
    code, _, err = _run(capsys, "resnet20", "--weights", str(pretrained["resnet20"]), "--num-classes", "100")
    _one_line_error(err, code, 3, "'linear.weight'")


def test_bad_input_shape_and_multiple(capsys):
    code, _, err = _run(capsys, "resnet20", "--input-shape", "32x32")
    _one_line_error(err, code, 2, "--input-shape")
    code, _, err = _run(capsys, "resnet20", "--channel-multiple", "0")
    _one_line_error(err, code, 2, "--channel-multiple")
    code, _, err = _run(capsys, "resnet20", "--input-shape", "1x32x32")
    _one_line_error(err, code, 5, "does not run on input")


def test_untraceable_model_through_a_real_process():
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "edgeprune",
            "inspect",
            "torchvision:shufflenet_v2_x0_5",
            "--input-shape",
            "3x32x32",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 5
    assert (
        proc.stderr.strip().count("\n") == 0
        and "cannot trace" in proc.stderr
        and "Traceback" not in proc.stderr
    )
