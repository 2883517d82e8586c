from __future__ import annotations

import yaml

from edgeprune.latency import kernel_models, load_profile, predictor_for, profiler
from edgeprune.latency import profile_run as pr
from edgeprune.models.cifar_resnet import CifarResNet


class _Timer:
    """Deterministic stand-in for a device: the second model of a pair is 0.002 ms slower."""

    def time_models_ms(self, models):
        return [[0.05 + 0.002 * i] * 5 for i in range(len(models))]

    def info(self):
        return {"device": "lab board", "runtime": "onnxruntime-cpu", "runtime_version": "9.9", "threads": 4}


def test_profiling_an_estimated_target_makes_it_measured(tmp_path, monkeypatch):
    data = yaml.safe_load((load_profile("mobile-cpu").profile_dir / "mobile-cpu.yaml").read_text())
    data["name"] = "lab-board"
    (tmp_path / "lab-board.yaml").write_text(yaml.safe_dump(data))
    monkeypatch.setenv("EDGEPRUNE_PROFILES_DIR", str(tmp_path))
    monkeypatch.setattr(pr, "make_timer", lambda *a, **k: _Timer())
    monkeypatch.setattr(profiler, "measure_kernel", lambda key, timer: (0.002, 0.002, 0.002, 5))
    monkeypatch.setattr(kernel_models, "export_onnx", lambda module, shape: b"onnx")
    assert predictor_for(load_profile("lab-board")).source == "estimate"

    summary = pr.run_profile("lab-board", "digits-resnet", passes=1, runs=5, warmup=0)

    assert summary.profile_updated and summary.table_path == tmp_path / "tables" / "lab-board.json"
    profile = load_profile("lab-board")
    assert profile.source == "measured" and profile.estimate is not None  # the estimate stays as fallback
    pred = predictor_for(profile, "digits-resnet")
    assert pred.source == "measured"
    net = CifarResNet((2, 2, 2), in_channels=1)
    # the unpruned network is predicted exactly as measured end to end (0.05 ms)
    assert abs(pred.predict_ms(net, (1, 8, 8)) - 0.05) < 1e-9
    assert pr.run_profile("lab-board", "digits-resnet", passes=1, runs=5, warmup=0).measured_now == 0
