"""Flat NSGA-III (pymoo) over all genes at once, with per-generation checkpoints and replay resume."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from pymoo.algorithms.moo.nsga3 import NSGA3
from pymoo.core.algorithm import Algorithm
from pymoo.operators.crossover.sbx import SBX
from pymoo.operators.mutation.pm import PM
from pymoo.operators.repair.rounding import RoundingRepair
from pymoo.util.ref_dirs import get_reference_directions

from edgeprune.errors import SearchError
from edgeprune.search.checkpoint import Checkpoint, CheckpointStore
from edgeprune.space import SearchSpace

UNIFORM_RATIOS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)
DEPTH_RATIOS = (0.2, 0.4, 0.6)  # shallower seeds: dropping blocks is the cheapest latency on CPUs
# Distribution indices for integer genes (rounded reals): at the continuous defaults (SBX 15, PM 20) a
# mutation of a gene with 2-4 levels rounds back to its old value almost always (2 % of offspring
# changed on ResNet-56's space); at 3 (pymoo's integer examples) 19 % are.
ETA_CROSSOVER, ETA_MUTATION = 3.0, 3.0
GenerationCallback = Callable[[int, int], None]  # (generation, total generations)


def reference_directions(n_obj: int, population: int) -> np.ndarray:
    """Das-Dennis directions: the finest partition whose count does not exceed the population."""
    p = 1
    while len(get_reference_directions("das-dennis", n_obj, n_partitions=p + 1)) <= population:
        p += 1
    return get_reference_directions("das-dennis", n_obj, n_partitions=p)


def initial_population(
    space: SearchSpace, size: int, rng: np.random.Generator, free: list[int] | None = None
) -> np.ndarray:
    """The unpruned genome, uniform-ratio and shallower genomes, then random ones (distinct rows,
    ``size`` of them)."""
    idx = free if free is not None else list(range(space.n_var))
    rows: list[tuple[int, ...]] = []
    seeds = [
        space.unpruned(),
        *(space.uniform(r) for r in UNIFORM_RATIOS),
        *(space.shallow(r) for r in DEPTH_RATIOS),
    ]
    for g in seeds:
        t = tuple(int(v) for v in g[idx])
        if t not in rows:
            rows.append(t)
    ub = space.upper_bounds[idx]
    tries = 0
    while len(rows) < size and tries < 50 * size:
        t = tuple(int(v) for v in rng.integers(0, ub + 1))
        tries += 1
        if t not in rows:
            rows.append(t)
    while len(rows) < size:  # tiny spaces: allow repeats rather than a short population
        rows.append(rows[len(rows) % max(1, len(rows))])
    return np.array(rows[:size], dtype=float)


def make_nsga3(n_obj: int, population: int, X0: np.ndarray, seed: int) -> NSGA3:
    """NSGA-III for integer genes (SBX + polynomial mutation on reals, rounded), seeded."""
    return NSGA3(
        ref_dirs=reference_directions(n_obj, population),
        pop_size=population,
        sampling=X0,
        crossover=SBX(prob=0.9, eta=ETA_CROSSOVER, vtype=float, repair=RoundingRepair()),
        mutation=PM(eta=ETA_MUTATION, vtype=float, repair=RoundingRepair()),
        eliminate_duplicates=True,
        seed=seed,
    )


class BudgetSpent(Exception):
    """Raised by the candidate store when a batch asks for more new networks than ``max_evals`` leaves:
    the networks up to the budget are evaluated (in the batch's order), then the strategy stops."""


@dataclass
class ReplayGuard:
    """Checks that a resumed run replays exactly to its last checkpoint."""

    checkpoint: Checkpoint | None

    def check(self, generation: int, algorithm: Algorithm) -> None:
        ck = self.checkpoint
        if ck is None or generation != ck.generation:
            return
        X = algorithm.pop.get("X").astype(int).tolist()
        if X != ck.population_x or algorithm.random_state.bit_generator.state != ck.rng_state:
            raise SearchError(
                "resuming did not reproduce the checkpointed population; the run cannot be resumed"
            )


def population_state(algorithm: Algorithm) -> tuple[list[list[int]], list[list[float]], dict]:
    """(genomes, objectives, rng state) of an algorithm's population as plain data."""
    X = algorithm.pop.get("X").astype(int).tolist()
    F = algorithm.pop.get("F").astype(float).tolist()
    return X, F, algorithm.random_state.bit_generator.state


def run_generations(
    algorithm: Algorithm,
    generations: int,
    store: CheckpointStore,
    checkpoint: Checkpoint | None,
    make_checkpoint: Callable[[int, Algorithm], Checkpoint],
    on_generation: GenerationCallback | None = None,
    budget_exhausted: Callable[[], bool] | None = None,
) -> None:
    """Drive ``algorithm`` generation by generation, writing a checkpoint after each.

    Stops after the generation that spends the evaluation budget: one that ends exactly on it, or one
    cut short by :class:`BudgetSpent` (its checkpoint then holds the previous population; a resumed run
    replays to the same cut, since the cache and the seeded algorithm give the same batches).
    """
    guard = ReplayGuard(checkpoint)
    gen = 0
    while algorithm.has_next():
        spent = False
        try:
            algorithm.next()
        except BudgetSpent:
            spent = True
        gen += 1  # pymoo's own n_gen counts the initialisation differently; ours is 1..generations
        guard.check(gen, algorithm)
        store.save(make_checkpoint(gen, algorithm))
        if on_generation is not None:
            on_generation(gen, generations)
        if spent or (budget_exhausted is not None and budget_exhausted()):
            break
