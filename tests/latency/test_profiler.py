from __future__ import annotations

import pytest

from edgeprune.latency.kernel_models import kernel_models
from edgeprune.latency.kernels import KernelKey
from edgeprune.latency.profiler import (
    NETWORK_EXTRA_PASSES,
    NETWORK_REPEATS,
    LocalOrtTimer,
    measure_kernel,
    profile_kernels,
)
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


class NetworkEpisodes(FakeTimer):
    """Whole networks (``NET``) run at the times of ``schedule``, one value per pass."""

    NET = b"a whole network"

    def __init__(self, schedule):
        super().__init__()
        self.schedule, self.network_calls = schedule, 0

    def time_models_ms(self, models):
        if models != [self.NET]:
            return super().time_models_ms(models)
        i = min(self.network_calls // NETWORK_REPEATS, len(self.schedule) - 1)
        self.network_calls += 1
        return [[self.schedule[i]] * 10]


def _network_entry(table):
    return next(e for k, e in table.entries.items() if k.variant.startswith("total-"))


def test_a_whole_network_timed_in_a_slow_episode_is_timed_again_until_two_passes_agree(tmp_path):
    # passes 1 and 2 ran 40 % and 25 % slow; 3 is quiet, 4 agrees with it
    timer = NetworkEpisodes([1.4, 1.25, 1.0, 1.01, 1.3])
    table, _ = profile_kernels(
        KEYS, tmp_path / "t.json", timer, passes=2, networks=[(KEYS, NetworkEpisodes.NET)]
    )
    entry = _network_entry(table)
    assert entry.pass_medians_ms == [1.4, 1.25, 1.0, 1.01] and entry.median_ms == 1.0
    assert table.provenance["network_passes"]["extra_passes"] == 2
    assert table.provenance["network_passes"]["unsettled"] == []


def test_a_network_that_never_settles_stops_at_the_bound_and_a_resume_adds_nothing(tmp_path):
    path = tmp_path / "t.json"
    flicker = [1.0 + 0.1 * (i % 2) + 0.05 * i for i in range(20)]  # no two passes within 3 %
    table, _ = profile_kernels(
        KEYS, path, NetworkEpisodes(flicker), passes=2, networks=[(KEYS, NetworkEpisodes.NET)]
    )
    assert len(_network_entry(table).pass_medians_ms) == 2 + NETWORK_EXTRA_PASSES
    assert len(table.provenance["network_passes"]["unsettled"]) == 1
    timer = NetworkEpisodes(flicker)
    profile_kernels(KEYS, path, timer, passes=2, networks=[(KEYS, NetworkEpisodes.NET)])
    assert timer.network_calls == 0  # a later compile does not pay for this machine's loud day again
