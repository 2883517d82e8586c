"""The search's open sets by name: strategies, executors, objectives.

This module is light (no torch, no pymoo) and imports nothing else from the search, so
:class:`~edgeprune.search.config.SearchConfig` validates its names here and the CLI builds its choices
from here. Strategies and executors register themselves in their own modules, which this module names
as built-ins and imports on the first lookup (:class:`~edgeprune.registry.Registry`):

* a **strategy** is ``@STRATEGIES.register("name")`` on a function taking the
  :class:`~edgeprune.search.run.SearchContext` (``nsga3`` in :mod:`edgeprune.search.run`, ``bilevel``
  in :mod:`edgeprune.search.bilevel`);
* an **executor** is ``@EXECUTORS.register("name")`` on a factory ``(spec, workers, address) ->
  Executor`` (``local`` in :mod:`edgeprune.search.executor`, ``ray`` in
  :mod:`edgeprune.search.ray_executor`);
* an **objective** is an :class:`Objective` registered below: the metric of an evaluation record it
  minimises, which :meth:`edgeprune.search.evaluator.Evaluator.evaluate` computes.

A new strategy or executor module outside this list registers when it is imported; add it to
``builtins`` below to make it a built-in (listed by the CLI without being imported first).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from edgeprune.errors import ConfigError
from edgeprune.registry import Registry

Strategy = Callable[[Any], None]
"""Runs a search on a :class:`~edgeprune.search.run.SearchContext` (typed ``Any`` here: this module
stays below :mod:`edgeprune.search.run`)."""

ExecutorFactory = Callable[[Any, int, "str | None"], Any]
"""``(EvaluatorSpec, workers, address) -> Executor`` (see :mod:`edgeprune.search.executor`)."""

STRATEGIES: Registry[Strategy] = Registry(
    "search strategy", error=ConfigError, builtins=("edgeprune.search.run", "edgeprune.search.bilevel")
)
EXECUTORS: Registry[ExecutorFactory] = Registry(
    "executor", error=ConfigError, builtins=("edgeprune.search.executor", "edgeprune.search.ray_executor")
)


@dataclass(frozen=True)
class Objective:
    """A minimised objective: its name in configs and on the command line, and the metric it reads."""

    name: str
    metric: str  # the key of an evaluation record (Evaluator.evaluate)
    description: str


OBJECTIVES: Registry[Objective] = Registry("objective", error=ConfigError)


def register_objective(objective: Objective) -> Objective:
    """Register ``objective`` under its name; a duplicate is refused (``ValueError``)."""
    return OBJECTIVES.register(objective.name, objective)


register_objective(Objective("error", "error", "top-1 error on the validation subset"))
register_objective(Objective("params", "params", "parameter count"))
register_objective(Objective("latency", "latency_ms", "predicted latency on the target, ms"))
register_objective(Objective("macs", "macs", "multiply-accumulates (a FLOPs proxy)"))
register_objective(Objective("robustness", "robust_error", "error under seeded CIFAR-10-C-style corruptions"))
