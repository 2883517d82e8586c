"""Estimate profiles answer to the devices they name: each states its held-out error against published
measurements (``published_check``), ``ranking_only`` follows the stated rule, and the roofline behind
them still computes what ``benchmarks/estimate_fit.py`` judged."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

from edgeprune.latency.kernels import ConvSpec
from edgeprune.latency.predictor import predictor_for
from edgeprune.latency.profile import load_profile
from edgeprune.latency.roofline import Roofline

ROOT = Path(__file__).resolve().parents[2]
SHARED_DATA = ROOT.parent / "shared" / "data"
ESTIMATE_TARGETS = ("jetson-orin", "desktop-gpu", "mobile-cpu")
CHECK_KEYS = {"n", "median_abs_pct_err", "max_abs_pct_err", "kendall_tau", "within_2x"}


def ranking_only_rule(check: dict[str, float]) -> bool:
    """docs/concepts/estimates.md: absolute figures need n ≥ 3 held-out rows, all within 2×, median |err| ≤ 50 %."""
    return not (check["n"] >= 3 and check["within_2x"] >= 1.0 and check["median_abs_pct_err"] <= 50.0)


@pytest.fixture(scope="module")
def estimate_fit():
    """The benchmark module (imported the way ``python benchmarks/estimate_fit.py`` resolves its siblings)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(ROOT / "benchmarks"))
        module = importlib.import_module("estimate_fit")
    yield module
    sys.modules.pop("estimate_fit", None)


@pytest.mark.parametrize("target", ESTIMATE_TARGETS)
def test_estimate_profile_states_its_published_check(target):
    est = load_profile(target).estimate
    assert est is not None
    check = est.published_check
    assert set(check) == CHECK_KEYS
    assert check["n"] >= 1 and float(check["n"]).is_integer()
    assert 0.0 <= check["median_abs_pct_err"] <= check["max_abs_pct_err"]
    assert -1.0 <= check["kendall_tau"] <= 1.0
    assert 0.0 <= check["within_2x"] <= 1.0


@pytest.mark.parametrize("target", ESTIMATE_TARGETS)
def test_ranking_only_follows_the_rule(target):
    profile = load_profile(target)
    assert profile.estimate is not None
    assert profile.estimate.ranking_only == ranking_only_rule(profile.estimate.published_check)
    header = "".join(
        line
        for line in (ROOT / "hw_profiles" / f"{target}.yaml").read_text().splitlines()
        if line.startswith("#")
    )
    assert ("RANKING ONLY" in header) == profile.estimate.ranking_only


def test_roofline_takes_the_slower_roof_plus_overhead():
    roof = Roofline(
        peak_gflops=1000.0,
        bandwidth_gbps=100.0,
        compute_efficiency=0.5,
        memory_efficiency=1.0,
        kernel_overhead_ms=0.01,
        bytes_per_value=2,
    )
    dense = ConvSpec(56, 56, 64, 64, 3, 1, 1)  # 115.6 MMACs: compute-bound here
    depthwise = ConvSpec(56, 56, 64, 64, 3, 1, 64)  # 1.8 MMACs on the same activations: memory-bound
    assert roof.conv_ms(dense) == pytest.approx(2 * dense.macs / (1000e9 * 0.5) * 1e3 + 0.01)
    assert roof.conv_ms(depthwise) == pytest.approx(depthwise.bytes_moved(2) / 100e9 * 1e3 + 0.01)
    assert roof.convs_ms([dense, depthwise]) == pytest.approx(roof.conv_ms(dense) + roof.conv_ms(depthwise))


@pytest.mark.parametrize("target", ESTIMATE_TARGETS)
def test_shipped_profile_is_what_the_benchmark_judged(target, estimate_fit):
    """The predictor on the shipped YAML = the benchmark's estimate for the named device at the target's
    precision (same figures, same factors), and it orders ResNet-18 < ResNet-50 and MobileNetV2 < ResNet-50."""
    profile = load_profile(target)
    est = profile.estimate
    assert est is not None
    spec = estimate_fit.TARGETS[target]
    device = estimate_fit.DEVICE_BY_KEY[spec["device_key"]]
    assert est.peak_gflops == pytest.approx(device.peak(spec["precision"], spec["threads"]))
    assert est.bandwidth_gbps == device.bandwidth_gbps
    params = {
        k: getattr(est, k)
        for k in ("compute_efficiency", "memory_efficiency", "kernel_overhead_ms", "call_overhead_ms")
    }
    pred = predictor_for(profile)
    ms = {}
    for net in ("resnet18", "resnet50", "mobilenet_v2"):
        row = estimate_fit.Row(
            -1,
            {"latency_ms": "1"},
            target=target,
            builder=net,
            device=device,
            precision=spec["precision"],
            threads=spec["threads"] if device.is_cpu else None,
        )
        ms[net] = pred.predict_kernels_ms(list(estimate_fit.kernels_of(net, 1000, 224)))
        assert ms[net] == pytest.approx(estimate_fit.estimate_ms(row, params), rel=1e-9)
    assert ms["resnet18"] < ms["resnet50"]
    assert ms["mobilenet_v2"] < ms["resnet50"]


@pytest.mark.skipif(
    not (SHARED_DATA / "latency" / "published_latency.csv").is_file(), reason="no ../shared/data"
)
def test_published_check_reproduces_from_the_csv(estimate_fit):
    """Re-run the hold-out for one target from the published rows: the YAML's figures come back."""
    rows = estimate_fit.read_rows(SHARED_DATA)
    result = estimate_fit.evaluate(rows, "mobile-cpu")
    shipped = load_profile("mobile-cpu").estimate
    assert shipped is not None
    check = result["published_check"]
    assert check["n"] == shipped.published_check["n"]
    assert check["within_2x"] == pytest.approx(shipped.published_check["within_2x"], abs=1e-3)
    for key in ("median_abs_pct_err", "max_abs_pct_err"):
        assert check[key] == pytest.approx(shipped.published_check[key], abs=0.5)
    assert check["kendall_tau"] == pytest.approx(shipped.published_check["kendall_tau"], abs=0.02)
    assert result["ranking_only"] == shipped.ranking_only
    assert result["params"]["compute_efficiency"] == pytest.approx(shipped.compute_efficiency, rel=0.01)
    # every check row's estimate came from a fit that did not see its network
    assert all(r.fold == f"fit without {r.builder}" for r in result["check_rows"])
