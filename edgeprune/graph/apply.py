"""Apply a pruning plan: a new, smaller network; the original is untouched.

Steps: copy the model, replace the dropped blocks by ``nn.Identity`` (module names of the rest are
kept, so group names stay valid), trace the copy, score every planned group's channels with the
plan's criterion (all scores before any cut), then cut the lowest-scoring channels of each group with
torch-pruning's ``get_pruning_group(...).prune()``, and last factorise every layer the plan gives a
rank (truncated SVD at the pruned width, :mod:`edgeprune.graph.lowrank`). The result is checked: it
runs, its output shape is unchanged and its parameter count is the one :func:`predict_params`
promised; a failed check is an
:class:`UnsupportedModelError`, never a silently wrong network. Deterministic: the same plan on the
same model gives the same weights bit for bit.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from edgeprune.errors import UnsupportedModelError
from edgeprune.graph.analysis import ModelAnalysis, analyze
from edgeprune.graph.blocks import drop_blocks
from edgeprune.graph.costs import count_params
from edgeprune.graph.dependency import build_graph, frozen_index_mapping
from edgeprune.graph.importance import accumulate_gradients, group_scores, lowest, make_importance
from edgeprune.graph.lowrank import apply_ranks
from edgeprune.graph.plan import PruningPlan, predict_params, validate_plan


def _root_module(
    model: nn.Module, layers: tuple[str, ...], dropped: tuple[str, ...]
) -> tuple[str, nn.Module] | None:
    """The first conv / linear of a group still in the model; None when it went with a dropped block."""
    for name in layers:
        if any(name.startswith(b + ".") for b in dropped):
            continue
        m = model.get_submodule(name)
        if isinstance(m, (nn.modules.conv._ConvNd, nn.Linear)):
            return name, m
    return None


def apply_plan(
    model: nn.Module,
    plan: PruningPlan,
    example_input: torch.Tensor,
    data: tuple[torch.Tensor, torch.Tensor] | None = None,
    analysis: ModelAnalysis | None = None,
) -> nn.Module:
    """The network ``plan`` describes, built from ``model`` (which is not modified), in eval mode.

    ``data`` (x, y) is needed by the ``taylor`` criterion only. Pass ``analysis`` (of this model at
    this input size) to skip re-analysing.
    """
    if analysis is None:
        analysis = analyze(model, example_input, plan.channel_multiple)
    validate_plan(analysis, plan)
    example = example_input[:1].detach()
    pruned = copy.deepcopy(model).eval()
    with torch.no_grad():
        expected_shape = tuple(pruned(example).shape)
    for p in pruned.parameters():
        p.requires_grad_(True)
    drop_blocks(pruned, plan.drop_blocks)
    cuts = {name: k for name, k in plan.keep.items() if k < analysis.group(name).channels}
    if cuts:
        _cut_channels(pruned, analysis, plan, cuts, example, data)
    for p in pruned.parameters():
        p.grad = None
    if plan.ranks:
        apply_ranks(pruned, plan.ranks)
    _check(pruned, example, expected_shape, predict_params(analysis, plan), plan)
    return pruned.eval()


def _select(
    model: nn.Module,
    graph: Any,
    analysis: ModelAnalysis,
    plan: PruningPlan,
    cuts: dict[str, int],
    data: tuple[torch.Tensor, torch.Tensor] | None,
) -> list[tuple[str, nn.Module, list[int]]]:
    """Per planned group: its root module in ``model`` and the channels to cut (all scored before any cut)."""
    importance = make_importance(plan.criterion)
    fallback = make_importance("l1") if plan.criterion == "bn_scale" else None
    if plan.criterion == "taylor":
        accumulate_gradients(model, data)
    chosen: list[tuple[str, nn.Module, list[int]]] = []
    with frozen_index_mapping(graph):
        for name, keep in sorted(cuts.items()):
            _choose(graph, model, analysis, plan, name, keep, importance, fallback, chosen)
    return chosen


def _choose(
    graph: Any,
    model: nn.Module,
    analysis: ModelAnalysis,
    plan: PruningPlan,
    name: str,
    keep: int,
    importance: Any,
    fallback: Any,
    chosen: list[tuple[str, nn.Module, list[int]]],
) -> None:
    """Score one group's channels and record the lowest ``channels - keep`` of them."""
    group = analysis.group(name)
    found = _root_module(model, group.layers, plan.drop_blocks)
    if found is None:
        return  # the group lived inside a dropped block
    root_name, root = found
    pruner = graph.get_pruner_of_module(root)
    channels = pruner.get_out_channels(root)
    if channels != group.channels:
        raise UnsupportedModelError(
            f"group {name!r}: layer {root_name} has {channels} channels, analysis said {group.channels}"
        )
    full = graph.get_pruning_group(root, pruner.prune_out_channels, list(range(channels)))
    scores = group_scores(importance, full, fallback)
    chosen.append((name, root, lowest(scores, channels - keep)))


def _cut_channels(
    model: nn.Module,
    analysis: ModelAnalysis,
    plan: PruningPlan,
    cuts: dict[str, int],
    example: torch.Tensor,
    data: tuple[torch.Tensor, torch.Tensor] | None,
) -> None:
    """Cut every planned group in one pass.

    All groups are resolved on the unpruned graph (so every index is in the original numbering), the
    indices are merged per (layer, dimension), and each layer is cut once. Equivalent to pruning the
    groups one after another, without torch-pruning's per-group index-mapping refresh.
    """
    graph = build_graph(model, example)
    merged: dict[tuple[nn.Module, Any], tuple[Any, set[int]]] = {}
    with frozen_index_mapping(graph):
        for _name, root, idxs in _select(model, graph, analysis, plan, cuts, data):
            pruner = graph.get_pruner_of_module(root)
            for dep, item_idxs in graph.get_pruning_group(root, pruner.prune_out_channels, idxs):
                _, cut = merged.setdefault((dep.target.module, dep.handler), (dep, set()))
                cut.update(int(i) for i in item_idxs)
    for dep, cut in merged.values():
        try:
            dep(sorted(cut))
        except Exception as err:  # torch-pruning asserts on what it cannot cut
            raise UnsupportedModelError(
                f"cannot prune layer {dep.target.name or dep.target}: {err}"[:300]
            ) from None


def pruned_channels(
    model: nn.Module,
    plan: PruningPlan,
    example_input: torch.Tensor,
    data: tuple[torch.Tensor, torch.Tensor] | None = None,
    analysis: ModelAnalysis | None = None,
) -> dict[str, list[int]]:
    """The channels (numbered as the group's root layer numbers them) each planned group loses."""
    if analysis is None:
        analysis = analyze(model, example_input, plan.channel_multiple)
    validate_plan(analysis, plan)
    work = copy.deepcopy(model).eval()
    for p in work.parameters():
        p.requires_grad_(True)
    drop_blocks(work, plan.drop_blocks)
    cuts = {name: k for name, k in plan.keep.items() if k < analysis.group(name).channels}
    example = example_input[:1].detach()
    graph = build_graph(work, example)
    return {name: idxs for name, _, idxs in _select(work, graph, analysis, plan, cuts, data)}


def _check(
    model: nn.Module,
    example: torch.Tensor,
    expected_shape: tuple[int, ...],
    predicted: int,
    plan: PruningPlan,
) -> None:
    try:
        with torch.no_grad():
            out = model(example)
    except Exception as err:
        msg = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise UnsupportedModelError(
            f"the pruned network does not run ({msg[:200]}); plan {plan.key()[:120]}"
        ) from None
    if tuple(out.shape) != expected_shape:
        raise UnsupportedModelError(
            f"pruning changed the output shape {expected_shape} -> {tuple(out.shape)}"
        )
    actual = count_params(model)
    if actual != predicted:
        raise UnsupportedModelError(f"pruned network has {actual} parameters, the plan predicted {predicted}")
