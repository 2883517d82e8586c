"""The per-network overhead (what a family's kernels timed alone miss in a whole network): a cost for
streaming weights that starts only past what the caches hold, found by the fit, and a plain line where
the cost is linear from the first weight."""

import pytest

from edgeprune.latency.predictor import _fit_overhead

EMPTY = 0.005


def _points(
    overhead, ws=(5_000, 26_000, 55_000, 200_000, 250_000, 1_000_000, 1_150_000, 1_550_000, 2_200_000)
):
    """(n, W, K, T − K) of calibration networks whose true overhead is ``overhead(n, W, K)``."""
    out = []
    for i, w in enumerate(ws):
        n, k = 10 + i, 0.02 + w * 1e-7
        out.append((n, w, k, overhead(n, w, k)))
    return out


def test_a_cache_knee_in_the_weights_is_found():
    # the Intel Xeon's MobileNetV2 shape: flat up to ~250k weights, then 1.6e-7 ms per weight
    def true(n, w, k):
        return EMPTY + 0.0004 * n + 1.6e-7 * max(0, w - 250_000)

    model = _fit_overhead(EMPTY, _points(true))
    assert model.axis == "fit" and model.weights_free == 250_000
    for n, w, k in ((12, 144_000, 0.035), (14, 330_000, 0.055), (14, 620_000, 0.08), (20, 1_800_000, 0.2)):
        assert model.at(n, w, k) == pytest.approx(true(n, w, k), rel=0.02, abs=2e-4)


def test_a_linear_cost_stays_a_line():
    def true(n, w, k):
        return EMPTY + 0.0003 * n + 1e-7 * w - 0.05 * k

    model = _fit_overhead(EMPTY, _points(true))
    assert model.weights_free == 0
    assert model.at(14, 330_000, 0.055) == pytest.approx(true(14, 330_000, 0.055), rel=0.02)
