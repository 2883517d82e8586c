"""Spinning is part of a multi-thread target: its tables, fingerprint, sessions and shipped manifest."""

from __future__ import annotations

import json

import pytest

from edgeprune.errors import ProfileError
from edgeprune.latency import load_profile
from edgeprune.latency.profiler import LocalOrtTimer, new_table
from edgeprune.latency.store import (
    MEASURED,
    choose_table,
    own_table_path,
    reference_table_path,
    runs_threads_as,
)
from edgeprune.latency.table import LatencyTable
from edgeprune.latency.timing import (
    describe_fingerprint,
    fingerprint_id,
    ort_cpu_fingerprint,
    ort_session_options,
)
from edgeprune.runtime import get_runtime

ALLOW = "session.intra_op.allow_spinning"


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEPRUNE_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_sessions_spin_as_the_target_says():
    assert ort_session_options(2, spinning=True).get_session_config_entry(ALLOW) == "1"
    assert ort_session_options(2, spinning=False).get_session_config_entry(ALLOW) == "0"
    assert get_runtime("onnxruntime-cpu", 2, False).session_options().get_session_config_entry(ALLOW) == "0"
    assert get_runtime("onnxruntime-cpu", 2, True).info()["spinning"] is True


def test_spinning_is_in_a_multi_thread_fingerprint_only():
    # one thread has no worker threads to spin: the fingerprint (and every 1-thread table) is unchanged
    assert ort_cpu_fingerprint(1, True) == ort_cpu_fingerprint(1, False)
    assert "spinning" not in ort_cpu_fingerprint(1)
    on, off = ort_cpu_fingerprint(2, True), ort_cpu_fingerprint(2, False)
    assert on["spinning"] is True and off["spinning"] is False
    assert fingerprint_id(on) != fingerprint_id(off)
    assert "spinning on" in describe_fingerprint(on) and "spinning off" in describe_fingerprint(off)


def test_profiles_default_to_onnx_runtimes_spinning_and_may_turn_it_off(tmp_path):
    host = load_profile("host-cpu")
    assert host.spinning is True and host.threading == {"threads": 1}
    assert host.with_threads(2).threading == {"threads": 2, "spinning": True}
    text = (reference_table_path(host).parent.parent / "host-cpu.yaml").read_text()
    (tmp_path / "shared.yaml").write_text(text.replace("threads: 1", "threads: 2\nspinning: false"))
    (tmp_path / "tables").symlink_to(reference_table_path(host).parent)
    shared = load_profile(str(tmp_path / "shared.yaml"))
    assert shared.threading == {"threads": 2, "spinning": False}
    (tmp_path / "bad.yaml").write_text(text.replace("threads: 1", "threads: 2\nspinning: sometimes"))
    with pytest.raises(ProfileError, match="spinning"):
        load_profile(str(tmp_path / "bad.yaml"))


def test_a_table_serves_only_the_spinning_it_was_measured_with(home):
    on = load_profile("host-cpu").with_threads(2)
    off = on.model_copy(update={"spinning": False})
    table = new_table(LocalOrtTimer(2, warmup=1, runs=1, spinning=False), passes=1, warmup=1, runs=1)
    assert table.provenance["threads"] == 2 and table.provenance["spinning"] is False
    assert table.provenance["fingerprint"] == ort_cpu_fingerprint(2, False)
    ref = LatencyTable.load(reference_table_path(on))
    table.entries.update(ref.entries)  # kernels to serve with
    table.save(own_table_path(off))
    assert choose_table(off).status == MEASURED
    assert choose_table(on).status != MEASURED  # measured with sleeping workers: not this target's table
    # a table from before spinning was a setting was measured with it off
    old = LatencyTable({"threads": 2}, {})
    assert runs_threads_as(old, off) and not runs_threads_as(old, on)
    assert runs_threads_as(LatencyTable({"threads": 1}, {}), load_profile("host-cpu"))


def test_the_shipped_manifest_records_the_targets_threads(tmp_path):
    from edgeprune.export import read_manifest, write_manifest

    (tmp_path / "model.onnx").write_bytes(b"m")
    kw = dict(
        files=["model.onnx"], input_name="input", input_shape=[1, 3, 32, 32], mean=[0.5] * 3, std=[0.25] * 3,
        class_names=["a"], target="host-cpu", precision="fp32", expected_latency_ms=0.5, latency_source="measured",
    )  # fmt: skip
    path = write_manifest(tmp_path, threads=4, spinning=False, **kw)
    m = read_manifest(tmp_path)
    assert (m.threads, m.spinning) == (4, False)
    data = json.loads(path.read_text())
    del data["threads"], data["spinning"]  # a manifest written before these fields: 1 thread
    path.write_text(json.dumps(data))
    assert read_manifest(tmp_path).threads == 1
