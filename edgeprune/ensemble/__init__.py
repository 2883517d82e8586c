"""Pareto ensembles (MO-EvoPruneDeepTL): diverse front members averaged into one model."""

from edgeprune.ensemble.masks import flat_mask, keep_frequency, kept_masks
from edgeprune.ensemble.model import ProbabilityAverage
from edgeprune.ensemble.select import jaccard_distance, select_diverse

__all__ = [
    "ProbabilityAverage",
    "flat_mask",
    "jaccard_distance",
    "keep_frequency",
    "kept_masks",
    "select_diverse",
]
