"""Choosing diverse front members: diversity is measured on kept-filter masks (MO-EvoPruneDeepTL)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edgeprune.errors import ConfigError


def jaccard_distance(a: np.ndarray, b: np.ndarray) -> float:
    """1 - |a & b| / |a | b| for boolean masks (0 for two empty masks)."""
    union = np.logical_or(a, b).sum()
    return 0.0 if union == 0 else 1.0 - float(np.logical_and(a, b).sum()) / float(union)


def select_diverse(masks: Sequence[np.ndarray], errors: Sequence[float], k: int) -> list[int]:
    """Greedy max-min diversity: start from the most accurate member, then repeatedly add the member
    whose smallest mask distance to the chosen ones is largest (ties: lower error, then lower index)."""
    n = len(masks)
    if k < 1:
        raise ConfigError(f"ensemble size must be at least 1, got {k}")
    if k > n:
        raise ConfigError(f"ensemble size {k} is larger than the front ({n} members)")
    dist = np.array([[jaccard_distance(masks[i], masks[j]) for j in range(n)] for i in range(n)])
    chosen = [int(np.lexsort((np.arange(n), np.asarray(errors)))[0])]
    while len(chosen) < k:
        rest = [i for i in range(n) if i not in chosen]
        best = max(rest, key=lambda i: (dist[i, chosen].min(), -errors[i], -i))
        chosen.append(best)
    return chosen
