"""Latency of a whole (pruned) network = the sum of its kernels + a measured per-network overhead.

The overhead is the runtime's empty-call time ``e``. When ``edgeprune profile`` also measured the
unpruned network of a family end to end (time ``T`` with ``n`` kernels summing to ``K``), ``T − K``
holds what the kernels in context do not see (graph-end copies, layout reorders, functional pooling,
per-node dispatch the in-context difference misses, and the cache pressure of a larger network). Each
profiled network is a point ``(n, T − K)`` of its family's curve, anchored at ``(0, e)``; a network of
that family with ``m`` kernels gets the curve at ``m`` (linear between the profiled depths that bound
it, proportional beyond the deepest), so every profiled network is predicted exactly. A network's
family is recognised by its first kernel (the one reading the input): ResNet-20 … ResNet-110 share
one family and each profiled depth adds a point — a pruned ResNet-56 with its blocks cut to 15 is
given the overhead measured between ResNet-20 and ResNet-32, not ResNet-56's scaled down.

A measured predictor looks each kernel up in the target's table; a channel count between measured
points is interpolated linearly in MACs between the nearest entries of the same kernel family that
bound it channel-wise from below and above. A kernel the table cannot cover is an error (a figure is
never invented). An estimate predictor uses the profile's roofline. ``source`` travels with every
figure the search, CSV and report show.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from itertools import pairwise
from typing import Any

from torch import nn

from edgeprune.errors import ProfileError
from edgeprune.latency.kernels import KernelKey, extract_kernels
from edgeprune.latency.profile import EstimateSpec, HardwareProfile
from edgeprune.latency.roofline import Roofline
from edgeprune.latency.store import choose_table
from edgeprune.latency.table import LatencyTable

OVERHEAD_KEY_OP = "overhead"
# where a figure comes from: a table of this device, a table of another device, a roofline
SOURCES = ("measured", "measured elsewhere", "estimate")


def overhead_key(precision: str) -> KernelKey:
    """The table entry holding the runtime's empty-call time (added once per network)."""
    return KernelKey(OVERHEAD_KEY_OP, 0, 0, 0, 0, 0, 0, 0, 0, "", precision)


def network_overhead_key(first: KernelKey, n_kernels: int = 0) -> KernelKey:
    """Entry of the unpruned network's ``T − K`` for the family whose input kernel is ``first`` (``cout`` = n)."""
    return KernelKey(
        OVERHEAD_KEY_OP,
        first.h,
        first.w,
        first.cin,
        0,
        n_kernels,
        first.k,
        first.stride,
        first.groups,
        f"net-{first.op}",
        first.precision,
    )


class LatencyPredictor:
    """Predicts batch-1 latency in ms; ``source`` is ``measured`` or ``estimate``."""

    def __init__(
        self,
        source: str,
        precision: str,
        *,
        table: LatencyTable | None = None,
        estimate: EstimateSpec | None = None,
        note: str = "",
    ):
        if source not in SOURCES:
            raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
        if (source != "estimate") != (table is not None):
            raise ValueError("a measured predictor needs a table, an estimate predictor none")
        if source == "estimate" and estimate is None:
            raise ValueError("an estimate predictor needs an estimate spec")
        self.source = source
        self.precision = precision
        self.note = note
        self._table = table
        self._cache: dict[KernelKey, float] = {}
        self._net_overhead: dict[KernelKey, list[tuple[int, float]]] = {}
        self._families: dict[tuple[Any, ...], list[tuple[tuple[int, int, int], int, float]]] = defaultdict(
            list
        )
        if table is not None:
            for k, e in table.entries.items():
                self._cache[k] = e.median_ms
                self._families[k.family].append((k.channels, k.macs, e.median_ms))
            ov = table.get(overhead_key(precision))
            if ov is None:
                raise ProfileError(
                    "latency table has no empty-call overhead entry; re-run `edgeprune profile`"
                )
            self.overhead_ms = ov.median_ms
            self._net_overhead = _net_overhead_curves(table, self.overhead_ms)
        else:
            assert estimate is not None
            self._roofline = Roofline(
                estimate.peak_gflops,
                estimate.bandwidth_gbps,
                estimate.compute_efficiency,
                estimate.memory_efficiency,
                estimate.kernel_overhead_ms,
                estimate.bytes_per_value,
            )
            self.overhead_ms = estimate.call_overhead_ms

    def covers_family(self, key: KernelKey) -> bool:
        """Whether a key's family is in the table (always true for an estimate)."""
        return self._table is None or key.family in self._families

    def uncovered(self, kernels: Sequence[KernelKey]) -> list[KernelKey]:
        """The distinct kernels among ``kernels`` this predictor cannot price (none for an estimate)."""
        out = []
        for k in dict.fromkeys(kernels):
            try:
                self.kernel_ms(k)
            except ProfileError:
                out.append(k)
        return out

    def kernel_ms(self, key: KernelKey) -> float:
        """One kernel's time (cached)."""
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        ms = self._interpolate(key) if self._table is not None else self._roofline.convs_ms(key.convs())
        self._cache[key] = ms
        return ms

    def _interpolate(self, key: KernelKey) -> float:
        members = self._families.get(key.family, [])
        ch, macs = key.channels, key.macs
        below = [(m, t) for c, m, t in members if all(a <= b for a, b in zip(c, ch, strict=True))]
        above = [(m, t) for c, m, t in members if all(a >= b for a, b in zip(c, ch, strict=True))]
        if not below or not above:
            hint = " --ranks" if key.ranks else ""
            raise ProfileError(
                f"the latency table has no entries around kernel {key}; "
                f"run `edgeprune profile --model MODEL{hint}` for this model"
            )
        lo_m, lo_t = max(below)
        hi_m, hi_t = min(above)
        if hi_m == lo_m:
            return min(lo_t, hi_t)
        f = (macs - lo_m) / (hi_m - lo_m)
        return lo_t + min(max(f, 0.0), 1.0) * (hi_t - lo_t)

    def predict_kernels_ms(self, kernels: Sequence[KernelKey]) -> float:
        """Latency of a network given its kernels (fast path: dictionary lookups)."""
        overhead = self.overhead_ms
        if kernels:
            curve = self._net_overhead.get(network_overhead_key(kernels[0]))
            if curve is not None:
                overhead = _on_curve(curve, len(kernels))
        return overhead + sum(self.kernel_ms(k) for k in kernels)

    def predict_ms(self, model: nn.Module, input_shape: tuple[int, int, int]) -> float:
        """Latency of ``model`` at batch 1 on the target (traces it once)."""
        return self.predict_kernels_ms(extract_kernels(model, input_shape, self.precision))


def _net_overhead_curves(table: LatencyTable, empty_ms: float) -> dict[KernelKey, list[tuple[int, float]]]:
    """Per family, the overhead of its unpruned networks by kernel count, anchored at (0, empty call).

    Networks of one family share their input kernel (ResNet-20 … ResNet-110 all start with the same
    stem), so each profiled depth is one point ``(n kernels, T − K)`` of the family's curve.
    """
    curves: dict[KernelKey, list[tuple[int, float]]] = defaultdict(lambda: [(0, empty_ms)])
    for k, e in table.entries.items():
        if k.op == OVERHEAD_KEY_OP and k.variant.startswith("net-") and k.cout > 0:
            curves[k.with_channels(k.cin, 0, 0)].append((k.cout, e.median_ms))
    return {key: sorted(points) for key, points in curves.items()}


def _on_curve(points: list[tuple[int, float]], m: int) -> float:
    """The overhead of an ``m``-kernel network: linear between the profiled depths that bound ``m``,
    proportional to ``m`` beyond the deepest one (never below zero)."""
    for (n0, r0), (n1, r1) in pairwise(points):
        if m <= n1:
            return max(r0 + (r1 - r0) * (m - n0) / (n1 - n0), 0.0)
    (n0, r0), (n1, r1) = points[0], points[-1]
    return max(r0 + (r1 - r0) * (m - n0) / (n1 - n0), 0.0)


def _estimate_predictor(profile: HardwareProfile, note: str) -> LatencyPredictor:
    if profile.estimate is None:
        raise ProfileError(f"profile {profile.name} has no estimate to fall back on")
    return LatencyPredictor("estimate", profile.precision, estimate=profile.estimate, note=note)


def predictor_for(profile: HardwareProfile, kernels: Sequence[KernelKey] | None = None) -> LatencyPredictor:
    """The predictor of ``profile`` on this machine (:func:`edgeprune.latency.store.choose_table`).

    ``source`` is ``measured`` (a table of this device), ``measured elsewhere`` (a table of another
    device: figures are labelled so) or ``estimate``. With ``kernels``, a table that cannot price all
    of them falls back to the profile's estimate (labelled ``estimate``) when it has one, else raises
    :class:`ProfileError` naming the command that measures them.
    """
    choice = choose_table(profile)
    if choice.table is None:
        if profile.estimate is not None:
            return _estimate_predictor(
                profile, f"{profile.name}: roofline estimate ({profile.estimate.method.split(',')[0]})"
            )
        raise ProfileError(f"{choice.note}; run `edgeprune profile --target {profile.name} --model MODEL`")
    pred = LatencyPredictor(
        choice.status, profile.precision, table=choice.table, note=f"{profile.name}: {choice.note}"
    )
    missing = pred.uncovered(kernels or ())
    if not missing:
        return pred
    if profile.estimate is not None:
        return _estimate_predictor(
            profile, f"{profile.name}: table does not cover {missing[0]}; roofline estimate"
        )
    raise ProfileError(
        f"the {profile.name} table does not cover kernel {missing[0]}; "
        f"run `edgeprune profile --target {profile.name} --model MODEL`{' --ranks' if missing[0].ranks else ''}"
    )
