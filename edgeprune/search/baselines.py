"""Baselines run through the same evaluator and cache as the search, for comparisons at equal budget.

* uniform L1 filter pruning at ratios 0.1 ... 0.7 (every channel gene pruned by the same ratio);
* random search: uniformly random genomes;
* "NSGA-III with FLOPs in place of latency" is the flat search with objectives
  ``error, params, macs`` (a :class:`~edgeprune.search.config.SearchConfig` away, no code here).
"""

from __future__ import annotations

import numpy as np

from edgeprune.search.problem import CandidateStore
from edgeprune.space import SearchSpace

UNIFORM_RATIOS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)


def uniform_baseline(
    space: SearchSpace, store: CandidateStore, ratios: tuple[float, ...] = UNIFORM_RATIOS
) -> list[dict[str, float]]:
    """Metrics of uniform-ratio pruning (depth kept), one record per ratio."""
    plans = [space.decode(space.uniform(r)) for r in ratios]
    return store.metrics(plans)


def random_search(
    space: SearchSpace, store: CandidateStore, n_evals: int, seed: int
) -> list[dict[str, float]]:
    """Metrics of ``n_evals`` distinct random networks (the unpruned one first, as in every search)."""
    rng = np.random.default_rng(seed)
    seen: dict[str, None] = {space.decode(space.unpruned()).key(): None}
    plans = [space.decode(space.unpruned())]
    tries = 0
    while len(plans) < n_evals and tries < 100 * n_evals:
        plan = space.decode(space.random(rng, 1)[0])
        tries += 1
        if plan.key() not in seen:
            seen[plan.key()] = None
            plans.append(plan)
    return store.metrics(plans)
