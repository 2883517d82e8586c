from __future__ import annotations

import pytest
import yaml

from edgeprune.errors import ProfileError
from edgeprune.latency.profile import PROFILES_ENV, list_profiles, load_profile
from edgeprune.latency.store import reference_table_path


def test_shipped_profiles_and_their_provenance():
    profiles = {p.name: p for p in list_profiles()}
    assert {"host-cpu", "jetson-orin", "mobile-cpu", "desktop-gpu"} <= set(profiles)
    host = profiles["host-cpu"]
    assert (host.runtime, host.precision, host.threads, host.channel_multiple) == (
        "onnxruntime-cpu",
        "fp32",
        1,
        16,
    )
    ref = reference_table_path(host)
    assert host.local and ref is not None and ref.is_file()  # a reference, measured elsewhere
    for name in ("jetson-orin", "mobile-cpu", "desktop-gpu"):
        p = profiles[name]
        assert not p.local and p.table is None and p.estimate is not None
        assert p.estimate.citations and "HW-NAS-Bench" in p.estimate.fitted_to
    assert profiles["jetson-orin"].runtime == "tensorrt" and profiles["jetson-orin"].precision == "fp16"


def test_unknown_target():
    with pytest.raises(ProfileError, match="unknown target 'nano'.*host-cpu"):
        load_profile("nano")


def _profile(**over):
    base = yaml.safe_load((load_profile("mobile-cpu").profile_dir / "mobile-cpu.yaml").read_text())
    base.update(over)
    return base


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (_profile(runtime="tflite"), "unknown runtime 'tflite'"),
        ({k: v for k, v in _profile().items() if k != "channel_multiple"}, "channel_multiple"),
        (_profile(precision="fp8"), "precision"),
        (_profile(estimate=None), "neither a measured table nor an estimate"),
        (_profile(threads=0), "threads"),
    ],
)
def test_malformed_profile_is_one_line(tmp_path, data, message):
    p = tmp_path / "bad.yaml"
    p.write_text(yaml.safe_dump(data))
    with pytest.raises(ProfileError, match=message) as info:
        load_profile(str(p))
    assert "\n" not in str(info.value)


def test_profiles_dir_override(tmp_path, monkeypatch):
    data = _profile(name="lab-board", description="a lab board")
    (tmp_path / "lab-board.yaml").write_text(yaml.safe_dump(data))
    monkeypatch.setenv(PROFILES_ENV, str(tmp_path))
    assert load_profile("lab-board").description == "a lab board"
    assert "lab-board" in {p.name for p in list_profiles()}
