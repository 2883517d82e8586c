"""Quiet windows: kernels are kept only from passes the machine ran at speed (ONNX Runtime on a CPU).

On a machine whose cores are shared with other work (a cloud VM whose vCPUs other guests also use),
work runs much slower for seconds at a time. Measured on the 2-core VM these tables were developed
on, over 90 s: ResNet-56 at 2 threads ran ≥ 1.15× its best for 30 % of the time, in episodes of
4-15 s, at about 1.3×; at 1 thread none showed that day. On another day 1 thread was hit too: 11
MobileNetV2s, each timed 12 times in turn, ran 1.3-1.6× their best in the same stretch of the run.
A table profiled in such an episode prices every kernel slow (one run: ResNet-56 networks predicted
33 % slow on average at 2 threads).

The profiler's passes are spread in time and each entry is the minimum over passes of the pass
median, so one pass at speed is enough. A :class:`QuietWatch` makes sure there is one: it times a
small probe on the same timer (a 3×3 convolution, 32 channels at 16×16, which ran 1.42× slow in the
episodes against 1.06× outside them, correlation 0.89 with ResNet-56) at most every
``interval_s``, and a pass counts as *quiet* when every probe around it ran within ``tolerance`` of
the best probe of the run, or of an earlier run on the same table (``known_best_ms``: a run slow
from start to end has no quiet probe of its own to compare with). Keys without a quiet pass are
measured again, each once the probe says the machine is quiet, for up to ``QUIET_ROUNDS`` rounds. When no quiet probe comes within
``max_wait_s``, the profiler stops measuring again and records the keys still without a quiet pass:
a machine loud for that long will not turn quiet within a profile's time (one run before this
limit waited 25 minutes on a ResNet-56 table of 62 kernels).
"""

from __future__ import annotations

import bisect
import contextlib
import math
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from edgeprune.latency.kernels import KernelKey

PROBE_KEY = KernelKey("conv", 16, 16, 32, 0, 32, 3, 1, 1, "", "fp32")
QUIET_TOLERANCE = 1.15
PROBE_INTERVAL_S = 0.5
MAX_WAIT_S = 30.0
QUIET_ROUNDS = 3
MAX_AGAIN_S = 120.0  # all measuring again together: a machine that flickers is not waited on for ever


class QuietWatch:
    """Probes the machine on ``timer`` and judges time spans quiet or loud (see the module docstring)."""

    def __init__(
        self,
        timer: Any,
        *,
        tolerance: float = QUIET_TOLERANCE,
        interval_s: float = PROBE_INTERVAL_S,
        max_wait_s: float | None = None,
        probe_model: bytes | None = None,
        known_best_ms: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        if probe_model is None:
            from edgeprune.latency.kernel_models import kernel_models

            probe_model = kernel_models(PROBE_KEY)[1]
        self.timer, self.model = timer, probe_model
        self.tolerance, self.interval_s = tolerance, interval_s
        self.max_wait_s = MAX_WAIT_S if max_wait_s is None else max_wait_s
        self.clock, self.sleep = clock, sleep
        self.times: list[float] = []  # when each probe ended, increasing
        self.ms: list[float] = []  # its median
        self.spans: dict[Any, list[tuple[float, float]]] = {}  # key -> when each of its passes ran
        # the best probe an earlier run on this machine saw: a run that is slow from its first probe
        # to its last is then judged against it, not against its own (slow) best
        self.known_best_ms = math.inf if known_best_ms is None else known_best_ms

    @property
    def best_ms(self) -> float:
        return min([self.known_best_ms, *self.ms])

    def probe(self) -> float:
        """Time the probe now; its median in ms."""
        ms = float(np.median(self.timer.time_models_ms([self.model])[0]))
        self.times.append(self.clock())
        self.ms.append(ms)
        return ms

    def tick(self) -> None:
        """Probe if the last probe is ``interval_s`` old (call before each measurement)."""
        if not self.times or self.clock() - self.times[-1] >= self.interval_s:
            self.probe()

    @contextlib.contextmanager
    def measuring(self, key: Any) -> Iterator[None]:
        """Around one pass of ``key``: probe if due, and remember when the pass ran."""
        self.tick()
        start = self.clock()
        yield
        self.spans.setdefault(key, []).append((start, self.clock()))

    def is_quiet(self, ms: float) -> bool:
        return ms <= self.tolerance * self.best_ms

    def quiet_between(self, start: float, end: float) -> bool:
        """Whether every probe around ``[start, end]`` — the last before it, those inside, the first
        after it — ran quiet (judged against the best probe so far). A span with no probe after it
        is not judged quiet."""
        lo = max(bisect.bisect_right(self.times, start) - 1, 0)
        hi = bisect.bisect_left(self.times, end)
        if hi >= len(self.times):
            return False
        return all(self.is_quiet(ms) for ms in self.ms[lo : hi + 1])

    def loud(self, spans: dict[Any, list[tuple[float, float]]] | None = None) -> list[Any]:
        """The keys of ``spans`` (key → when each of its passes was measured; default: the passes
        run under :meth:`measuring`) with no quiet pass."""
        spans = self.spans if spans is None else spans
        return [k for k, ss in spans.items() if not any(self.quiet_between(*s) for s in ss)]

    def wait_quiet(self) -> bool:
        """Probe until a probe runs quiet (True) or ``max_wait_s`` has passed (False)."""
        deadline = self.clock() + self.max_wait_s
        while not self.is_quiet(self.probe()):
            if self.clock() >= deadline:
                return False
            self.sleep(self.interval_s)
        return True

    def measure_again(
        self, measure: Callable[[Any], None], on_round: Callable[[int], None] | None = None
    ) -> dict[str, Any]:
        """After the passes: measure again (``measure(key)``, which runs under :meth:`measuring`) each
        key without a quiet pass once the probe runs quiet, for up to ``QUIET_ROUNDS`` rounds
        (``on_round`` gets each round's count first); stop when no quiet probe comes within
        ``max_wait_s``, or after ``MAX_AGAIN_S`` in all (one run of a 500-kernel table waited more
        than 11 minutes on a machine that turned quiet for a moment between long loud stretches).
        Returns :meth:`summary` with what was measured again and what still has no quiet pass."""
        remeasured, gave_up = 0, False
        deadline = self.clock() + MAX_AGAIN_S
        for _ in range(QUIET_ROUNDS):
            self.probe()  # closes the last span
            loud = self.loud()
            if not loud:
                break
            if on_round:
                on_round(len(loud))
            for key in loud:
                # past the overall limit, or loud for max_wait_s: it will not turn quiet soon
                if self.clock() > deadline or not self.wait_quiet():
                    gave_up = True
                    break
                measure(key)
                remeasured += 1
            if gave_up:
                break
        self.probe()
        return {
            **self.summary(), "remeasured": remeasured, "gave_up": gave_up,
            "without_a_quiet_pass": [str(k) for k in self.loud()],
        }  # fmt: skip

    def summary(self) -> dict[str, Any]:
        """What the watch saw, for the table's provenance."""
        loud = sum(not self.is_quiet(ms) for ms in self.ms)
        return {
            "probe": str(PROBE_KEY),
            "probes": len(self.ms),
            "best_ms": round(self.best_ms, 6) if math.isfinite(self.best_ms) else None,
            "tolerance": self.tolerance,
            "loud_share": round(loud / len(self.ms), 3) if self.ms else 0.0,
        }
