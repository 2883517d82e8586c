"""Where evaluations run: in this process, in a pool of worker processes, or on a Ray cluster.

Every executor maps a list of plans to their metrics *in order*; evaluation is deterministic, so the
front does not depend on the executor or the number of workers. Executors are a registry
(``@register_executor``); the Ray one lives in :mod:`edgeprune.search.ray_executor`.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Protocol

from edgeprune.errors import ConfigError
from edgeprune.graph import PruningPlan
from edgeprune.search.evaluator import Evaluator, EvaluatorSpec


class Executor(Protocol):
    """Maps plans to metrics, in order."""

    def map(self, plans: Sequence[PruningPlan]) -> list[dict[str, float]]: ...

    def close(self) -> None: ...


ExecutorFactory = Callable[[EvaluatorSpec, int, "str | None"], Executor]
_EXECUTORS: dict[str, ExecutorFactory] = {}


def register_executor(name: str) -> Callable[[ExecutorFactory], ExecutorFactory]:
    """Register an executor factory ``(spec, workers, address) -> Executor``; duplicates are rejected."""

    def deco(factory: ExecutorFactory) -> ExecutorFactory:
        if name in _EXECUTORS:
            raise ValueError(f"executor {name!r} is already registered")
        _EXECUTORS[name] = factory
        return factory

    return deco


class LocalExecutor:
    """Evaluates in this process, one plan after another."""

    def __init__(self, evaluator: Evaluator):
        self.evaluator = evaluator

    def map(self, plans: Sequence[PruningPlan]) -> list[dict[str, float]]:
        return [self.evaluator.evaluate(p) for p in plans]

    def close(self) -> None:
        pass


_WORKER: Evaluator | None = None


def _init_worker(spec: dict[str, Any]) -> None:
    global _WORKER
    _WORKER = Evaluator(EvaluatorSpec.from_dict(spec))


def _evaluate_in_worker(plan_json: str) -> dict[str, float]:
    if _WORKER is None:  # pragma: no cover - initializer always ran
        raise RuntimeError("worker evaluator was not initialised")
    return _WORKER.evaluate(PruningPlan.from_json(plan_json))


class ProcessExecutor:
    """A pool of spawned worker processes, each holding its own evaluator."""

    def __init__(self, spec: EvaluatorSpec, workers: int):
        ctx = multiprocessing.get_context("spawn")
        self.pool = ProcessPoolExecutor(
            workers, mp_context=ctx, initializer=_init_worker, initargs=(spec.to_dict(),)
        )

    def map(self, plans: Sequence[PruningPlan]) -> list[dict[str, float]]:
        return list(self.pool.map(_evaluate_in_worker, [p.to_json() for p in plans]))

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


@register_executor("local")
def _local(spec: EvaluatorSpec, workers: int, address: str | None) -> Executor:
    if workers <= 1:
        return LocalExecutor(Evaluator(spec))
    return ProcessExecutor(spec, workers)


def make_executor(
    name: str,
    spec: EvaluatorSpec,
    workers: int,
    address: str | None = None,
    evaluator: Evaluator | None = None,
) -> Executor:
    """The executor ``name`` (``local`` or ``ray``) for ``spec``; reuses ``evaluator`` when local and serial."""
    if name == "ray":
        import edgeprune.search.ray_executor  # noqa: F401  (registers "ray")
    if name not in _EXECUTORS:
        raise ConfigError(f"unknown executor {name!r} (known: {', '.join(sorted(_EXECUTORS))})")
    if name == "local" and workers <= 1 and evaluator is not None:
        return LocalExecutor(evaluator)
    return _EXECUTORS[name](spec, workers, address)
