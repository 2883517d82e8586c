"""The pymoo problem: integer genomes -> (objectives, constraints), through the cache and an executor."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from pymoo.core.problem import Problem

from edgeprune.graph import PruningPlan
from edgeprune.search.cache import EvaluationCache
from edgeprune.search.executor import Executor
from edgeprune.search.registries import OBJECTIVES
from edgeprune.space import SearchSpace


class CandidateStore:
    """Evaluates plans once: cache lookups first, the misses in one batch through the executor."""

    def __init__(
        self, cache: EvaluationCache, executor: Executor, on_evaluated: Callable[[int], None] | None = None
    ):
        self.cache = cache
        self.executor = executor
        self.on_evaluated = on_evaluated
        self.evaluations = 0  # fresh evaluations in this process (not cache hits)
        # keys in the order this search first asked for them: on a replayed (resumed) run the cache
        # already holds everything, and this is what tells how far the search had got at each generation
        self.seen: dict[str, None] = {}

    def metrics(self, plans: Sequence[PruningPlan]) -> list[dict[str, float]]:
        keys = [p.key() for p in plans]
        self.seen.update(dict.fromkeys(keys))
        missing: dict[str, PruningPlan] = {}
        for k, p in zip(keys, plans, strict=True):
            if k not in self.cache and k not in missing:
                missing[k] = p
        if missing:
            results = self.executor.map(list(missing.values()))
            for k, m in zip(missing, results, strict=True):
                self.cache.put(k, missing[k].to_json(), m)
            self.evaluations += len(missing)
            if self.on_evaluated is not None:
                self.on_evaluated(len(missing))
        out = []
        for k in keys:
            rec = self.cache.get(k)
            assert rec is not None  # just stored
            out.append(rec)
        return out


def objective_matrix(records: Sequence[dict[str, float]], objectives: Sequence[str]) -> np.ndarray:
    """Rows of objective values (all minimised) for evaluation records."""
    metrics = [OBJECTIVES.get(o).metric for o in objectives]
    return np.array([[float(r[m]) for m in metrics] for r in records], dtype=float)


def constraint_matrix(
    records: Sequence[dict[str, float]], budget_ms: float | None, max_params: int | None
) -> np.ndarray:
    """``g <= 0`` means feasible: latency under budget, params under the cap."""
    cols = []
    if budget_ms is not None:
        cols.append([r["latency_ms"] - budget_ms for r in records])
    if max_params is not None:
        cols.append([float(r["params"] - max_params) for r in records])
    return np.array(cols, dtype=float).T if cols else np.zeros((len(records), 0))


class PruningProblem(Problem):
    """Minimise the configured objectives over the genomes of ``space``."""

    def __init__(
        self,
        space: SearchSpace,
        store: CandidateStore,
        objectives: Sequence[str],
        budget_ms: float | None = None,
        max_params: int | None = None,
        fixed: dict[int, int] | None = None,
    ):
        n_constr = int(budget_ms is not None) + int(max_params is not None)
        self.space = space
        self.store = store
        self.objectives = tuple(objectives)
        self.budget_ms = budget_ms
        self.max_params = max_params
        # fixed genes (bi-level: the other level's choice); the free genes are the problem's variables
        self.fixed = dict(fixed or {})
        self.free = [i for i in range(space.n_var) if i not in self.fixed]
        ub = space.upper_bounds[self.free]
        super().__init__(
            n_var=len(self.free), n_obj=len(self.objectives), n_ieq_constr=n_constr, xl=0, xu=ub, vtype=int
        )

    def full_genome(self, x: np.ndarray) -> np.ndarray:
        """The whole genome for a vector of the free genes."""
        g = np.zeros(self.space.n_var, dtype=int)
        g[self.free] = np.rint(x).astype(int)
        for i, v in self.fixed.items():
            g[i] = v
        return self.space.repair(g)

    def _evaluate(self, X: np.ndarray, out: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        plans = [self.space.decode(self.full_genome(x)) for x in X]
        records = self.store.metrics(plans)
        out["F"] = objective_matrix(records, self.objectives)
        if self.n_ieq_constr:
            out["G"] = constraint_matrix(records, self.budget_ms, self.max_params)
