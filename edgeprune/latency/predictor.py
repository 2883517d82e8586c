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
from dataclasses import dataclass, replace
from itertools import pairwise, product
from typing import Any

import numpy as np
from torch import nn

from edgeprune.errors import ProfileError
from edgeprune.latency.kernels import KernelKey, extract_kernels
from edgeprune.latency.profile import EstimateSpec, HardwareProfile
from edgeprune.latency.roofline import Roofline
from edgeprune.latency.store import choose_table
from edgeprune.latency.table import OVERHEAD_KEY_OP, RESIDUAL_PREFIX, LatencyTable, is_network_residual

# where a figure comes from: a table of this device, a table of another device, a roofline
SOURCES = ("measured", "measured elsewhere", "estimate")


def overhead_key(precision: str) -> KernelKey:
    """The table entry holding the runtime's empty-call time (added once per network)."""
    return KernelKey(OVERHEAD_KEY_OP, 0, 0, 0, 0, 0, 0, 0, 0, "", precision)


def network_overhead_key(first: KernelKey, n_kernels: int = 0, weights: int = 0) -> KernelKey:
    """Entry of a profiled network's ``T − K`` for the family whose input kernel is ``first``
    (``cout`` = its kernel count, ``mid`` = the weight values its kernels read)."""
    return KernelKey(
        OVERHEAD_KEY_OP,
        first.h,
        first.w,
        first.cin,
        weights,
        n_kernels,
        first.k,
        first.stride,
        first.groups,
        RESIDUAL_PREFIX + first.op,
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
        self._net_overhead: dict[KernelKey, OverheadModel] = {}
        self._families: dict[tuple[Any, ...], list[tuple[tuple[int, int, int], int, float]]] = defaultdict(
            list
        )
        if table is not None:
            for k, e in table.entries.items():
                self._cache[k] = e.median_ms
                self._families[k.family].append((k.channels, k.macs, e.median_ms))
            ov = table.get(overhead_key(precision))
            if ov is None:
                flag = "" if precision == "fp32" else f" --precision {precision}"
                raise ProfileError(
                    f"the latency table has no {precision} empty-call overhead entry (no {precision} "
                    f"kernels measured); run `edgeprune profile --target TARGET --model MODEL{flag}`"
                )
            self.overhead_ms = ov.median_ms
            self._net_overhead = _net_overhead_models(table, self.overhead_ms, precision)
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
        grid = self._on_grid(key)
        if grid is not None:
            return grid
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

    def _on_grid(self, key: KernelKey) -> float | None:
        """Multilinear interpolation in channel counts between the measured configurations that bracket
        ``key`` in every channel dimension (a 1x1 conv's time is bilinear in its in/out channels), or
        None when a corner of that box was not measured."""
        members = self._families.get(key.family, [])
        times = {c: t for c, _, t in members}
        box = []
        for d, v in enumerate(key.channels):
            values = {c[d] for c in times}
            lo = max((x for x in values if x <= v), default=None)
            hi = min((x for x in values if x >= v), default=None)
            if lo is None or hi is None:
                return None
            box.append((lo, hi, 0.0 if hi == lo else (v - lo) / (hi - lo)))
        total = 0.0
        for corner in product((0, 1), repeat=len(box)):
            ch = tuple(b[1] if c else b[0] for b, c in zip(box, corner, strict=True))
            t = times.get(ch)  # type: ignore[arg-type]
            if t is None:
                return None
            w = 1.0
            for (_, _, f), c in zip(box, corner, strict=True):
                w *= f if c else 1.0 - f
            total += w * t
        return total

    def predict_kernels_ms(self, kernels: Sequence[KernelKey]) -> float:
        """Latency of a network given its kernels (fast path: dictionary lookups)."""
        k_ms = sum(self.kernel_ms(k) for k in kernels)
        model = self._net_overhead.get(network_overhead_key(kernels[0])) if kernels else None
        if model is None:
            return self.overhead_ms + k_ms
        return k_ms + model.at(len(kernels), sum(k.weights for k in kernels), k_ms)

    def predict_ms(self, model: nn.Module, input_shape: tuple[int, int, int]) -> float:
        """Latency of ``model`` at batch 1 on the target (traces it once)."""
        return self.predict_kernels_ms(extract_kernels(model, input_shape, self.precision))


@dataclass(frozen=True)
class OverheadModel:
    """What a family's kernels timed alone miss in a whole network, as a function of the network's
    kernel count ``n``, the weight values ``W`` it reads and its kernel sum ``K``.

    With four or more profiled networks of the family (the unpruned ones and the calibration networks
    ``edgeprune profile`` draws from the search space), ``T − K = e + α·n + β·max(0, W − W₀) + γ·K`` is
    fitted by least squares (``e`` the empty call). Measured: kernels timed alone keep their weights in
    cache while a whole network streams all of them (``β``: a MobileNetV2 pruned in width keeps its
    kernel count but reads far fewer weights); each kernel adds dispatch and thread-pool hand-offs
    (``α·n``); and with several threads, small kernels cost less in a network than alone in context
    (``γ < 0``). ``W₀`` is where streaming the weights starts to cost: the weights that still fit in
    the CPU's caches. On a 2-core Intel Xeon, MobileNetV2 networks at 3×32×32 paid about 0.008 ms over
    their kernels up to ~250k weights and then rose steeply (0.02 ms at 330k, 0.13 ms at 1M), and a line
    through all of them priced the networks between 100k and 450k weights 20–50 % slow; ``W₀`` is chosen
    among the profiled networks' ``W`` (and 0, a plain line) by the same least squares. With fewer
    points, a curve through the profiled networks along ``W`` (or ``n``, for tables that do not record
    ``W``).
    """

    empty_ms: float
    axis: str  # "fit" | "weights" | "kernels"
    points: tuple[tuple[int, int, float, float], ...]  # (n, W, K, T − K) of the profiled networks
    coef: tuple[float, float, float] = (0.0, 0.0, 0.0)  # α, β, γ
    weights_free: int = 0  # W₀: weights read at no cost beyond the kernels'

    def at(self, n: int, weights: int, kernels_ms: float) -> float:
        """``T − K`` of a network, never below −½K (a network is never priced under half its kernels)."""
        if self.axis == "fit":
            a, b, g = self.coef
            residual = self.empty_ms + a * n + b * max(0, weights - self.weights_free) + g * kernels_ms
        else:
            x = weights if self.axis == "weights" else n
            curve = sorted(
                {(0, self.empty_ms), *((p[1] if self.axis == "weights" else p[0], p[3]) for p in self.points)}
            )
            residual = _on_curve(curve, x)
        return max(residual, -0.5 * kernels_ms)


def _lstsq_overhead(
    empty_ms: float, points: list[tuple[int, int, float, float]], weights_free: int
) -> tuple[tuple[float, float, float], float]:
    """``(α, β, γ)`` of ``T − K − e = α·n + β·max(0, W − W₀) + γ·K`` by least squares on relative error,
    and the sum of squared relative residuals."""
    a = np.array([[n, max(0, w - weights_free), k] for n, w, k, _ in points], dtype=np.float64)
    y = np.array([r - empty_ms for _, _, _, r in points])
    rel = 1.0 / np.array([max(k + r, 1e-9) for _, _, k, r in points])  # relative error
    scale = np.maximum(a.max(axis=0), 1e-12)
    coef = np.linalg.lstsq(a / scale * rel[:, None], y * rel, rcond=None)[0] / scale
    err = float(np.sum(((a @ coef - y) * rel) ** 2))
    return (float(coef[0]), float(coef[1]), float(coef[2])), err


def _fit_overhead(empty_ms: float, points: list[tuple[int, int, float, float]]) -> OverheadModel:
    with_w = [p for p in points if p[1] > 0]
    if len({(n, w) for n, w, _, _ in with_w}) >= 4:
        ws = sorted({w for _, w, _, _ in with_w})
        # a knee needs two distinct W beyond it to give β a slope; 0 is the plain line
        fits = [(*_lstsq_overhead(empty_ms, with_w, w0), w0) for w0 in [0, *ws[:-2]]]
        coef, _, w0 = min(fits, key=lambda f: f[1])
        return OverheadModel(empty_ms, "fit", tuple(with_w), coef, w0)
    if with_w:
        return OverheadModel(empty_ms, "weights", tuple(with_w))
    return OverheadModel(empty_ms, "kernels", tuple(points))


def _net_overhead_models(
    table: LatencyTable, empty_ms: float, precision: str
) -> dict[KernelKey, OverheadModel]:
    """Per family (networks of one family share their input kernel: ResNet-20 … ResNet-110 all start
    with the same stem), the :class:`OverheadModel` of its profiled networks at ``precision``."""
    points: dict[KernelKey, list[tuple[int, int, float, float]]] = defaultdict(list)
    for k, e in table.entries.items():
        if is_network_residual(k) and k.cout > 0 and k.precision == precision:
            total = table.get(replace(k, variant="total-" + k.variant.removeprefix(RESIDUAL_PREFIX)))
            kernels_ms = total.median_ms - e.median_ms if total is not None else 0.0
            points[k.with_channels(k.cin, 0, 0)].append((k.cout, k.mid, kernels_ms, e.median_ms))
    return {family: _fit_overhead(empty_ms, pts) for family, pts in points.items()}


def _on_curve(points: list[tuple[int, float]], m: int) -> float:
    """The overhead of an ``m``-kernel network: linear between the profiled depths that bound ``m``,
    proportional to ``m`` beyond the deepest one (below zero where the profiled networks ran faster
    than their kernels timed alone; the caller bounds it)."""
    for (n0, r0), (n1, r1) in pairwise(points):
        if m <= n1:
            return r0 + (r1 - r0) * (m - n0) / (n1 - n0)
    (n0, r0), (n1, r1) = points[0], points[-1]
    return r0 + (r1 - r0) * (m - n0) / (n1 - n0)


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
        raise ProfileError(
            f"{choice.note}; run `edgeprune profile --target {profile.name} --model MODEL{profile.precision_flag}`"
        )
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
        f"run `edgeprune profile --target {profile.name} --model MODEL{profile.precision_flag}"
        f"{' --ranks' if missing[0].ranks else ''}`"
    )
