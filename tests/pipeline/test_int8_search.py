"""Search for the precision you ship: ``compile --precision int8`` searches on INT8 latency of the target
(kernels profiled in INT8 with the target's recipe), and the FP32 figure is shown beside it where this
device's table has FP32 kernels."""

from __future__ import annotations

import csv
import re
from dataclasses import replace
from types import SimpleNamespace

import pytest

from edgeprune.config import ModelConfig
from edgeprune.errors import ProfileError
from edgeprune.latency import LatencyTable, load_profile, predictor_for
from edgeprune.latency.profile import target_profile
from edgeprune.latency.store import own_table_path
from edgeprune.latency.timing import ort_cpu_fingerprint
from edgeprune.models import build_model
from edgeprune.pipeline.latency_setup import ensure_latency_table
from edgeprune.progress import Reporter


def test_ship_precision_is_the_precision_searched(tmp_path):
    from edgeprune.pipeline import resolve_config
    from edgeprune.pipeline.inputs import evaluator_spec, validate_inputs
    from edgeprune.rundir import RunDir
    from edgeprune.search.evaluator import EvaluatorSpec

    inputs = validate_inputs(resolve_config(None, {"ship": {"precision": "int8"}}))
    assert inputs.profile.name == "host-cpu" and inputs.profile.precision == "int8"
    spec = evaluator_spec(inputs, RunDir(tmp_path / "run"))
    assert EvaluatorSpec.from_dict(spec.to_dict()).precision == "int8"  # what a Ray worker rebuilds
    auto = validate_inputs(resolve_config(None, {}))
    assert (
        auto.profile.precision == "fp32"
        and "precision" not in evaluator_spec(auto, RunDir(tmp_path)).to_dict()
    )


def _inputs(profile, name="resnet20", shape=(3, 32, 32)):
    return SimpleNamespace(
        profile=profile,
        loaded=build_model(ModelConfig(name=name, num_classes=10)),
        data=SimpleNamespace(input_shape=shape),
        cfg=SimpleNamespace(model=SimpleNamespace(name=name), search=SimpleNamespace(rank_genes=False)),
    )


def test_a_device_target_without_an_int8_table_names_the_int8_profile_command(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEPRUNE_HOME", str(tmp_path))
    ensure_latency_table(_inputs(load_profile("mobile-cpu")), Reporter())  # FP32: its estimate will do
    with pytest.raises(ProfileError) as err:  # INT8: an FP32 roofline is not INT8 latency
        ensure_latency_table(_inputs(target_profile("mobile-cpu", precision="int8")), Reporter())
    msg = str(err.value)
    assert "\n" not in msg and "no mobile-cpu int8 table yet" in msg
    command = re.search(r"on the device: `(edgeprune profile [^`]+)`", msg)
    assert command and command.group(1).endswith("--threads 4 --precision int8"), msg


def _fp32_and_int8_table(path) -> None:
    """This machine's table with the reference FP32 entries and the same kernels at INT8, half as long."""
    ref = LatencyTable.load(load_profile("host-cpu").profile_dir / "tables" / "host-cpu.json")
    table = LatencyTable({**ref.provenance, "fingerprint": ort_cpu_fingerprint(1)}, dict(ref.entries))
    for key, e in ref.entries.items():
        half = replace(e, median_ms=e.median_ms / 2, p10_ms=e.p10_ms / 2, p90_ms=e.p90_ms / 2)
        table.entries[replace(key, precision="int8")] = half
    table.save(path)


def test_the_evaluator_prices_int8_and_records_fp32_beside_it(tmp_path, monkeypatch):
    from edgeprune.config import DataConfig
    from edgeprune.search.config import SearchConfig
    from edgeprune.search.evaluator import Evaluator, EvaluatorSpec

    monkeypatch.setenv("EDGEPRUNE_HOME", str(tmp_path))
    int8 = target_profile("host-cpu", precision="int8")
    _fp32_and_int8_table(own_table_path(int8))
    search = SearchConfig(val_size=50, calib_batches=1, batch_size=32)
    spec = EvaluatorSpec(ModelConfig(name="digits-resnet"), DataConfig(source="digits"), "host-cpu", search)
    fp32_eval, int8_eval = Evaluator(spec), Evaluator(replace(spec, precision="int8"))
    assert int8_eval.predictor.precision == "int8" and int8_eval.latency_source == "measured"
    from edgeprune.search.run import build_space

    space = build_space(int8_eval)
    plan = space.decode(space.uniform(0.5))
    m8, m32 = int8_eval.evaluate(plan), fp32_eval.evaluate(plan)
    assert "latency_fp32_ms" not in m32  # an FP32 search records one latency
    assert m8["latency_fp32_ms"] == pytest.approx(m32["latency_ms"], rel=1e-9)
    # priced from the INT8 entries (half the FP32 ones; a table keeps 6 decimals of a ms)
    assert m8["latency_ms"] == pytest.approx(m32["latency_ms"] / 2, rel=1e-3)
    # without FP32 kernels of this machine, no FP32 figure (never the reference measured elsewhere)
    table = LatencyTable.load(own_table_path(int8))
    table.entries = {k: e for k, e in table.entries.items() if k.precision == "int8"}
    table.save(own_table_path(int8))
    assert predictor_for(load_profile("host-cpu")).source == "measured elsewhere"
    assert "latency_fp32_ms" not in Evaluator(replace(spec, precision="int8")).evaluate(plan)


@pytest.mark.slow
def test_compile_int8_searches_on_int8_latency(tmp_path, small_config, monkeypatch):
    """A small default job with --precision int8 from a fresh EDGEPRUNE_HOME that holds this machine's
    FP32 table: compile measures the INT8 kernels, pareto.csv's latency is the INT8 table's prediction
    and the FP32 one is beside it."""
    from edgeprune.cli import main
    from edgeprune.export.rebuild import load_pick
    from edgeprune.latency import extract_kernels

    monkeypatch.setenv("EDGEPRUNE_HOME", str(tmp_path / "home"))
    host = load_profile("host-cpu")
    assert main(["profile", "--target", "host-cpu", "--model", "digits-resnet", "--num-classes", "10",
                 "--input-shape", "1,8,8", "--passes", "1", "--runs", "30", "--quiet"]) == 0  # fmt: skip
    out = tmp_path / "run"
    assert (
        main(["compile", "--quiet", "--config", str(small_config), "--out", str(out), "--precision", "int8"])
        == 0
    )
    int8 = target_profile("host-cpu", precision="int8")
    table = LatencyTable.load(own_table_path(host))
    assert table.precisions == {"fp32", "int8"} and "int8" in table.provenance["quantization"]
    rows = list(csv.DictReader((out / "pareto.csv").open()))
    assert rows and {r["latency_source"] for r in rows} == {"measured"}
    pred8, pred32 = predictor_for(int8), predictor_for(host)
    knee = next(r for r in rows if r["knee"] == "1")
    model = load_pick(out / "picks" / "knee", model_name="digits-resnet", num_classes=10, input_shape=(1, 8, 8),
                      base_weights=out / "base" / "weights.pt")  # fmt: skip
    kernels = extract_kernels(model, (1, 8, 8), "int8")
    assert all(k.precision == "int8" for k in kernels)
    assert float(knee["latency_ms"]) == pytest.approx(pred8.predict_kernels_ms(kernels), rel=1e-5)
    assert float(knee["latency_fp32_ms"]) == pytest.approx(pred32.predict_ms(model, (1, 8, 8)), rel=1e-5)
    assert all(r["latency_fp32_ms"] for r in rows)
    assert "int8" in (out / "report.html").read_text()
