"""Before the search the table prices every kernel of the space, measured on the right device."""

from __future__ import annotations

import re
import shlex
from types import SimpleNamespace

import pytest
import yaml

from edgeprune.cli import main
from edgeprune.config import ModelConfig
from edgeprune.errors import ProfileError
from edgeprune.latency import kernel_models, load_profile, predictor_for, profiler
from edgeprune.latency import profile_run as pr
from edgeprune.latency.store import choose_table, own_table_path
from edgeprune.models import build_model
from edgeprune.pipeline.latency_setup import ensure_latency_table
from edgeprune.progress import Reporter
from tests.latency.test_profile_run import Drifting


def _inputs(profile, name="digits-resnet", shape=(1, 8, 8)):
    loaded = build_model(ModelConfig(name=name, num_classes=10))
    return SimpleNamespace(
        profile=profile,
        loaded=loaded,
        data=SimpleNamespace(input_shape=shape),
        cfg=SimpleNamespace(model=SimpleNamespace(name=name), search=SimpleNamespace(rank_genes=False)),
    )


def test_compile_measures_here_when_the_only_table_is_another_machines(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEPRUNE_HOME", str(tmp_path))
    host = load_profile("host-cpu")
    assert choose_table(host).status == "measured elsewhere"  # the shipped reference
    messages: list[str] = []

    class Recorder(Reporter):
        def stage(self, name, detail=""):
            messages.append(f"{name}: {detail}")

    ensure_latency_table(_inputs(host), Recorder())  # real measurements (digits kernels are tiny)
    assert any("was measured elsewhere" in m for m in messages)
    choice = choose_table(host)
    assert choice.status == "measured" and choice.path == own_table_path(host)
    assert predictor_for(host).source == "measured"
    n = len(choice.table.entries)
    ensure_latency_table(_inputs(host), Recorder())  # nothing left to measure
    assert len(choose_table(host).table.entries) == n and sum("profile" in m for m in messages) == 1


class _Device:
    """A stand-in for a remote device's timer (deterministic)."""

    def time_models_ms(self, models):
        return [[0.05 + 0.002 * i] * 5 for i in range(len(models))]

    def info(self):
        return {"device": "lab board", "runtime": "onnxruntime-cpu", "runtime_version": "9.9", "threads": 4}


def test_a_device_table_that_lacks_kernels_names_the_command_that_fixes_it(tmp_path, monkeypatch):
    data = yaml.safe_load((load_profile("mobile-cpu").profile_dir / "mobile-cpu.yaml").read_text())
    data["name"] = "lab-board"
    data.pop("estimate")  # no estimate to fall back on: the table must cover the network
    data["table"] = {"source": "measured", "path": "missing.json"}
    (tmp_path / "lab-board.yaml").write_text(yaml.safe_dump(data))
    monkeypatch.setenv("EDGEPRUNE_PROFILES_DIR", str(tmp_path))
    monkeypatch.setenv("EDGEPRUNE_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(pr, "make_timer", lambda *a, **k: _Device())
    monkeypatch.setattr(profiler, "measure_kernel", lambda key, timer, models=None: (0.002, 0.002, 0.002, 5))
    monkeypatch.setattr(kernel_models, "export_onnx", lambda module, shape: b"onnx")
    board = load_profile("lab-board")
    # a table of the device for another network (digits-resnet), then a compile of a CIFAR ResNet-20
    assert main(["profile", "--target", "lab-board", "--model", "digits-resnet", "--quiet"]) == 0
    inputs = _inputs(board, "resnet20", (3, 32, 32))
    with pytest.raises(ProfileError) as err:
        ensure_latency_table(inputs, Reporter())
    command = re.search(r"`(edgeprune profile [^`]+)`", str(err.value))
    assert command, str(err.value)
    assert main([*shlex.split(command.group(1))[1:], "--quiet"]) == 0  # the named command, as given
    ensure_latency_table(inputs, Reporter())  # now covered
    assert predictor_for(board).uncovered(pr.space_kernels(board, inputs.loaded.model, (3, 32, 32))) == []


def test_compile_threads_reach_the_target_everywhere(tmp_path, monkeypatch):
    from edgeprune.pipeline import resolve_config
    from edgeprune.pipeline.inputs import evaluator_spec, validate_inputs
    from edgeprune.rundir import RunDir
    from edgeprune.search.evaluator import EvaluatorSpec

    cfg = resolve_config(None, {"threads": 2})
    inputs = validate_inputs(cfg)
    assert inputs.profile.threads == 2 and inputs.profile.name == "host-cpu"
    spec = evaluator_spec(inputs, RunDir(tmp_path / "run"))
    assert EvaluatorSpec.from_dict(spec.to_dict()).threads == 2  # what a Ray worker rebuilds
    # a table of this machine at 1 thread is not this target's: another thread count is another table
    assert own_table_path(inputs.profile) != own_table_path(load_profile("host-cpu"))


def test_compile_says_when_what_it_measured_here_was_not_the_machines_speed(tmp_path, monkeypatch):
    from edgeprune.latency import quiet

    monkeypatch.setenv("EDGEPRUNE_HOME", str(tmp_path))
    monkeypatch.setattr(quiet, "MAX_WAIT_S", 0.0)
    monkeypatch.setattr(pr, "make_timer", lambda *a, **k: Drifting())
    monkeypatch.setattr(profiler, "measure_kernel", lambda key, timer, models=None: (0.002, 0.002, 0.002, 5))
    said: list[str] = []

    class Recorder(Reporter):
        def info(self, message):
            said.append(message)

    ensure_latency_table(_inputs(load_profile("host-cpu")), Recorder())
    assert any(m.startswith("warning:") and "did not settle" in m for m in said)
