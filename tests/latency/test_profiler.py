from __future__ import annotations

import pytest

from edgeprune.latency.kernel_models import kernel_models
from edgeprune.latency.kernels import KernelKey
from edgeprune.latency.profiler import LocalOrtTimer, measure_kernel, profile_kernels
from edgeprune.latency.quiet import PROBE_KEY
from edgeprune.latency.table import LatencyTable

PROBE = kernel_models(PROBE_KEY)[1]


class FakeTimer:
    """Deterministic timings: the second model of a pair is 0.01 ms per MAC-million slower; can fail."""

    def __init__(self, fail_after: int | None = None):
        self.calls = 0
        self.fail_after = fail_after

    def time_models_ms(self, models):
        if models == [PROBE]:  # the quiet watch's probe: not a measurement of the profile
            return [[0.01] * 10]
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise KeyboardInterrupt
        return [[0.01 + 0.001 * i + len(m) * 1e-9] * 10 for i, m in enumerate(models)]

    def info(self):
        return {"device": "fake", "runtime": "onnxruntime-cpu", "runtime_version": "0", "threads": 1}


KEYS = [KernelKey("cifar_block", 8, 8, 16, m, 16) for m in (16, 32, 48)] + [
    KernelKey("gap_linear", 8, 8, 16, 0, 10)
]


def test_interrupted_profile_resumes_without_remeasuring(tmp_path):
    path = tmp_path / "t.json"
    with pytest.raises(KeyboardInterrupt):
        profile_kernels(KEYS, path, FakeTimer(fail_after=6), passes=2, save_every_s=0.0)
    partial = LatencyTable.load(path)  # saved atomically on the way out
    done = sum(partial.passes_of(k) for k in partial.entries)
    assert done == 6
    timer = FakeTimer()
    table, measured = profile_kernels(KEYS, path, timer, passes=2)
    assert measured == 2 * (len(KEYS) + 1) - done == timer.calls
    assert all(table.passes_of(k) == 2 for k in KEYS)
    table2, measured2 = profile_kernels(KEYS, path, FakeTimer(), passes=2)
    assert measured2 == 0 and table2.entries.keys() == table.entries.keys()


def test_real_kernel_measurement_on_onnxruntime():
    timer = LocalOrtTimer(threads=1, warmup=5, runs=30)
    small = measure_kernel(KernelKey("cifar_block", 32, 32, 16, 16, 16), timer)
    big = measure_kernel(KernelKey("cifar_block", 32, 32, 64, 64, 64), timer)
    assert 0 < small[0] < big[0]  # 16x more MACs
    assert small[3] == 30
