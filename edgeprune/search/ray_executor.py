"""Evaluations on a Ray cluster (optional extra ``edgeprune[ray]``): ``--executor ray --address ADDR``.

Each Ray actor rebuilds the evaluator from the same plain-data spec as a local worker process, so the
front is the same as the local executor's. The model weights and data paths in the spec must be
readable on the cluster's nodes (a shared filesystem, or a single-node cluster).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from edgeprune.errors import RuntimeUnavailableError
from edgeprune.graph import PruningPlan
from edgeprune.search.evaluator import Evaluator, EvaluatorSpec
from edgeprune.search.executor import Executor
from edgeprune.search.registries import EXECUTORS


class _EvaluatorActor:
    def __init__(self, spec: dict[str, Any]):
        self.evaluator = Evaluator(EvaluatorSpec.from_dict(spec))

    def evaluate(self, plan_json: str) -> dict[str, float]:
        return self.evaluator.evaluate(PruningPlan.from_json(plan_json))


class RayExecutor:
    """A pool of evaluator actors on an existing Ray cluster (or a local one when no address is given)."""

    def __init__(self, spec: EvaluatorSpec, workers: int, address: str | None):
        try:
            import ray
            from ray.util import ActorPool
        except ImportError:
            raise RuntimeUnavailableError("Ray is not installed: pip install 'edgeprune[ray]'") from None
        self._ray = ray
        self._started = False
        if not ray.is_initialized():
            try:
                ray.init(address=address, include_dashboard=False, log_to_driver=False)
            except (ConnectionError, RuntimeError, ValueError) as err:
                raise RuntimeUnavailableError(
                    f"cannot connect to the Ray cluster at {address}: {err}"
                ) from None
            self._started = True
        actor = ray.remote(num_cpus=1)(_EvaluatorActor)
        self._actors: list[Any] = [actor.remote(spec.to_dict()) for _ in range(max(1, workers))]
        self._pool = ActorPool(self._actors)

    def map(self, plans: Sequence[PruningPlan]) -> list[dict[str, float]]:
        return list(self._pool.map(lambda a, p: a.evaluate.remote(p), [p.to_json() for p in plans]))

    def close(self) -> None:
        for a in self._actors:
            self._ray.kill(a)
        self._actors = []
        if self._started:
            self._ray.shutdown()


@EXECUTORS.register("ray")
def ray_executor(spec: EvaluatorSpec, workers: int, address: str | None) -> Executor:
    """A :class:`RayExecutor` of ``workers`` actors on the cluster at ``address``."""
    return RayExecutor(spec, workers, address)
