"""Structural pruning (the "analyze" stage): channel groups, droppable blocks, plans, apply.

Built on torch-pruning's dependency graph, extended with a pruner for the option-A shortcut of the
CIFAR ResNets and a whitelist that refuses what torch-pruning cannot prune correctly.
"""

from edgeprune.graph.analysis import BlockInfo, ChannelGroup, FixedGroup, ModelAnalysis, analyze
from edgeprune.graph.apply import apply_plan, pruned_channels
from edgeprune.graph.blocks import drop_blocks, find_residual_blocks
from edgeprune.graph.costs import LayerCost, count_macs, count_params, layer_costs
from edgeprune.graph.plan import (
    CRITERIA,
    PruningPlan,
    predict_params,
    round_channels,
    uniform_plan,
    validate_plan,
)

__all__ = [
    "CRITERIA",
    "BlockInfo",
    "ChannelGroup",
    "FixedGroup",
    "LayerCost",
    "ModelAnalysis",
    "PruningPlan",
    "analyze",
    "apply_plan",
    "count_macs",
    "count_params",
    "drop_blocks",
    "find_residual_blocks",
    "layer_costs",
    "predict_params",
    "pruned_channels",
    "round_channels",
    "uniform_plan",
    "validate_plan",
]
