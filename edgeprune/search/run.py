"""Run a search: build the space, the cache and the executor, drive a strategy, gather the result.

Strategies are a registry (``@STRATEGIES.register("name")``, :mod:`edgeprune.search.registries`):
``nsga3`` (flat, the default, :func:`flat_nsga3`) and ``bilevel`` (Bi-CNN-D-C's co-evolution,
:mod:`edgeprune.search.bilevel`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pymoo.core.algorithm import Algorithm

from edgeprune import __version__
from edgeprune.errors import ConfigError
from edgeprune.graph import PruningPlan
from edgeprune.search.cache import EvaluationCache
from edgeprune.search.checkpoint import Checkpoint, CheckpointStore, fingerprint
from edgeprune.search.config import SearchConfig
from edgeprune.search.evaluator import Evaluator, EvaluatorSpec
from edgeprune.search.executor import Executor, make_executor
from edgeprune.search.nsga import (
    BudgetSpent,
    GenerationCallback,
    initial_population,
    make_nsga3,
    population_state,
    run_generations,
)
from edgeprune.search.problem import CandidateStore, PruningProblem
from edgeprune.search.registries import STRATEGIES
from edgeprune.search.result import SearchResult, build_result, progress_hypervolume, reference_metrics
from edgeprune.space import SearchSpace


def evaluation_limit(cfg: SearchConfig) -> int | None:
    """The search's evaluation budget: ``max_evals``; for the bi-level search population x generations
    when unset (so it is compared with the flat search at equal budget); None: no budget."""
    if cfg.max_evals is None and cfg.strategy == "bilevel":
        return cfg.population * cfg.generations
    return cfg.max_evals


class BudgetedStore(CandidateStore):
    """A :class:`CandidateStore` that never evaluates more than ``limit`` distinct networks.

    The count is ``len(seen)``: distinct networks this search has asked for, the unpruned reference
    included; asking again for one already seen costs nothing (nor does a resumed run replaying against
    the cache, since ``seen`` is rebuilt in the same order). A batch with more new networks than the
    budget leaves gets the first of them (in batch order) evaluated, then raises :class:`BudgetSpent`.
    """

    def __init__(
        self,
        cache: EvaluationCache,
        executor: Executor,
        on_evaluated: Callable[[int], None] | None = None,
        limit: int | None = None,
    ):
        super().__init__(cache, executor, on_evaluated)
        self.limit = limit

    def metrics(self, plans: Sequence[PruningPlan]) -> list[dict[str, float]]:
        if self.limit is not None:
            new = list(dict.fromkeys(k for p in plans if (k := p.key()) not in self.seen))
            room = max(0, self.limit - len(self.seen))
            if len(new) > room:
                allowed = set(new[:room])
                first: dict[str, PruningPlan] = {}
                for p in plans:
                    if p.key() in allowed:
                        first.setdefault(p.key(), p)
                if first:
                    super().metrics(list(first.values()))
                raise BudgetSpent(f"max_evals={self.limit} reached")
        return super().metrics(plans)


@dataclass
class SearchContext:
    """What every strategy works with."""

    cfg: SearchConfig
    space: SearchSpace
    store: CandidateStore
    checkpoints: CheckpointStore
    checkpoint: Checkpoint | None
    fingerprint: str
    history: list[dict[str, float]]
    on_generation: GenerationCallback | None

    def budget_exhausted(self) -> bool:
        """Whether the evaluation budget (:func:`evaluation_limit`) is spent."""
        limit = evaluation_limit(self.cfg)
        return limit is not None and len(self.store.seen) >= limit

    def record_generation(self, gen: int) -> dict[str, float]:
        """Append (or, on replay, rewrite) generation ``gen``'s history entry."""
        cache = self.store.cache
        ref = reference_metrics(cache, self.space)
        records = [m for k in self.store.seen if (m := cache.get(k)) is not None]
        entry = {
            "generation": gen,
            "n_evals": len(records),
            "hypervolume": round(progress_hypervolume(records, ref), 6),
            "best_error": min(r["error"] for r in records),
            "min_latency_ms": min(r["latency_ms"] for r in records),
        }
        del self.history[gen - 1 :]
        self.history.append(entry)
        return entry

    def make_checkpoint(self, gen: int, algorithm: Algorithm) -> Checkpoint:
        X, F, rng = population_state(algorithm)
        self.record_generation(gen)
        return Checkpoint(
            self.fingerprint, self.cfg.strategy, gen, len(self.store.seen), X, F, rng, list(self.history)
        )


Strategy = Callable[[SearchContext], None]
"""What ``@STRATEGIES.register("name")`` decorates: runs a search on the context."""


@STRATEGIES.register("nsga3")
def flat_nsga3(ctx: SearchContext) -> None:
    """The flat search: one NSGA-III over every gene (the default strategy)."""
    cfg = ctx.cfg
    problem = PruningProblem(ctx.space, ctx.store, cfg.objectives, cfg.budget_ms, cfg.max_params)
    X0 = initial_population(ctx.space, cfg.population, np.random.default_rng(cfg.seed))
    algorithm = make_nsga3(len(cfg.objectives), cfg.population, X0, cfg.seed)
    algorithm.setup(problem, termination=("n_gen", cfg.generations))
    run_generations(
        algorithm, cfg.generations, ctx.checkpoints, ctx.checkpoint, ctx.make_checkpoint, ctx.on_generation,
        ctx.budget_exhausted,
    )  # fmt: skip


def search_fingerprint(spec: EvaluatorSpec, space: SearchSpace) -> str:
    """What a checkpoint must match: every input that changes the front (not workers or executor)."""
    d = spec.to_dict()
    for k in ("workers", "executor", "ray_address"):
        d["search"].pop(k, None)
    if not d["data"].get("extra_train"):  # added later: runs without it keep their fingerprint
        d["data"].pop("extra_train", None)
    return fingerprint({"spec": d, "genes": [g.name for g in space.genes], "version": __version__})


def build_space(evaluator: Evaluator) -> SearchSpace:
    """The search space the evaluator's config asks for, at its target's channel multiple."""
    cfg = evaluator.spec.search
    return SearchSpace.from_analysis(
        evaluator.analysis, evaluator.profile.channel_multiple, criterion=cfg.criterion,
        depth_genes=cfg.depth_genes, width_genes=cfg.width_genes, rank_genes=cfg.rank_genes,
    )  # fmt: skip


def run_search(
    spec: EvaluatorSpec,
    search_dir: Path,
    *,
    resume: bool = False,
    evaluator: Evaluator | None = None,
    on_generation: Callable[[int, int, dict[str, float]], None] | None = None,
    on_evaluated: Callable[[int], None] | None = None,
    executor: Executor | None = None,
) -> SearchResult:
    """Search the front for ``spec``; checkpoints and the cache go to ``search_dir``.

    ``on_generation(gen, total, record)`` is called after each generation's checkpoint with that
    generation's history record (``n_evals``, ``hypervolume``, ``best_error``, ``min_latency_ms``).
    ``executor`` overrides the one ``spec`` names (the caller then owns it and closes it).
    """
    cfg = spec.search
    evaluator = evaluator or Evaluator(spec)
    space = build_space(evaluator)
    checkpoints = CheckpointStore(search_dir)
    fp = search_fingerprint(spec, space)
    checkpoint = checkpoints.load(fp) if resume else None
    if not resume and (checkpoints.path.exists() or checkpoints.cache_path.exists()):
        raise ConfigError(f"{search_dir} already holds a search; resume it or use a new directory")
    cache = EvaluationCache(checkpoints.cache_path)
    owned = executor is None
    runner = executor or make_executor(cfg.executor, spec, cfg.workers, cfg.ray_address, evaluator=evaluator)
    try:
        store = BudgetedStore(cache, runner, on_evaluated, evaluation_limit(cfg))
        store.metrics([space.decode(space.unpruned())])  # the reference point of every figure
        ctx = SearchContext(cfg, space, store, checkpoints, checkpoint, fp, [], None)
        if on_generation is not None:  # a strategy calls back once it has recorded the generation
            report = on_generation
            ctx.on_generation = lambda gen, total: report(gen, total, ctx.history[-1])
        strategy: Strategy = STRATEGIES.get(cfg.strategy)
        strategy(ctx)
    finally:
        if owned:
            runner.close()
        cache.close()
    return build_result(
        cfg.strategy, space, cache, cfg.objectives, cfg.budget_ms, cfg.max_params, cfg.fast_tolerance,
        cfg.knee_tolerance, ctx.history, evaluator.latency_source,
    )  # fmt: skip
