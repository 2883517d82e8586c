"""Helpers shared by the search tests (a module, so test files can import them)."""

from pathlib import Path

from edgeprune.config import DataConfig, ModelConfig
from edgeprune.search.config import SearchConfig
from edgeprune.search.evaluator import EvaluatorSpec

_TARGET: list[str] = []  # the frozen host-cpu profile's YAML path, set by the conftest fixture


def _spec(weights: Path, **search) -> EvaluatorSpec:
    cfg = {"generations": 3, "population": 8, "val_size": 200, "calib_batches": 2, "batch_size": 64, **search}
    return EvaluatorSpec(
        ModelConfig(name="digits-resnet", weights=weights),
        DataConfig(source="digits"),
        _TARGET[0],
        SearchConfig(**cfg),
    )


def _front(result) -> list[tuple]:
    return [
        (
            result.candidates[i].plan.key(),
            result.candidates[i].metrics["error"],
            result.candidates[i].metrics["latency_ms"],
        )
        for i in result.front
    ]
