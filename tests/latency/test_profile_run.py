from __future__ import annotations

import pytest
import yaml

from edgeprune.latency import kernel_models, load_profile, predictor_for, profiler
from edgeprune.latency import profile_run as pr
from edgeprune.latency.store import choose_table, user_tables_dir
from edgeprune.models.cifar_resnet import CifarResNet


class _Timer:
    """Deterministic stand-in for a device: the second model of a pair is 0.002 ms slower."""

    def time_models_ms(self, models):
        return [[0.05 + 0.002 * i] * 5 for i in range(len(models))]

    def info(self):
        return {"device": "lab board", "runtime": "onnxruntime-cpu", "runtime_version": "9.9", "threads": 4}


def test_profiling_a_device_target_writes_the_users_table_not_the_package(tmp_path, monkeypatch):
    data = yaml.safe_load((load_profile("mobile-cpu").profile_dir / "mobile-cpu.yaml").read_text())
    data["name"] = "lab-board"
    yaml_path = tmp_path / "profiles" / "lab-board.yaml"
    yaml_path.parent.mkdir()
    yaml_path.write_text(yaml.safe_dump(data))
    before = yaml_path.read_text()
    monkeypatch.setenv("EDGEPRUNE_PROFILES_DIR", str(yaml_path.parent))
    monkeypatch.setenv("EDGEPRUNE_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(pr, "make_timer", lambda *a, **k: _Timer())
    monkeypatch.setattr(profiler, "measure_kernel", lambda key, timer, models=None: (0.002, 0.002, 0.002, 5))
    monkeypatch.setattr(kernel_models, "export_onnx", lambda module, shape: b"onnx")
    assert predictor_for(load_profile("lab-board")).source == "estimate"

    summary = pr.run_profile("lab-board", "digits-resnet", passes=1, runs=5, warmup=0)

    assert (
        summary.table_path.parent
        == user_tables_dir("lab-board")
        == tmp_path / "home" / "tables" / "lab-board"
    )
    assert yaml_path.read_text() == before and not (yaml_path.parent / "tables").exists()  # package untouched
    profile = load_profile("lab-board")
    choice = choose_table(profile)
    assert choice.status == "measured" and choice.fingerprint is not None
    assert choice.fingerprint["device"] == "lab board" and choice.fingerprint["threads"] == 4
    pred = predictor_for(profile)
    assert pred.source == "measured"
    net = CifarResNet((2, 2, 2), in_channels=1)
    # every profiled network took 0.05 ms end to end, and so, within 10 %, is the unpruned one predicted
    # (fitted over the profiled networks; this fake device's time does not grow with a network's
    # size, which the overhead model, fitted from the smallest calibration network to the unpruned
    # one, follows only approximately)
    assert abs(pred.predict_ms(net, (1, 8, 8)) - 0.05) < 5e-3
    assert pr.run_profile("lab-board", "digits-resnet", passes=1, runs=5, warmup=0).measured_now == 0
    # the same device at another thread count is another table
    assert choose_table(profile.with_threads(2)).status == "missing"


class _TurnsLoud(_Timer):
    """At speed for its first call (the quiet watch's first probe), 2x slow from then on."""

    def __init__(self):
        self.calls = 0

    def time_models_ms(self, models):
        self.calls += 1
        factor = 1.0 if self.calls == 1 else 2.0
        return [[t * factor for t in ts] for ts in super().time_models_ms(models)]


def test_a_profile_measured_only_while_slow_says_so(tmp_path, monkeypatch, capsys):
    from edgeprune.cli import main
    from edgeprune.latency import quiet

    monkeypatch.setenv("EDGEPRUNE_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(quiet, "MAX_WAIT_S", 0.0)  # the machine does not turn quiet: give up at once
    monkeypatch.setattr(pr, "make_timer", lambda *a, **k: _TurnsLoud())
    monkeypatch.setattr(profiler, "measure_kernel", lambda key, timer, models=None: (0.002, 0.002, 0.002, 5))
    assert main(["profile", "--target", "host-cpu", "--model", "digits-resnet", "--passes", "1",
                 "--runs", "5", "--warmup", "0", "--quiet"]) == 0  # fmt: skip
    err = capsys.readouterr().err
    assert "warning:" in err and "measured only while this machine ran slow" in err


class Drifting(_Timer):
    """This machine, every call 10 % slower than the one before: no two passes of a whole network
    ever agree (the table it writes is this machine's, so a compile can use it)."""

    def __init__(self):
        self.calls = 0

    def time_models_ms(self, models):
        self.calls += 1
        return [[t * 1.1**self.calls for t in ts] for ts in super().time_models_ms(models)]

    def info(self):
        return profiler.LocalOrtTimer(threads=1).info()


def test_whole_networks_that_never_settle_are_named_in_a_warning(tmp_path, monkeypatch, capsys):
    from edgeprune.cli import main
    from edgeprune.latency import quiet

    monkeypatch.setenv("EDGEPRUNE_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(quiet, "MAX_WAIT_S", 0.0)
    monkeypatch.setattr(pr, "make_timer", lambda *a, **k: Drifting())
    monkeypatch.setattr(profiler, "measure_kernel", lambda key, timer, models=None: (0.002, 0.002, 0.002, 5))
    assert main(["profile", "--target", "host-cpu", "--model", "digits-resnet", "--passes", "1",
                 "--runs", "5", "--warmup", "0", "--quiet"]) == 0  # fmt: skip
    err = capsys.readouterr().err
    assert "whole networks did not settle" in err


@pytest.mark.parametrize(
    ("name", "shape"),
    [
        ("resnet20", (3, 32, 32)),
        pytest.param(
            "torchvision:mobilenet_v2", (3, 32, 32), marks=pytest.mark.slow
        ),  # ~30 s to build the set
    ],
)
def test_calibration_networks_spread_their_weights_without_a_gap(name, shape):
    """The overhead fit's knee sits at a calibration network's weight count, so the networks cover the
    space's weight range evenly in √W (no stretch of it left empty), with and without dropped blocks."""
    import numpy as np

    from edgeprune.config import ModelConfig
    from edgeprune.latency.profile_run import calibration_networks
    from edgeprune.models import build_model

    model = build_model(ModelConfig(name=name, num_classes=10)).model
    nets = calibration_networks(model, shape, 8, 10)
    root = np.sqrt([sum(p.numel() for p in net.parameters()) for net in nets])
    top = np.sqrt(sum(p.numel() for p in model.parameters()))
    assert len(nets) == 10 and np.all(np.diff(root) >= 0)
    steps = np.diff([*root, top])
    assert steps.max() <= 2.0 * (top - root[0]) / 10  # even steps would be 1×
    depths = {len(list(net.modules())) for net in nets}
    assert len(depths) > 2  # depth varies too, not only width
    again = calibration_networks(model, shape, 8, 10)  # seeded: the same networks every run
    assert [sum(p.numel() for p in n.parameters()) for n in again] == [
        sum(p.numel() for p in n.parameters()) for n in nets
    ]
