"""The shared timing loop: warm-up not timed, min over passes of pass medians, spread over all calls."""

from __future__ import annotations

import itertools

import pytest

from edgeprune.errors import ConfigError
from edgeprune.runtime import benchmark_callable, interleaved_benchmark


def test_min_of_pass_medians_with_a_fake_clock():
    calls = []
    durations_ms = iter([5.0, 5.0, 5.0, 3.0, 1.0, 2.0])  # pass 1: 5,5,5 (median 5); pass 2: 3,1,2 (median 2)
    ticks = itertools.count()
    now_ns = [0]

    def clock() -> int:
        # even ticks: start of a call; odd ticks: end (start + its duration)
        if next(ticks) % 2 == 0:
            return now_ns[0]
        now_ns[0] += int(next(durations_ms) * 1e6)
        return now_ns[0]

    stats = benchmark_callable(lambda: calls.append(1), warmup=4, repetitions=3, passes=2, clock=clock)
    assert len(calls) == 4 + 6  # warm-up calls are made but not timed
    assert stats.median_ms == pytest.approx(2.0) and stats.pass_medians_ms == pytest.approx((5.0, 2.0))
    assert stats.min_ms == pytest.approx(1.0) and stats.count == 6 and stats.passes == 2
    assert stats.p10_ms == pytest.approx(1.5) and stats.p90_ms == pytest.approx(5.0)


def test_interleaved_times_each_callable():
    order: list[str] = []
    a, b = interleaved_benchmark(
        [lambda: order.append("a"), lambda: order.append("b")], warmup=1, repetitions=2, passes=1
    )
    assert order == ["a", "b", "a", "b", "a", "b"]
    assert a.count == b.count == 2 and a.median_ms >= 0


def test_bad_arguments():
    with pytest.raises(ConfigError):
        benchmark_callable(lambda: None, repetitions=0)
    with pytest.raises(ConfigError):
        interleaved_benchmark([lambda: None], passes=0)
