from __future__ import annotations

import time

import pytest
from latency_helpers import PROV

from edgeprune.errors import ProfileError
from edgeprune.latency import LatencyPredictor, LatencyTable, extract_kernels, load_profile, predictor_for
from edgeprune.latency.kernels import KernelKey
from edgeprune.latency.predictor import network_overhead_key, overhead_key
from edgeprune.latency.table import Entry
from edgeprune.models.cifar_resnet import cifar_resnet


def _table(entries):
    t = LatencyTable(dict(PROV))
    t.add_pass(overhead_key("fp32"), 0.01, 0.01, 0.01, 1)
    for k, ms in entries.items():
        t.add_pass(k, ms, ms, ms, 1)
    return t


def test_sum_of_kernels_plus_overhead_and_interpolation():
    a = KernelKey("cifar_block", 8, 8, 64, 16, 64)
    b = a.with_channels(64, 48, 64)
    stem = KernelKey("conv", 32, 32, 3, 0, 16, variant="input")
    pred = LatencyPredictor("measured", "fp32", table=_table({a: 0.02, b: 0.06, stem: 0.005}))
    assert pred.predict_kernels_ms([stem, a, a, b]) == pytest.approx(0.01 + 0.005 + 0.02 + 0.02 + 0.06)
    mid = a.with_channels(64, 32, 64)  # halfway in MACs between a and b
    frac = (mid.macs - a.macs) / (b.macs - a.macs)
    assert pred.kernel_ms(mid) == pytest.approx(0.02 + frac * 0.04)
    with pytest.raises(ProfileError, match="no entries around kernel"):
        pred.kernel_ms(a.with_channels(64, 80, 64))  # above every measured point: never extrapolated
    with pytest.raises(ProfileError, match="no entries around"):
        pred.kernel_ms(KernelKey("conv", 4, 4, 8, 0, 8))


def test_family_overhead_is_a_curve_over_the_profiled_depths():
    """ResNet-20 and ResNet-56 share a stem: each profiled depth is a point, none overwrites another."""
    stem = KernelKey("conv", 32, 32, 3, 0, 16, variant="input")
    block = KernelKey("cifar_block", 32, 32, 16, 16, 16)
    t = _table({stem: 0.005, block: 0.02})
    for n, residual in ((11, 0.02), (29, 0.11)):
        t.add_pass(network_overhead_key(stem, n), residual, residual, residual, 1)
    pred = LatencyPredictor("measured", "fp32", table=t)

    def overhead(m: int) -> float:
        return pred.predict_kernels_ms([stem] + [block] * (m - 1)) - 0.005 - 0.02 * (m - 1)

    assert overhead(11) == pytest.approx(0.02)  # each profiled network is predicted exactly
    assert overhead(29) == pytest.approx(0.11)
    assert overhead(20) == pytest.approx(0.02 + 0.09 * 9 / 18)  # between the depths that bound it
    assert overhead(5) == pytest.approx(0.01 + 0.01 * 5 / 11)  # between the empty call and ResNet-20
    assert overhead(58) == pytest.approx(0.01 + 0.10 * 58 / 29)  # proportional beyond the deepest


def test_a_network_faster_than_its_kernels_keeps_its_negative_residual(tmp_path):
    """With several threads a whole network can run faster than its kernels timed alone (ResNet-56 at 2
    threads: 24 % over-predicted while the residual was clamped at 0). The residual keeps its sign
    through the file, and the profiled network is predicted at its own time."""
    stem = KernelKey("conv", 32, 32, 3, 0, 16, variant="input")
    block = KernelKey("cifar_block", 32, 32, 16, 16, 16)
    t = _table({stem: 0.005, block: 0.02})
    key = network_overhead_key(stem, 11)
    t.entries[key] = Entry.from_passes([(-0.05, -0.06, -0.04, 1)])
    t.save(tmp_path / "t.json")
    loaded = LatencyTable.load(tmp_path / "t.json")
    assert loaded.get(key).median_ms == pytest.approx(-0.05)
    pred = LatencyPredictor("measured", "fp32", table=loaded)
    kernels = [stem] + [block] * 10
    assert pred.predict_kernels_ms(kernels) == pytest.approx(0.205 - 0.05)  # kernels 0.205 ms, network 0.155
    # bounded at half the kernel sum, however far the curve extrapolates
    assert pred.predict_kernels_ms([stem] + [block] * 1000) >= 0.5 * (0.005 + 20.0)


def test_host_table_predicts_resnets_fast_and_ordered(make_pruned_resnet):
    pred = predictor_for(load_profile("host-cpu"))
    assert pred.source == "measured elsewhere"  # the reference table shipped with the profile
    full = pred.predict_ms(cifar_resnet(56), (3, 32, 32))
    small = pred.predict_ms(make_pruned_resnet((3, 3, 3), [[16] * 3, [16] * 3, [16] * 3]), (3, 32, 32))
    r20 = pred.predict_ms(cifar_resnet(20), (3, 32, 32))
    assert 0 < small < r20 < full
    keys = extract_kernels(cifar_resnet(56), (3, 32, 32))
    start = time.perf_counter()
    for _ in range(2000):
        pred.predict_kernels_ms(keys)
    assert 2000 / (time.perf_counter() - start) > 1000  # thousands of predictions per second


def test_estimate_targets_are_labelled_and_monotone(make_pruned_resnet):
    for name in ("jetson-orin", "mobile-cpu", "desktop-gpu"):
        pred = predictor_for(load_profile(name))
        assert pred.source == "estimate"
        full = pred.predict_ms(cifar_resnet(20), (3, 32, 32))
        half = pred.predict_ms(make_pruned_resnet((3, 3, 3), [[8] * 3, [16] * 3, [32] * 3]), (3, 32, 32))
        assert 0 < half < full
    orin = predictor_for(load_profile("jetson-orin")).predict_ms(cifar_resnet(56), (3, 32, 32))
    rtx = predictor_for(load_profile("desktop-gpu")).predict_ms(cifar_resnet(56), (3, 32, 32))
    assert rtx < orin  # more bandwidth and FLOPs, same fitted efficiencies


def test_uncovered_network_on_measured_target_is_a_clear_error():
    from edgeprune.models.tv_compat import torchvision_models

    pred = predictor_for(load_profile("host-cpu"))
    with pytest.raises(ProfileError, match="no entries around kernel .*run `edgeprune profile --model"):
        pred.predict_ms(torchvision_models().resnet18(num_classes=10), (3, 32, 32))
