"""Helpers for the pruning tests: a masked copy of a network (pruned channels zeroed, nothing removed).

A pruned network must compute what the original computes with its pruned channels forced to zero:
we zero, by forward hooks, every output channel that a plan cuts from a module whose outputs the group
cuts. Exact for networks whose layers treat channels independently (BatchNorm, not LayerNorm).
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from edgeprune.graph import ModelAnalysis, PruningPlan, drop_blocks, pruned_channels
from edgeprune.graph.dependency import build_graph


def masked_forward(
    model: nn.Module, plan: PruningPlan, example: torch.Tensor, analysis: ModelAnalysis
) -> torch.Tensor:
    """Output of ``model`` with the channels ``plan`` would cut zeroed (and its blocks dropped)."""
    cut = pruned_channels(model, plan, example, analysis=analysis)
    work = copy.deepcopy(model).eval()
    drop_blocks(work, plan.drop_blocks)
    graph = build_graph(work, example[:1])
    masks: dict[nn.Module, set[int]] = {}
    for name, idxs in cut.items():
        group = analysis.group(name)
        root = next(
            work.get_submodule(n)
            for n in group.layers
            if not any(n.startswith(b + ".") for b in plan.drop_blocks)
            and isinstance(work.get_submodule(n), (nn.Conv2d, nn.Linear))
        )
        pruner = graph.get_pruner_of_module(root)
        for dep, item_idxs in graph.get_pruning_group(root, pruner.prune_out_channels, idxs):
            module = dep.target.module
            cuts_out = graph.is_out_channel_pruning_fn(dep.handler) and isinstance(module, nn.Module)
            if cuts_out and (any(True for _ in module.parameters()) or hasattr(module, "embed")):
                masks.setdefault(module, set()).update(int(i) for i in item_idxs)

    def hook(idx: list[int]):
        def fn(module: nn.Module, args: object, out: torch.Tensor) -> torch.Tensor:
            out = out.clone()
            out[:, idx] = 0
            return out

        return fn

    handles = [m.register_forward_hook(hook(sorted(ix))) for m, ix in masks.items()]
    try:
        with torch.no_grad():
            return work(example)
    finally:
        for h in handles:
            h.remove()


@pytest.fixture(scope="session")
def masked() -> object:
    return masked_forward
