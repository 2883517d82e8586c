"""`edgeprune.report.run_report`: pareto.png, report.html and the run manifest of a finished run."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from edgeprune.graph import PruningPlan
from edgeprune.latency import load_profile
from edgeprune.report.run_report import pick_summaries, run_files, write_run_report
from edgeprune.rundir import RunDir
from edgeprune.search.result import Candidate, SearchResult


def _result() -> SearchResult:
    metrics = [
        {"error": 0.02, "params": 90_000, "macs": 9e6, "latency_ms": 0.30},
        {"error": 0.03, "params": 40_000, "macs": 4e6, "latency_ms": 0.12},
        {"error": 0.09, "params": 10_000, "macs": 1e6, "latency_ms": 0.05},
        {"error": 0.20, "params": 50_000, "macs": 5e6, "latency_ms": 0.25},  # dominated: not on the front
    ]
    candidates = tuple(
        Candidate(PruningPlan(keep={"layer1.0.conv1": 16 - 4 * i}), (i, i), m) for i, m in enumerate(metrics)
    )
    history = (
        {"generation": 1, "n_evals": 4, "hypervolume": 0.5, "best_error": 0.02, "min_latency_ms": 0.05},
    )
    return SearchResult(
        "nsga3", ("error", "latency"), candidates, (0, 1, 2), {"accurate": 0, "knee": 1, "fast": 2}, history, 4,
        "measured",
    )  # fmt: skip


def _write(root: Path, rel: str, data: bytes) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


@pytest.fixture()
def run(tmp_path) -> RunDir:
    root = tmp_path / "run"
    for rel, data in {
        "config.yaml": b"model: x\n",
        "run.json": b"{}",
        "edgeprune.log": b"log\n",
        "search/checkpoint.json": b"{}",
        "search/cache.jsonl": b"",
        "base/weights.pt": b"\x01" * 100,
        "picks/knee/model.onnx": b"onnx bytes",
        "picks/knee/manifest.json": b"{}",
        "influential_filters.csv": b"group,channel,kept_fraction\n",
    }.items():
        _write(root, rel, data)
    return RunDir(root)


def test_run_files_hash_all_but_the_search_the_record_the_log_and_manifests(run):
    files = run_files(run.root)
    assert list(files) == [
        "base/weights.pt",
        "config.yaml",
        "influential_filters.csv",
        "picks/knee/model.onnx",
    ]
    assert files["base/weights.pt"] == {"bytes": 100, "sha256": hashlib.sha256(b"\x01" * 100).hexdigest()}


def test_write_run_report(run):
    result = _result()
    finalize = {
        "accurate": {"test_accuracy": 0.97},
        "knee": {"test_accuracy": 0.95},
        "baseline": {"test_accuracy": 0.98},
        "original": {"test_accuracy": 0.975},
    }
    shipped = {
        "knee": {"verify": {"passed": True, "checks": [], "where": "here"}, "measured_latency_ms": 0.11}
    }
    report = write_run_report(
        run, result, model_name="transfer:resnet20:32", profile=load_profile("host-cpu"), config_yaml="model: x\n",
        finalize=finalize, shipped=shipped, extra_sections=[("Influential filters", "<p>heatmap here</p>")],
    )  # fmt: skip
    assert report["summary"] == {
        "original test accuracy": 0.975,
        "unpruned fine-tuned test accuracy (same recipe)": 0.98,
        "evaluations": 4,
        "front size": 3,
    }
    picks = report["picks"]
    assert list(picks) == ["accurate", "knee", "fast"]
    assert picks["fast"]["metrics"]["latency_ms"] == 0.05 and picks["fast"]["finalize"] == {}
    assert picks["knee"]["verify"]["passed"] is True and picks["knee"]["finalize"]["test_accuracy"] == 0.95
    assert run.pareto_png.read_bytes().startswith(b"\x89PNG")
    page = run.report_html.read_text()
    assert "<title>edgeprune: transfer:resnet20:32 for host-cpu</title>" in page
    assert (
        "<h2>Influential filters</h2><p>heatmap here</p>" in page
        and "Baselines for the accuracy drop" in page
    )
    assert page.index("Baselines for the accuracy drop") < page.index("Influential filters")
    assert page.count('<tr class="pick">') == 3  # the front's three members, each a pick
    manifest = json.loads(run.manifest.read_text())
    assert manifest["model"] == "transfer:resnet20:32" and manifest["target"] == "host-cpu"
    assert manifest["latency_source"] == "measured" and manifest["edgeprune_run"] == 1
    assert manifest["picks"] == {n: f"picks/{n}/manifest.json" for n in ("accurate", "knee", "fast")}
    assert manifest["not_shipped"] == []
    # the manifest is written last: it hashes the plot and the page written just before it
    assert set(manifest["files"]) == {
        "base/weights.pt", "config.yaml", "influential_filters.csv", "picks/knee/model.onnx", "pareto.png",
        "report.html",
    }  # fmt: skip
    html_entry = manifest["files"]["report.html"]
    assert html_entry["sha256"] == hashlib.sha256(run.report_html.read_bytes()).hexdigest()
    assert html_entry["bytes"] == run.report_html.stat().st_size


def test_pick_summaries_without_finalize_or_ship():
    result = _result()
    summaries = pick_summaries(result, {}, {})
    assert {n: s["metrics"]["error"] for n, s in summaries.items()} == {
        "accurate": 0.02,
        "knee": 0.03,
        "fast": 0.09,
    }


def test_a_run_that_shipped_only_the_knee_reports_and_lists_only_the_knee(run):
    shipped = {"knee": {"verify": {"passed": True, "checks": [], "where": "here"}}}
    report = write_run_report(
        run, _result(), model_name="resnet20", profile=load_profile("host-cpu"), config_yaml="model: x\n",
        finalize={"knee": {"test_accuracy": 0.95}}, shipped=shipped, picks=("knee",),
    )  # fmt: skip
    assert list(report["picks"]) == ["knee"]
    assert json.loads(run.manifest.read_text())["picks"] == {"knee": "picks/knee/manifest.json"}


def test_a_pick_fine_tuned_earlier_but_no_longer_shipped_is_kept_named_and_not_hashed(run):
    # a run resumed with `--picks knee` after `--picks knee,accurate`: the accurate pick's folder stays
    _write(run.root, "picks/accurate/model.onnx", b"earlier onnx")
    _write(run.root, "picks/accurate/weights.pt", b"earlier weights")
    shipped = {"knee": {"verify": {"passed": True, "checks": [], "where": "here"}}}
    write_run_report(
        run, _result(), model_name="resnet20", profile=load_profile("host-cpu"), config_yaml="model: x\n",
        finalize={"knee": {"test_accuracy": 0.95}}, shipped=shipped, picks=("knee",),
    )  # fmt: skip
    manifest = json.loads(run.manifest.read_text())
    assert manifest["not_shipped"] == ["picks/accurate"]
    assert (run.root / "picks/accurate/weights.pt").read_bytes() == b"earlier weights"
    assert "picks/knee/model.onnx" in manifest["files"]
    assert not [f for f in manifest["files"] if f.startswith("picks/accurate")]
