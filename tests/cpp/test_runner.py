"""The C++ runner: builds from a clean tree with CMake + Ninja, top-1 on 100 test images equals Python's,
and bad input ends with one line on stderr and a non-zero exit. Slow: the build (~30-60 s) and the
AOTInductor compile (~20-60 s)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from edgeprune.config import ModelConfig
from edgeprune.export import ship_pick
from edgeprune.models import build_model
from tests.export.fixtures import random_plan, torch_logits

REPO = Path(__file__).resolve().parents[2]
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (shutil.which("cmake") and shutil.which("ninja")), reason="needs cmake and ninja"),
]


@pytest.fixture(scope="module")
def runner(tmp_path_factory) -> Path:
    build = tmp_path_factory.mktemp("build")
    cfg = subprocess.run(
        ["cmake", "-S", str(REPO), "-B", str(build), "-G", "Ninja"], capture_output=True, text=True
    )
    assert cfg.returncode == 0, cfg.stderr[-2000:]
    assert "backends: LibTorch/AOTInductor (.pt2)" in cfg.stdout
    assert "ONNX Runtime backend (.onnx) NOT built" in cfg.stdout or "ONNX Runtime (.onnx)" in cfg.stdout
    b = subprocess.run(["cmake", "--build", str(build)], capture_output=True, text=True)
    assert b.returncode == 0, b.stdout[-3000:]
    return build / "edgeprune-run"


@pytest.fixture(scope="module")
def pick(pretrained, cifar, tmp_path_factory):
    from edgeprune.graph import apply_plan

    base = build_model(ModelConfig(name="resnet20", weights=pretrained["resnet20"])).model
    plan, analysis = random_plan(base, seed=7)
    model = apply_plan(base, plan, torch.zeros(1, 3, 32, 32), analysis=analysis)
    out = tmp_path_factory.mktemp("pick")
    ship_pick(
        out, model, torch.zeros(1, 3, 32, 32), target="host-cpu", precision="fp32", mean=cifar.mean, std=cifar.std,
        class_names=cifar.classes, expected_latency_ms=None, latency_source="estimate", model_name="resnet20", aoti=True,
    )  # fmt: skip
    return out, model


def _run(runner: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(runner), *args], capture_output=True, text=True, timeout=300)


def test_top1_on_100_images_equals_python(runner, pick, test_1000, tmp_path):
    pick_dir, model = pick
    x = test_1000[0][:100]
    np.save(tmp_path / "x.npy", x)
    r = _run(runner, str(pick_dir / "model.pt2"), "--input", str(tmp_path / "x.npy"), "--top-k", "3",
             "--logits-out", str(tmp_path / "l.npy"), "--repetitions", "20", "--passes", "2")  # fmt: skip
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    ref = torch_logits(model, x)
    got = np.load(tmp_path / "l.npy")
    assert got.shape == (100, 10) and np.abs(got - ref).max() < 1e-3
    printed_top1 = [int(ln.split(":")[1].split()[0]) for ln in lines if ln.startswith("image ")]
    assert printed_top1 == ref.argmax(1).tolist()
    assert lines[0].split()[3] in {
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    }
    assert (
        lines[-1].startswith("latency (libtorch-aoti, batch 1, 1 thread): median") and "40 runs" in lines[-1]
    )


def test_the_runner_runs_the_targets_threads(runner, pick, tmp_path):
    """Threads and spinning come from the manifest (the target's) unless the command line says otherwise."""
    pick_dir, _ = pick
    work = Path(shutil.copytree(pick_dir, tmp_path / "p"))
    np.save(tmp_path / "ok.npy", np.zeros((1, 3, 32, 32), np.float32))
    m = json.loads((work / "manifest.json").read_text())
    (work / "manifest.json").write_text(json.dumps({**m, "threads": 2, "spinning": False}))
    args = (
        str(work / "model.pt2"),
        "--input",
        str(tmp_path / "ok.npy"),
        "--repetitions",
        "3",
        "--passes",
        "1",
    )
    r = _run(runner, *args)
    assert r.returncode == 0, r.stderr
    assert "batch 1, 2 threads, spinning off)" in r.stdout.splitlines()[-1]
    r = _run(runner, *args, "--threads", "1")
    assert r.returncode == 0 and "batch 1, 1 thread)" in r.stdout.splitlines()[-1]
    r = _run(runner, *args, "--spinning", "1")
    assert r.returncode == 0 and "2 threads, spinning on)" in r.stdout.splitlines()[-1]
    r = _run(runner, *args, "--spinning", "yes")
    _one_line_error(r, "--spinning needs 0 or 1")
    assert r.returncode == 2


def _one_line_error(r: subprocess.CompletedProcess, text: str) -> None:
    err = r.stderr.strip()
    assert r.returncode != 0 and text in err and len(err.splitlines()) == 1, err


def test_bad_inputs_are_one_line(runner, pick, tmp_path):
    pick_dir, _ = pick
    work = Path(shutil.copytree(pick_dir, tmp_path / "p"))
    np.save(tmp_path / "wrong.npy", np.zeros((2, 3, 16, 16), np.float32))
    np.save(tmp_path / "ok.npy", np.zeros((1, 3, 32, 32), np.float32))
    np.save(tmp_path / "f64.npy", np.zeros((1, 3, 32, 32), np.float64))
    pt2 = str(work / "model.pt2")
    _one_line_error(
        _run(runner, pt2, "--input", str(tmp_path / "wrong.npy")), "does not match the model's 1x3x32x32"
    )
    _one_line_error(_run(runner, pt2, "--input", str(tmp_path / "f64.npy")), "must be float32")
    _one_line_error(_run(runner, pt2, "--input", str(tmp_path / "none.npy")), "cannot open input file")
    _one_line_error(_run(runner, str(work / "model.onnx"), "--input", str(tmp_path / "ok.npy"), "--manifest", "/nope.json"),
                    "manifest not found")  # fmt: skip
    # a model file that changed after shipping: sha256 mismatch
    data = bytearray((work / "model.pt2").read_bytes())
    data[100:110] = b"\x00" * 10
    (work / "model.pt2").write_bytes(bytes(data))
    _one_line_error(_run(runner, pt2, "--input", str(tmp_path / "ok.npy")), "sha256 does not match")
    # a corrupt model whose manifest was updated: the backend refuses it
    from edgeprune.export.manifest import sha256_file

    (work / "model.pt2").write_bytes(b"not a zip archive")
    m = json.loads((work / "manifest.json").read_text())
    m["files"]["model.pt2"]["sha256"] = sha256_file(work / "model.pt2")
    (work / "manifest.json").write_text(json.dumps(m))
    _one_line_error(_run(runner, pt2, "--input", str(tmp_path / "ok.npy")), "cannot load AOTInductor package")
    (work / "manifest.json").write_text("{broken")
    _one_line_error(_run(runner, pt2, "--input", str(tmp_path / "ok.npy")), "invalid JSON")
    _one_line_error(_run(runner, pt2), "--input X.npy is required")
