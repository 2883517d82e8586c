"""Kept-filter masks of pruned networks: which channels of each prunable group a plan keeps.

Used to measure the diversity of front members (ensembles) and how often each filter survives across
the front ("influential filters", MO-EvoPruneDeepTL).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from edgeprune.graph import ModelAnalysis, PruningPlan, pruned_channels


def kept_masks(
    model: nn.Module, analysis: ModelAnalysis, plan: PruningPlan, example: torch.Tensor
) -> dict[str, np.ndarray]:
    """Group name -> boolean mask over its channels (all False for groups of dropped blocks)."""
    removed = pruned_channels(model, plan, example, analysis=analysis) if plan.keep else {}
    dropped = tuple(b + "." for b in plan.drop_blocks)
    masks: dict[str, np.ndarray] = {}
    for g in analysis.groups:
        mask = np.ones(g.channels, dtype=bool)
        if g.layers and all(name.startswith(dropped) for name in g.layers) and dropped:
            mask[:] = False
        else:
            mask[list(removed.get(g.name, []))] = False
        masks[g.name] = mask
    return masks


def flat_mask(masks: dict[str, np.ndarray]) -> np.ndarray:
    """All groups' masks concatenated in a stable (sorted) order."""
    return np.concatenate([masks[k] for k in sorted(masks)]) if masks else np.zeros(0, dtype=bool)


def keep_frequency(all_masks: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Per group, the fraction of networks that keep each channel."""
    if not all_masks:
        return {}
    return {k: np.mean([m[k] for m in all_masks], axis=0) for k in all_masks[0]}
