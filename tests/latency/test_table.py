from __future__ import annotations

import json

import pytest
from latency_helpers import PROV

from edgeprune.errors import ProfileError
from edgeprune.latency.kernels import KernelKey
from edgeprune.latency.table import LatencyTable

K = KernelKey("cifar_block", 8, 8, 64, 32, 64)


def test_min_over_passes_and_stats():
    t = LatencyTable(dict(PROV))
    t.add_pass(K, 0.10, 0.09, 0.12, 100)
    t.add_pass(K, 0.08, 0.075, 0.09, 100)
    t.add_pass(K, 0.12, 0.11, 0.13, 100)
    e = t.get(K)
    assert e.median_ms == 0.08 and e.p10_ms == 0.075 and e.p90_ms == 0.09
    assert e.count == 300 and t.passes_of(K) == 3
    assert e.spread == pytest.approx((0.12 - 0.08) / 0.08)


def test_json_round_trip_and_merge(tmp_path):
    a = LatencyTable(dict(PROV))
    a.add_pass(K, 0.10, 0.09, 0.12, 50)
    b = LatencyTable(dict(PROV))
    b.add_pass(K, 0.07, 0.06, 0.08, 50)
    other = K.with_channels(64, 16, 64)
    b.add_pass(other, 0.05, 0.04, 0.06, 50)
    a.save(tmp_path / "a.json")
    loaded = LatencyTable.load(tmp_path / "a.json")
    assert loaded.get(K).median_ms == pytest.approx(0.10)
    merged = loaded.merge(b)
    assert merged.get(K).median_ms == pytest.approx(0.07) and merged.get(K).count == 100
    assert merged.get(K).pass_medians_ms == pytest.approx([0.10, 0.07])
    assert merged.get(other).median_ms == pytest.approx(0.05)
    with pytest.raises(ProfileError, match="different device"):
        a.merge(LatencyTable({**PROV, "device": "gpu"}))


def _write(tmp_path, data):
    p = tmp_path / "t.json"
    p.write_text(json.dumps(data))
    return p


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["entries"][str(K)].update(median_ms=-0.1), "negative latency"),
        (lambda d: d["entries"][str(K)].pop("count"), "missing field 'count'"),
        (lambda d: d["provenance"].pop("runtime_version"), "missing field 'runtime_version'"),
        (lambda d: d.update(version=99), "version 99 is not supported"),
        (lambda d: d["provenance"].update(source="guess"), "must be 'measured' or 'estimate'"),
        (lambda d: d["entries"].update({"nonsense": {}}), "malformed kernel key"),
    ],
)
def test_malformed_tables_are_one_clear_line(tmp_path, mutate, message):
    t = LatencyTable(dict(PROV))
    t.add_pass(K, 0.1, 0.1, 0.1, 10)
    data = json.loads(t.to_json())
    mutate(data)
    with pytest.raises(ProfileError, match=message) as info:
        LatencyTable.load(_write(tmp_path, data))
    assert "\n" not in str(info.value)


def test_not_json(tmp_path):
    p = tmp_path / "t.json"
    p.write_text("{not json")
    with pytest.raises(ProfileError, match="not readable JSON"):
        LatencyTable.load(p)
