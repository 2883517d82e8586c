"""Where evaluations run: in this process, in a pool of worker processes, or on a Ray cluster.

Every executor maps a list of plans to their metrics *in order*; evaluation is deterministic, so the
front does not depend on the executor or the number of workers. Executors are a registry
(``@EXECUTORS.register("name")``, :mod:`edgeprune.search.registries`): ``local`` here, ``ray`` in
:mod:`edgeprune.search.ray_executor`.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Protocol

from edgeprune.graph import PruningPlan
from edgeprune.search.evaluator import Evaluator, EvaluatorSpec
from edgeprune.search.registries import EXECUTORS


class Executor(Protocol):
    """Maps plans to metrics, in order."""

    def map(self, plans: Sequence[PruningPlan]) -> list[dict[str, float]]: ...

    def close(self) -> None: ...


ExecutorFactory = Callable[[EvaluatorSpec, int, "str | None"], Executor]
"""What ``@EXECUTORS.register("name")`` decorates: ``(spec, workers, address) -> Executor``."""


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


@EXECUTORS.register("local")
def local_executor(spec: EvaluatorSpec, workers: int, address: str | None) -> Executor:
    """In this process (``workers`` <= 1) or in a pool of ``workers`` spawned processes."""
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
    """The executor registered as ``name`` (``local``, ``ray``...) for ``spec``; reuses ``evaluator`` when
    local and serial. An unknown name is a :class:`~edgeprune.errors.ConfigError`."""
    factory: ExecutorFactory = EXECUTORS.get(name)
    if factory is local_executor and workers <= 1 and evaluator is not None:
        return LocalExecutor(evaluator)
    return factory(spec, workers, address)
