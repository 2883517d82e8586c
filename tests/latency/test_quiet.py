"""Quiet windows: passes measured while the machine ran slow are measured again (several threads)."""

from __future__ import annotations

import pytest

from edgeprune.latency.profiler import profile_kernels
from edgeprune.latency.quiet import QuietWatch
from tests.latency.test_profiler import KEYS, FakeTimer


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.t += s


class ScriptedProbe:
    """Returns the next scripted probe median and advances the clock by a second."""

    def __init__(self, medians, clock):
        self.medians, self.clock = list(medians), clock

    def time_models_ms(self, models):
        self.clock.t += 1.0
        return [[self.medians.pop(0)] * 5]


def test_spans_are_judged_by_the_probes_around_them():
    clock = Clock()
    watch = QuietWatch(ScriptedProbe([1.0, 1.5, 1.0, 1.0], clock), probe_model=b"p", clock=clock)
    for _ in range(4):
        watch.probe()  # at t = 1, 2, 3, 4
    assert watch.best_ms == 1.0
    assert watch.quiet_between(3.2, 3.8)  # probes at 3 and 4: quiet
    assert not watch.quiet_between(1.2, 1.8)  # the probe after it (t = 2) ran 1.5x
    assert not watch.quiet_between(2.2, 2.8)  # the probe before it ran 1.5x
    assert not watch.quiet_between(4.2, 4.5)  # no probe after it yet: not judged quiet
    assert watch.summary()["loud_share"] == 0.25


def test_wait_quiet_waits_for_a_quiet_probe_and_gives_up_at_the_limit():
    clock = Clock()
    watch = QuietWatch(
        ScriptedProbe([1.0, 2.0, 2.0, 1.05], clock), probe_model=b"p", clock=clock, sleep=clock.sleep,
        max_wait_s=30.0,
    )  # fmt: skip
    watch.probe()
    assert watch.wait_quiet() and len(watch.ms) == 4
    clock2 = Clock()
    loud = QuietWatch(ScriptedProbe([1.0] + [2.0] * 50, clock2), probe_model=b"p", clock=clock2,
                      sleep=clock2.sleep, max_wait_s=5.0)  # fmt: skip
    loud.probe()
    assert not loud.wait_quiet() and clock2.t <= 1 + 5 + 1.5


class EpisodeTimer(FakeTimer):
    """FakeTimer's timings on a 2-thread target, 1.5x slow for its first ``loud_calls`` calls."""

    def __init__(self, loud_calls: int):
        super().__init__()
        self.loud_calls, self.all_calls = loud_calls, 0  # all_calls counts the probes too

    def time_models_ms(self, models):
        out = super().time_models_ms(models)
        self.all_calls += 1
        factor = 1.5 if self.all_calls <= self.loud_calls else 1.0
        return [[t * factor for t in ts] for ts in out]

    def info(self):
        return {**super().info(), "threads": 2}


@pytest.mark.parametrize("loud_calls", [0, 8, 10_000])
def test_keys_measured_only_in_a_slow_episode_are_measured_again(tmp_path, loud_calls):
    reference, _ = profile_kernels(KEYS, tmp_path / "quiet.json", EpisodeTimer(0), passes=2)
    table, _ = profile_kernels(KEYS, tmp_path / "t.json", EpisodeTimer(loud_calls), passes=2)
    quiet = table.provenance["quiet"]
    if loud_calls == 0:
        assert quiet["remeasured"] == 0 and quiet["without_a_quiet_pass"] == []
    elif loud_calls == 8:  # the start of the run is slow: its keys get a quiet pass, and their entries
        assert quiet["remeasured"] > 0 and quiet["without_a_quiet_pass"] == []
        for k in KEYS:
            assert table.entries[k].median_ms == pytest.approx(reference.entries[k].median_ms)
    else:  # slow throughout a new table: its probe's best is itself slow, so nothing looks loud
        assert quiet["remeasured"] == 0
    assert all(table.passes_of(k) >= 2 for k in KEYS)


def test_a_run_slow_throughout_is_judged_against_the_best_probe_its_table_has_seen(tmp_path, monkeypatch):
    import edgeprune.latency.quiet as quiet_mod

    monkeypatch.setattr(quiet_mod, "MAX_WAIT_S", 0.05)
    path = tmp_path / "t.json"
    first, _ = profile_kernels(KEYS[:2], path, EpisodeTimer(0), passes=2)  # a quiet run: probe 0.01 ms
    table, _ = profile_kernels(KEYS, path, EpisodeTimer(10_000), passes=2)  # 1.5x slow from start to end
    quiet = table.provenance["quiet"]
    assert quiet["best_ms"] == first.provenance["quiet"]["best_ms"] == pytest.approx(0.01)
    assert quiet["loud_share"] == 1.0 and quiet["gave_up"]
    assert {str(k) for k in KEYS[2:]} <= set(quiet["without_a_quiet_pass"])  # said, not hidden


class GpuTimer(FakeTimer):
    def info(self):
        return {**super().info(), "runtime": "tensorrt"}


def test_one_thread_is_watched_and_a_gpu_runtime_is_not(tmp_path):
    # one thread of a shared CPU also runs slow in episodes; a probe on a GPU would build an engine
    table, _ = profile_kernels(KEYS, tmp_path / "t.json", FakeTimer(), passes=1)
    assert table.provenance["quiet"]["remeasured"] == 0
    table, _ = profile_kernels(KEYS, tmp_path / "g.json", GpuTimer(), passes=1)
    assert "quiet" not in table.provenance


class TurnsLoudTimer(EpisodeTimer):
    """FakeTimer's timings on a 2-thread target, 1.5x slow from call ``quiet_calls`` on, for good."""

    def time_models_ms(self, models):
        out = FakeTimer.time_models_ms(self, models)
        self.all_calls += 1
        factor = 1.5 if self.all_calls > self.loud_calls else 1.0
        return [[t * factor for t in ts] for ts in out]


def test_a_machine_that_stays_loud_is_not_waited_for_key_after_key(tmp_path, monkeypatch):
    import edgeprune.latency.quiet as quiet_mod

    monkeypatch.setattr(quiet_mod, "MAX_WAIT_S", 0.05)
    timer = TurnsLoudTimer(loud_calls=2)  # the first probe and the first key run quiet, then never again
    table, _ = profile_kernels(KEYS, tmp_path / "t.json", timer, passes=2)
    quiet = table.provenance["quiet"]
    assert quiet["gave_up"] and quiet["remeasured"] == 0
    assert quiet["without_a_quiet_pass"]  # recorded, not hidden
    assert all(table.passes_of(k) >= 2 for k in KEYS)  # every key still has its passes


def test_measuring_again_stops_at_its_overall_limit(tmp_path, monkeypatch):
    import edgeprune.latency.quiet as quiet_mod

    monkeypatch.setattr(quiet_mod, "MAX_AGAIN_S", -1.0)  # spent before the first key
    table, _ = profile_kernels(KEYS, tmp_path / "t.json", EpisodeTimer(8), passes=2)
    quiet = table.provenance["quiet"]
    assert quiet["gave_up"] and quiet["remeasured"] == 0 and quiet["without_a_quiet_pass"]
