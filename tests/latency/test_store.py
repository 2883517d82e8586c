"""A table belongs to the device it was measured on (edgeprune.latency.store)."""

from __future__ import annotations

import json

import pytest

from edgeprune.latency import load_profile, predictor_for
from edgeprune.latency.store import (
    ELSEWHERE,
    MEASURED,
    choose_table,
    edgeprune_home,
    figure_source,
    own_table_path,
    reference_table_path,
)
from edgeprune.latency.table import LatencyTable
from edgeprune.latency.timing import describe_fingerprint, fingerprint_id, ort_cpu_fingerprint


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEPRUNE_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def _copy_reference_with(fingerprint: dict, dest) -> None:
    """The shipped reference table, re-labelled as measured on ``fingerprint``."""
    host = load_profile("host-cpu")
    data = json.loads(reference_table_path(host).read_text())
    data["provenance"] = {**data["provenance"], "fingerprint": fingerprint, "threads": fingerprint["threads"]}
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(json.dumps(data))


def test_the_user_data_directory_is_edgeprune_home(home):
    assert edgeprune_home() == home
    assert own_table_path(load_profile("host-cpu")).parent == home / "tables" / "host-cpu"


def test_a_fingerprint_names_what_changes_kernels():
    fp = ort_cpu_fingerprint(1)
    assert {"vendor", "family", "model", "stepping", "isa", "logical_cpus", "machine"} <= set(fp)
    assert fp["runtime"] == "onnxruntime-cpu" and fp["threads"] == 1 and fp["runtime_version"]
    assert fingerprint_id(fp) == fingerprint_id(dict(fp)) != fingerprint_id({**fp, "threads": 2})
    assert fingerprint_id(fp) != fingerprint_id({**fp, "machine": "another"})
    assert "1 thread" in describe_fingerprint(fp)


def test_another_machines_table_is_measured_elsewhere_until_this_machine_has_one(home):
    host = load_profile("host-cpu")
    # only the reference shipped with the profile (another machine, no fingerprint of this one)
    choice = choose_table(host)
    assert choice.status == ELSEWHERE and choice.path == reference_table_path(host)
    assert predictor_for(host).source == figure_source(host) == "measured elsewhere"
    # a table with the same CPU but another machine id: still elsewhere (same CPU names have differed by 1/3)
    twin = {**ort_cpu_fingerprint(1), "machine": "0123456789ab"}
    _copy_reference_with(twin, home / "tables" / "host-cpu" / f"{fingerprint_id(twin)}.json")
    assert choose_table(host).status == ELSEWHERE
    # this machine's own table: measured
    _copy_reference_with(ort_cpu_fingerprint(1), own_table_path(host))
    choice = choose_table(host)
    assert choice.status == MEASURED and choice.path == own_table_path(host)
    assert predictor_for(host).source == "measured"
    # the same machine at 2 threads is another target: no table of it yet
    assert choose_table(host.with_threads(2)).status == ELSEWHERE


def test_a_table_whose_file_name_lies_is_not_trusted(home):
    host = load_profile("host-cpu")
    _copy_reference_with({**ort_cpu_fingerprint(1), "machine": "elsewhere"}, own_table_path(host))
    assert choose_table(host).status == ELSEWHERE


def test_tables_load_without_fingerprint_and_keep_it(tmp_path):
    t = LatencyTable.load(reference_table_path(load_profile("host-cpu")))
    assert "fingerprint" not in t.provenance  # measured before fingerprints: never "this machine"
    t.provenance["fingerprint"] = ort_cpu_fingerprint(1)
    t.save(tmp_path / "t.json")
    assert LatencyTable.load(tmp_path / "t.json").provenance["fingerprint"] == ort_cpu_fingerprint(1)
