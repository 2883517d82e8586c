"""The search stage's config.

Strategy, executor and objective names are checked against their registries
(:mod:`edgeprune.search.registries`), so a newly registered one is accepted without touching this file.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from edgeprune.config import FrozenConfig
from edgeprune.search.registries import EXECUTORS, OBJECTIVES, STRATEGIES


class SearchConfig(FrozenConfig):
    """How the front is searched and how candidates are scored."""

    kind: ClassVar[str] = "search"
    strategy: str = "nsga3"  # a name in STRATEGIES
    objectives: tuple[str, ...] = ("error", "params", "latency")
    generations: int = Field(default=10, ge=1, le=10_000)
    population: int = Field(default=24, ge=4, le=10_000)
    # Evaluation budget, held by every strategy: at most this many *distinct* networks are evaluated
    # (the unpruned reference counts as one; asking again for a network already evaluated, e.g. a
    # duplicate offspring or a replay on resume, does not count). The generation that reaches it is
    # cut short at exactly ``max_evals`` and is the last. None: no budget beyond generations x
    # population, except for the bi-level search, which defaults to population x generations so it
    # is compared with the flat one at equal budget.
    max_evals: int | None = Field(default=None, ge=1)
    seed: int = 0
    workers: int = Field(default=1, ge=1, le=256)
    executor: str = "local"  # a name in EXECUTORS
    ray_address: str | None = None
    budget_ms: float | None = Field(default=None, gt=0)
    # a budget relative to the network handed over: the table's time of the unpruned network / speedup
    # (the run resolves it to budget_ms before the search; a table's scale, not its ratios, drifts
    # with the machine, so "2x faster" holds where an absolute figure measured earlier may not)
    speedup: float | None = Field(default=None, gt=1.0)
    max_params: int | None = Field(default=None, gt=0)
    criterion: Literal["l1", "l2", "bn_scale"] = "l1"
    depth_genes: bool = True
    width_genes: bool = True
    rank_genes: bool = False  # low-rank factorisation genes (needs rank kernels: `edgeprune profile --ranks`)
    # approximate evaluation (Neurocomputing 2020): prune, recalibrate BN, score on a validation subset
    val_size: int = Field(default=1000, ge=10)
    calib_batches: int = Field(default=4, ge=1)
    batch_size: int = Field(default=128, ge=1)
    finetune_steps: int = Field(default=0, ge=0)
    # robustness objective (MO-EvoPruneDeepTL): error under seeded CIFAR-10-C-style corruptions
    corruption_severity: int = Field(default=3, ge=1, le=5)
    robustness_size: int = Field(default=250, ge=10)  # validation images per corruption kind
    # picks
    fast_tolerance: float = Field(default=0.03, ge=0.0, le=1.0)  # error above the most accurate member
    knee_tolerance: float = Field(default=0.10, ge=0.0, le=1.0)  # the knee's candidates, the same way
    # bi-level (Bi-CNN-D-C / CEMBA)
    lower_population: int = Field(default=8, ge=4)
    lower_archs: int = Field(default=2, ge=1)
    migration_interval: int = Field(default=2, ge=1)

    @field_validator("strategy")
    @classmethod
    def _known_strategy(cls, v: str) -> str:
        return STRATEGIES.validate(v)

    @model_validator(mode="after")
    def _one_budget(self) -> SearchConfig:
        if self.speedup is not None and self.budget_ms is not None:
            raise ValueError("give a latency budget either as budget_ms or as speedup, not both")
        return self

    def budget_for(self, unpruned_ms: float) -> float | None:
        """The latency budget in ms, given the table's time of the unpruned network: ``budget_ms``, or
        that time over ``speedup``; None without either."""
        return self.budget_ms if self.speedup is None else unpruned_ms / self.speedup

    @field_validator("executor")
    @classmethod
    def _known_executor(cls, v: str) -> str:
        return EXECUTORS.validate(v)

    @field_validator("objectives")
    @classmethod
    def _known(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for name in v:
            OBJECTIVES.validate(name)
        if "error" not in v:
            raise ValueError("objectives must include 'error'")
        if len(set(v)) != len(v) or len(v) < 2:
            raise ValueError("objectives must be at least two distinct names")
        return v
