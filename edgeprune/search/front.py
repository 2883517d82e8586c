"""The Pareto front of evaluated candidates, its hypervolume, and the three picks (DeepPruningES).

Picks:

* ``accurate`` — the member with the lowest error;
* ``fast`` — the member with the lowest latency whose error is at most ``fast_tolerance`` above the
  accurate pick's, or at most the knee's error when the knee is further out: the picks are ordered,
  ``fast`` is never slower than ``knee``, which is never slower than ``accurate``;
* ``knee`` — among the members no slower than the accurate pick whose error is at most
  ``knee_tolerance`` above the accurate pick's, the one of maximum *expected marginal utility* (Branke et al., "Finding knees in multi-objective
  optimization", PPSN 2004) in (error, latency), normalised to [0, 1] over those members: for uniformly
  spread linear utility weights, a member's marginal utility is how much worse the best other member
  would be if it were removed; the knee maximises its average. The extreme members (the best on some
  objective) are not knee candidates when an interior member exists: the extremes' utility is inflated
  by near-axis weights, and they are the accurate / fast picks' territory anyway.

Why the tolerance: a search front reaches down to networks near chance accuracy, and such a front is
close to a straight line once normalised, so the EMU maximum can land anywhere along it — on ResNet-56
at approximate error 0.79 (58 % test accuracy after fine-tuning), on the transfer task at 26 %. The
tolerance keeps the knee where a deployer looks for one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from pymoo.indicators.hv import HV
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting
from pymoo.util.ref_dirs import get_reference_directions


def non_dominated(F: np.ndarray) -> np.ndarray:
    """Indices of the non-dominated rows of ``F`` (minimisation), duplicates kept once, in input order."""
    if len(F) == 0:
        return np.zeros(0, dtype=int)
    front = NonDominatedSorting().do(F, only_non_dominated_front=True)
    seen: set[tuple[float, ...]] = set()
    keep = []
    for i in sorted(int(j) for j in front):
        row = tuple(F[i])
        if row not in seen:
            seen.add(row)
            keep.append(i)
    return np.array(keep, dtype=int)


def hypervolume(F: np.ndarray, ref_point: Sequence[float]) -> float:
    """Hypervolume dominated by ``F`` up to ``ref_point`` (points beyond it count for nothing)."""
    ref = np.asarray(ref_point, dtype=float)
    inside = F[np.all(F < ref, axis=1)] if len(F) else F
    if len(inside) == 0:
        return 0.0
    return float(HV(ref_point=ref)(inside))


def normalise(F: np.ndarray) -> np.ndarray:
    """Scale each column to [0, 1] over ``F`` (constant columns become 0)."""
    lo, hi = F.min(axis=0), F.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    return (F - lo) / span


def expected_marginal_utility(F: np.ndarray, n_partitions: int = 40) -> np.ndarray:
    """Branke et al. (2004): the average marginal utility of each row under linear utilities."""
    n, m = F.shape
    if n <= 1:
        return np.zeros(n)
    N = normalise(F)
    weights = get_reference_directions("das-dennis", m, n_partitions=n_partitions if m <= 3 else 8)
    cost = N @ weights.T  # (n, w): lower is better
    order = np.argsort(cost, axis=0, kind="stable")
    best, second = order[0], order[1]
    gain = cost[second, np.arange(cost.shape[1])] - cost[best, np.arange(cost.shape[1])]
    emu = np.zeros(n)
    np.add.at(emu, best, gain)
    return emu / weights.shape[0]


@dataclass(frozen=True)
class Picks:
    """Row indices (into the front) of the three picks."""

    accurate: int
    knee: int
    fast: int

    def as_dict(self) -> dict[str, int]:
        return {"accurate": self.accurate, "knee": self.knee, "fast": self.fast}


def choose_picks(
    error: np.ndarray, latency: np.ndarray, F: np.ndarray, fast_tolerance: float, knee_tolerance: float = 1.0
) -> Picks:
    """The accurate, knee and fast members of a front (rows of ``F``: the knee's objectives)."""
    accurate = int(np.lexsort((latency, error))[0])
    knee = accurate
    near = np.flatnonzero(
        (error <= error[accurate] + knee_tolerance + 1e-12) & (latency <= latency[accurate])
    )
    if len(near) > 2:
        emu = expected_marginal_utility(F[near])
        extremes = set(int(i) for i in np.argmin(F[near], axis=0))
        interior = [i for i in range(len(near)) if i not in extremes]
        candidates = interior or list(range(len(near)))
        knee = int(near[max(candidates, key=lambda i: (emu[i], -i))])
    ok = np.flatnonzero(error <= max(error[accurate] + fast_tolerance, error[knee]) + 1e-12)
    fast = int(ok[np.lexsort((error[ok], latency[ok]))[0]])
    return Picks(accurate, knee, fast)
