"""What a search returns: every evaluated candidate, the front over them, the picks and the history."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from edgeprune.errors import SearchError
from edgeprune.graph import PruningPlan
from edgeprune.search.cache import EvaluationCache
from edgeprune.search.front import Picks, choose_picks, hypervolume, non_dominated
from edgeprune.search.problem import constraint_matrix, objective_matrix
from edgeprune.space import SearchSpace


@dataclass(frozen=True)
class Candidate:
    """One evaluated network."""

    plan: PruningPlan
    genome: tuple[int, ...]
    metrics: dict[str, float]


@dataclass(frozen=True)
class SearchResult:
    """The outcome of a search (flat or bi-level)."""

    strategy: str
    objectives: tuple[str, ...]
    candidates: tuple[Candidate, ...]  # every evaluated candidate, in evaluation order
    front: tuple[int, ...]  # indices into candidates: feasible, non-dominated, sorted by error
    picks: dict[str, int]  # pick name -> index into candidates
    history: tuple[dict[str, float], ...]
    n_evals: int
    latency_source: str

    def front_candidates(self) -> list[Candidate]:
        return [self.candidates[i] for i in self.front]


def reference_metrics(cache: EvaluationCache, space: SearchSpace) -> dict[str, float]:
    """Metrics of the unpruned network (always evaluated first)."""
    rec = cache.get(space.decode(space.unpruned()).key())
    if rec is None:
        raise SearchError("the unpruned network was not evaluated")
    return rec


def progress_hypervolume(records: Sequence[dict[str, float]], ref: dict[str, float]) -> float:
    """Hypervolume of (error, latency / unpruned latency) over ``records``, reference point (1, 1.1)."""
    if not records:
        return 0.0
    F = np.array([[r["error"], r["latency_ms"] / ref["latency_ms"]] for r in records])
    return hypervolume(F[non_dominated(F)], (1.0, 1.1))


def build_result(
    strategy: str,
    space: SearchSpace,
    cache: EvaluationCache,
    objectives: tuple[str, ...],
    budget_ms: float | None,
    max_params: int | None,
    fast_tolerance: float,
    knee_tolerance: float,
    history: Sequence[dict[str, float]],
    latency_source: str,
) -> SearchResult:
    """Gather every evaluated candidate of the run, its feasible front and the picks."""
    candidates = []
    for _key, plan_json, metrics in cache.items():
        plan = PruningPlan.from_json(plan_json)
        candidates.append(Candidate(plan, tuple(int(v) for v in space.encode(plan)), metrics))
    records = [c.metrics for c in candidates]
    G = constraint_matrix(records, budget_ms, max_params)
    feasible = np.flatnonzero(np.all(G <= 0, axis=1)) if G.size else np.arange(len(records))
    if len(feasible) == 0:
        raise SearchError("no evaluated candidate meets the latency budget / parameter cap")
    F = objective_matrix([records[i] for i in feasible], objectives)
    nd = feasible[non_dominated(F)]
    nd = np.array(
        sorted(nd, key=lambda i: (records[i]["error"], records[i]["latency_ms"], candidates[i].plan.key()))
    )
    err = np.array([records[i]["error"] for i in nd])
    lat = np.array([records[i]["latency_ms"] for i in nd])
    # the knee is the trade-off a deployer makes: error against latency on the target
    picks: Picks = choose_picks(err, lat, np.column_stack([err, lat]), fast_tolerance, knee_tolerance)
    return SearchResult(
        strategy=strategy,
        objectives=objectives,
        candidates=tuple(candidates),
        front=tuple(int(i) for i in nd),
        picks={name: int(nd[row]) for name, row in picks.as_dict().items()},
        history=tuple(history),
        n_evals=len(candidates),
        latency_source=latency_source,
    )
