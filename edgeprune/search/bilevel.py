"""Bi-level search after Bi-CNN-D-C (Neural Computing and Applications 2022), with CEMBA-style migration.

The upper level evolves the architecture genes (blocks kept per stage, stage widths) with NSGA-III;
each upper individual is scored with a *partner* filter-pruning vector. For the ``lower_archs`` best
architectures found so far, a lower NSGA-III evolves the filter-pruning genes with the architecture
fixed. Every ``migration_interval`` generations the two levels exchange elites: the lower levels are
re-seeded on the current elite architectures with the pruning vectors of the archive's front members
(migrants), and the upper level's partner becomes the pruning vector of the archive's knee. Every
candidate of either level goes through the same evaluator and cache, and the front is taken over all
of them, so it is comparable with the flat search at equal evaluation budget.

::

    upper NSGA-III (arch genes, partner p*) --elite archs--> lower NSGA-III x K (pruning genes | arch)
            ^                                                            |
            +--------------- p* = knee's pruning genes <-- archive front-+
"""

from __future__ import annotations

import numpy as np
from pymoo.algorithms.moo.nsga3 import NSGA3
from pymoo.core.evaluator import Evaluator

from edgeprune.search.checkpoint import Checkpoint
from edgeprune.search.front import choose_picks, non_dominated
from edgeprune.search.nsga import BudgetSpent, ReplayGuard, initial_population, make_nsga3, population_state
from edgeprune.search.problem import PruningProblem, objective_matrix
from edgeprune.search.registries import STRATEGIES
from edgeprune.search.run import SearchContext, flat_nsga3


def _archive_front(ctx: SearchContext) -> tuple[np.ndarray, np.ndarray]:
    """Genomes of the archive's front (sorted by error) and the knee's row."""
    items = ctx.store.cache.items()
    from edgeprune.graph import PruningPlan

    genomes = np.array([ctx.space.encode(PruningPlan.from_json(p)) for _, p, _ in items])
    F = objective_matrix([m for _, _, m in items], ctx.cfg.objectives)
    nd = non_dominated(F)
    order = nd[np.argsort(F[nd, 0], kind="stable")]
    err = F[order, 0]
    lat = np.array([items[i][2]["latency_ms"] for i in order])
    knee = choose_picks(err, lat, F[order], ctx.cfg.fast_tolerance, ctx.cfg.knee_tolerance).knee
    return genomes[order], genomes[order[knee]]


def _lower_algorithm(
    ctx: SearchContext, arch: dict[int, int], migrants: np.ndarray, prune_idx: list[int], seed: int
) -> NSGA3:
    cfg = ctx.cfg
    rng = np.random.default_rng(seed)
    seeds = [tuple(int(v) for v in m[prune_idx]) for m in migrants]
    base = initial_population(ctx.space, cfg.lower_population, rng, free=prune_idx)
    rows: list[tuple[int, ...]] = []
    for r in seeds + [tuple(int(v) for v in b) for b in base]:
        if r not in rows:
            rows.append(r)
    X0 = np.array(rows[: cfg.lower_population], dtype=float)
    problem = PruningProblem(ctx.space, ctx.store, cfg.objectives, cfg.budget_ms, cfg.max_params, fixed=arch)
    algorithm = make_nsga3(len(cfg.objectives), cfg.lower_population, X0, seed)
    algorithm.setup(problem, termination=("n_gen", 10**9))
    return algorithm


@STRATEGIES.register("bilevel")
def bilevel(ctx: SearchContext) -> None:
    """Bi-level co-evolution of architecture and pruning genes (the module docstring describes it)."""
    cfg, space = ctx.cfg, ctx.space
    arch_idx = [i for i, g in enumerate(space.genes) if g.is_architecture]
    prune_idx = [i for i, g in enumerate(space.genes) if not g.is_architecture]
    if not arch_idx or not prune_idx:  # nothing to split: the flat search is the bi-level search
        flat_nsga3(ctx)
        return
    partner_genome = space.uniform(0.3)
    upper_problem = PruningProblem(
        space, ctx.store, cfg.objectives, cfg.budget_ms, cfg.max_params,
        fixed={i: int(partner_genome[i]) for i in prune_idx},
    )  # fmt: skip
    X0 = initial_population(space, cfg.population, np.random.default_rng(cfg.seed), free=arch_idx)
    upper = make_nsga3(len(cfg.objectives), cfg.population, X0, cfg.seed)
    upper.setup(upper_problem, termination=("n_gen", cfg.generations))
    lowers: list[NSGA3] = []
    guard = ReplayGuard(ctx.checkpoint)
    gen = 0
    while upper.has_next():
        gen += 1
        spent = False  # a batch hit the budget: the networks up to it were evaluated, the rest not
        try:
            upper.next()
            if gen == 1 or gen % cfg.migration_interval == 0:
                front, knee = _archive_front(ctx)
                archs: list[tuple[int, ...]] = []
                for g in front:
                    a = tuple(int(g[i]) for i in arch_idx)
                    if a not in archs:
                        archs.append(a)
                lowers = [
                    _lower_algorithm(
                        ctx, dict(zip(arch_idx, a, strict=True)), front, prune_idx, cfg.seed + 7919 * gen + k
                    )
                    for k, a in enumerate(archs[: cfg.lower_archs])
                ]
                # migration into the upper level: the knee's pruning genes become the partner
                upper_problem.fixed = {i: int(knee[i]) for i in prune_idx}
                if not ctx.budget_exhausted():
                    Evaluator().eval(upper_problem, upper.pop, skip_already_evaluated=False)
            for lower in lowers:  # the budget is checked between sub-populations, not only per generation
                if ctx.budget_exhausted():
                    break
                lower.next()
        except BudgetSpent:
            spent = True
        guard.check(gen, upper)
        X, F, rng = population_state(upper)
        ctx.record_generation(gen)
        ctx.checkpoints.save(
            Checkpoint(ctx.fingerprint, cfg.strategy, gen, len(ctx.store.seen), X, F, rng, list(ctx.history))
        )
        if ctx.on_generation is not None:
            ctx.on_generation(gen, cfg.generations)
        if spent or ctx.budget_exhausted():
            break
