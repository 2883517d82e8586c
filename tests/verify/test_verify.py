"""``edgeprune verify`` on a shipped pruned pick: verify.json, failing checks, corrupt and tampered files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from edgeprune.cli import main
from edgeprune.config import ModelConfig
from edgeprune.errors import VerificationError
from edgeprune.export import load_recipe, ship_pick
from edgeprune.models import build_model
from edgeprune.verify import VerifyThresholds, verify_pick
from edgeprune.verify.command import run_verify
from tests.export.fixtures import random_plan


def _ship(family: str, weights: Path, out: Path, cifar, precision: str = "int8", seed: int = 5) -> Path:
    from edgeprune.graph import apply_plan

    base = build_model(ModelConfig(name=family, weights=weights)).model
    plan, analysis = random_plan(base, seed=seed)
    model = apply_plan(base, plan, torch.zeros(1, 3, 32, 32), analysis=analysis)
    out.mkdir(parents=True)
    torch.save(model.state_dict(), out / "weights.pt")
    (out / "plan.json").write_text(plan.to_json())
    ship_pick(
        out, model, torch.zeros(1, 3, 32, 32), target="host-cpu", precision=precision, mean=cifar.mean, std=cifar.std,
        class_names=cifar.classes, expected_latency_ms=0.8, latency_source="estimate", model_name=family,
        calib_x=cifar.train.x, recipe=load_recipe("host-cpu").model_copy(update={"num_samples": 64}),
    )  # fmt: skip
    return out


@pytest.fixture(scope="module")
def pick(pretrained, cifar, tmp_path_factory) -> Path:
    return _ship("resnet20", pretrained["resnet20"], tmp_path_factory.mktemp("v") / "knee", cifar)


@pytest.fixture()
def pick_copy(pick, tmp_path) -> Path:
    return Path(shutil.copytree(pick, tmp_path / "pick"))


def test_verify_writes_a_passing_report(pick_copy, shared_data):
    report = run_verify(
        pick_copy, target="host-cpu", data=str(shared_data / "cifar10"), repetitions=20, passes=2
    )
    doc = json.loads((pick_copy / "verify.json").read_text())
    assert doc["passed"] is True and report.passed
    assert doc["parity_fp32"]["images"] == 1000 and doc["parity_fp32"]["top1_agreement"] == 1.0
    assert doc["parity_fp32"]["max_abs_logit_diff"] <= 1e-4
    assert (
        doc["parity_int8"]["top1_agreement"] >= 0.9 and doc["accuracy"]["int8"] == doc["accuracy"]["shipped"]
    )
    assert doc["latency"]["model"] == "model.int8.onnx" and doc["latency"]["count"] == 40
    lat = doc["latency"]  # the table cannot price a 12-channel stem: the manifest's figure, as labelled
    assert lat["prediction_source"] == "estimate" and lat["predicted_ms"] == 0.8
    assert lat["ratio_measured_to_predicted"] == pytest.approx(lat["median_ms"] / 0.8)
    assert doc["thresholds"]["fp32_max_abs_logit_diff"] == 1e-4
    assert doc["environment"]["runtime"] == "onnxruntime-cpu" and doc["environment"]["threads"] == 1
    assert {c["name"] for c in doc["checks"]} >= {
        "fp32_max_abs_logit_diff",
        "int8_accuracy_drop",
        "latency_ratio",
    }


def test_a_failed_check_is_recorded_and_raised(pick_copy, test_1000):
    from edgeprune.export import check_manifest
    from edgeprune.runtime import get_runtime
    from edgeprune.verify import rebuild_torch_model

    x, y = test_1000
    th = VerifyThresholds(fp32_max_abs_logit_diff=1e-12)
    model = rebuild_torch_model(pick_copy, check_manifest(pick_copy))
    report = verify_pick(
        pick_copy, runtime=get_runtime("onnxruntime-cpu"), test_x=x, test_y=y, torch_model=model,
        predicted_latency_ms=None, latency_source="measured", thresholds=th, repetitions=5, passes=1,
    )  # fmt: skip
    assert not report.passed and [c.name for c in report.failed] == ["fp32_max_abs_logit_diff"]
    assert json.loads((pick_copy / "verify.json").read_text())["passed"] is False


def test_cli_exits_nonzero_on_a_corrupted_model(pick_copy, shared_data, capsys):
    path = pick_copy / "model.onnx"
    data = bytearray(path.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 64] = b"\xff" * 64
    path.write_bytes(bytes(data))
    rc = main(["verify", str(pick_copy), "--target", "host-cpu", "--data", str(shared_data / "cifar10")])
    err = capsys.readouterr().err.strip()
    assert rc == VerificationError.exit_code and "sha256 does not match" in err and "\n" not in err
    doc = json.loads((pick_copy / "verify.json").read_text())
    assert doc["passed"] is False and "sha256" in doc["error"]


def test_corrupt_model_with_a_matching_manifest_is_caught(pick_copy, shared_data, capsys):
    from edgeprune.export.manifest import sha256_file

    path = pick_copy / "model.onnx"
    path.write_bytes(path.read_bytes()[:1000])
    m = json.loads((pick_copy / "manifest.json").read_text())
    m["files"]["model.onnx"] = {"bytes": path.stat().st_size, "sha256": sha256_file(path)}
    (pick_copy / "manifest.json").write_text(json.dumps(m))
    rc = main(["verify", str(pick_copy), "--target", "host-cpu", "--data", str(shared_data / "cifar10")])
    err = capsys.readouterr().err.strip()
    assert rc == VerificationError.exit_code and "not a valid ONNX model" in err and "\n" not in err


def test_missing_pick_and_wrong_input_shape(pick, tmp_path, capsys):
    import numpy as np

    assert main(["verify", str(tmp_path / "none"), "--target", "host-cpu", "--data", "digits"]) != 0
    assert "pick directory not found" in capsys.readouterr().err
    for band in ("1.5", "2,1", "a,b", "0,1"):
        rc = main(["verify", str(pick), "--target", "host-cpu", "--data", "digits", "--latency-band", band])
        err = capsys.readouterr().err.strip()
        assert rc != 0 and "--latency-band wants LO,HI" in err and "\n" not in err, (band, err)
    rng = np.random.default_rng(0)
    small = tmp_path / "small.npz"  # 16x16 RGB images for a 3x32x32 model
    np.savez(small, x=rng.integers(0, 255, (60, 16, 16, 3), dtype=np.uint8), y=np.arange(60) % 10)
    rc = main(["verify", str(pick), "--target", "host-cpu", "--data", str(small)])
    err = capsys.readouterr().err.strip()
    assert rc != 0 and "expects (3, 32, 32)" in err and "\n" not in err


@pytest.mark.slow
def test_verify_pruned_resnet56(pretrained, cifar, shared_data, tmp_path):
    pick = _ship("resnet56", pretrained["resnet56"], tmp_path / "r56", cifar, seed=11)
    report = run_verify(pick, target="host-cpu", data=str(shared_data / "cifar10"), repetitions=50, passes=3)
    doc = json.loads((pick / "verify.json").read_text())
    assert (
        report.passed
        and doc["parity_fp32"]["top1_agreement"] == 1.0
        and doc["parity_int8"]["accuracy_drop"] <= 0.01
    )


def test_remote_latency_through_the_agent(pick_copy, shared_data):
    import threading

    from edgeprune.latency.agent import AgentServer, AgentSettings

    server = AgentServer(AgentSettings(token="t0k3n", port=0))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        run_verify(pick_copy, target="host-cpu", data=str(shared_data / "cifar10"), remote=server.url, token="t0k3n",
                   repetitions=10, passes=2)  # fmt: skip
    finally:
        server.shutdown()
        server.server_close()
    doc = json.loads((pick_copy / "verify.json").read_text())
    assert doc["passed"] and doc["latency"]["passes"] == 2 and doc["latency"]["count"] == 20
    assert doc["latency"]["model"] == "model.int8.onnx"
    assert doc["environment"]["latency_measured_by"]["via"] == f"agent {server.url}"


def test_a_prediction_off_by_1_3x_fails_against_the_reference_network(pick_copy, cifar):
    """The relative check: the pick is timed in passes alternating with a reference network whose
    table time is known; a prediction 1.3x off fails it, a right one passes (whatever the machine's load).

    The pick's FP32 model is its own reference here, so a right prediction is exactly the reference's
    table time, and the check's verdict does not depend on when that time was measured."""
    import numpy as np

    from edgeprune.runtime import get_runtime

    rt = get_runtime("onnxruntime-cpu")
    x, y = cifar.test.x[:300].numpy(), cifar.test.y[:300].numpy()
    ref = pick_copy / "model.onnx"
    ref_ms = rt.load(ref).benchmark(np.zeros((1, 3, 32, 32), np.float32), repetitions=100, passes=3).median_ms
    th = VerifyThresholds(min_images=300)
    results = {}
    # 7 paired passes: with 3, two copies of one network once timed 0.91x apart on a busy CI machine
    for label, predicted in (("right", ref_ms), ("1.3x too fast", ref_ms / 1.3)):
        report = verify_pick(
            pick_copy, runtime=rt, test_x=x, test_y=y, torch_model=None, predicted_latency_ms=predicted,
            latency_source="measured", thresholds=th, precision="fp32", repetitions=100, passes=7,
            reference=(ref, ref_ms),
        )  # fmt: skip
        rel = next(c for c in report.checks if c.name == "latency_relative")
        results[label] = (rel.passed, rel.value)
        doc = json.loads((pick_copy / "verify.json").read_text())
        assert doc["latency"]["reference"]["table_ms"] == ref_ms and "drift" in doc["latency"]["reference"]
    assert results["right"][0] and not results["1.3x too fast"][0], results


class _Scripted:
    """A session whose pass medians follow a script: the pairing logic tested without a clock."""

    def __init__(self, medians: list[float]):
        self.medians, self.calls = list(medians), 0
        self.input_shape = (1, 3, 32, 32)

    def benchmark(self, x, warmup, repetitions, passes):
        from edgeprune.latency.timing import stats_of

        m = self.medians[self.calls]
        self.calls += 1
        return stats_of([[m] * repetitions], warmup)


class _Runtime:
    def __init__(self, ref: _Scripted):
        self.ref = ref

    def load(self, path):
        return self.ref


@pytest.mark.parametrize(
    ("pick_ms", "ref_ms", "passes_timed", "paired"),
    [
        ([1.0, 1.0, 1.0], [1.0, 1.0, 1.0], 3, 1.0),  # settled: no extra pass
        # a burst slows the pick in one pass: more passes until the last 3 agree; the median outvotes it
        ([1.0, 1.6, 1.0, 1.0, 1.0], [1.0, 1.0, 1.0, 1.0, 1.0], 5, 1.0),
        # the whole machine slows by 2x in the second pass: both networks slow, the ratio holds
        ([1.0, 2.0, 2.0], [1.0, 2.0, 2.0], 3, 1.0),
        # never settles: stops at three times the passes, with the median of all nine
        ([1.0, 1.5] * 5, [1.0] * 10, 9, 1.0),
    ],
)
def test_paired_passes_outvote_a_burst_and_stop(pick_ms, ref_ms, passes_timed, paired):
    import numpy as np

    from edgeprune.verify.pick import _latency_with_reference

    pick, ref = _Scripted(pick_ms), _Scripted(ref_ms)
    x = np.zeros((1, 3, 32, 32), np.float32)
    lat = _latency_with_reference(_Runtime(ref), pick, x, (Path("ref.onnx"), 1.0), 0, 5, 3, 1.2)
    assert lat["passes"] == passes_timed == pick.calls == ref.calls
    assert lat["reference"]["paired_ratio"] == pytest.approx(paired)
    assert len(lat["reference"]["paired_ratios"]) == passes_timed
