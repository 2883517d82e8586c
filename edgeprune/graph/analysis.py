"""Analyse a network: its prunable channel groups, droppable residual blocks, params and MACs.

``analyze(model, example_input)`` is the "analyze" stage: the rest of edgeprune (space, latency,
search, export) sees a network through the :class:`ModelAnalysis` it returns. Groups come from
torch-pruning's dependency graph (:mod:`edgeprune.graph.dependency`); each is named stably (the name
of its first convolution, or ``stage:<stage>`` for a residual stream) and classified as ``inner``
(inside one block), ``stage`` (a residual stream: every conv feeding one chain of adds) or ``other``.
Groups that reach the network output are never pruned (the classifier keeps its classes); groups
torch-pruning cannot prune correctly are listed in ``fixed`` with the layer that blocks them.
"""

from __future__ import annotations

import copy
from collections import Counter
from dataclasses import dataclass, field

import torch
from torch import nn

from edgeprune.errors import UnsupportedModelError
from edgeprune.graph.blocks import find_residual_blocks
from edgeprune.graph.costs import LayerCost, count_params, layer_costs
from edgeprune.graph.dependency import RawGroup, build_graph, raw_groups


@dataclass(frozen=True)
class ChannelGroup:
    """One set of coupled channels, pruned together."""

    name: str  # stable id: "layer1.0.conv1" (its first conv) or "stage:layer2" (a residual stream)
    channels: int  # current channel count
    layers: tuple[str, ...]  # modules whose in/out channels this group couples (out-cut first)
    kind: str  # "inner" (block-internal), "stage" (residual stream), "other"
    root: str = ""  # the module whose output channels define the group


@dataclass(frozen=True)
class FixedGroup:
    """A channel group edgeprune will not prune, and why (naming the blocking layer)."""

    name: str
    channels: int
    layers: tuple[str, ...]
    reason: str


@dataclass(frozen=True)
class BlockInfo:
    """A droppable residual block (identity shortcut only)."""

    name: str  # "layer2.3"
    stage: str  # "layer2"


@dataclass(frozen=True)
class DimShare:
    """Size of one parameter dimension as ``fixed + sum(multiplier * kept[group])``."""

    dim: int
    fixed: int
    shares: tuple[tuple[str, int], ...]  # (group name, multiplier)


@dataclass(frozen=True)
class ParamShape:
    """A parameter's shape and which of its dimensions follow which groups."""

    name: str
    shape: tuple[int, ...]
    dims: tuple[DimShare, ...]


@dataclass(frozen=True)
class ModelAnalysis:
    """Everything the later stages need to know about a network's structure."""

    groups: tuple[ChannelGroup, ...]
    blocks: tuple[BlockInfo, ...]  # droppable blocks, in order
    stages: tuple[str, ...]  # stages that hold blocks (for depth genes)
    params: int
    macs: int
    layers: tuple[LayerCost, ...]
    input_shape: tuple[int, int, int]
    channel_multiple: int = 1
    fixed: tuple[FixedGroup, ...] = ()
    param_shapes: tuple[ParamShape, ...] = field(default=(), repr=False)

    def group(self, name: str) -> ChannelGroup:
        """The prunable group called ``name`` (KeyError if there is none)."""
        for g in self.groups:
            if g.name == name:
                return g
        raise KeyError(name)


def _param_dims(module: nn.Module, is_out: bool) -> list[tuple[str, int]]:
    """The (parameter, dimension) pairs a cut of ``module``'s outputs or inputs shrinks."""
    dims: list[tuple[str, int]] = []
    if isinstance(module, nn.modules.conv._ConvNd):
        if module.groups > 1:  # depthwise: in and out are one dimension
            dims = [("weight", 0), ("bias", 0)]
        elif is_out:
            dims = [("weight", 1 if module.transposed else 0), ("bias", 0)]
        else:
            dims = [("weight", 0 if module.transposed else 1)]
    elif isinstance(module, nn.Linear):
        dims = [("weight", 0), ("bias", 0)] if is_out else [("weight", 1)]
    elif isinstance(module, (nn.modules.batchnorm._BatchNorm, nn.LayerNorm)):
        dims = [("weight", 0), ("bias", 0)]
    elif isinstance(module, nn.PReLU):
        dims = [("weight", 0)] if module.num_parameters > 1 else []
    return [(p, d) for p, d in dims if getattr(module, p, None) is not None]


def _param_shapes(model: nn.Module, groups: list[tuple[str, RawGroup]]) -> tuple[ParamShape, ...]:
    shares: dict[tuple[str, int], dict[str, int]] = {}
    for gname, raw in groups:
        for item in raw.items:
            module = model.get_submodule(item.module)
            for pname, dim in _param_dims(module, item.is_out):
                mult = item.count // raw.channels
                shares.setdefault((f"{item.module}.{pname}", dim), {})[gname] = mult
    width = {gname: raw.channels for gname, raw in groups}
    out = []
    for name, p in model.named_parameters():
        dims = []
        for d in range(p.dim()):
            s = shares.get((name, d))
            if s:
                fixed = int(p.shape[d]) - sum(m * width[g] for g, m in s.items())
                dims.append(DimShare(d, fixed, tuple(sorted(s.items()))))
        out.append(ParamShape(name, tuple(int(x) for x in p.shape), tuple(dims)))
    return tuple(out)


def _kind(raw: RawGroup, model: nn.Module, layers: tuple[str, ...]) -> str:
    if raw.has_add:
        return "stage"
    parts = [n.split(".") for n in layers]
    common: list[str] = []
    for segs in zip(*parts, strict=False):
        if len(set(segs)) != 1:
            break
        common.append(segs[0])
    while common:
        prefix = ".".join(common)
        container = isinstance(model.get_submodule(prefix), (nn.Sequential, nn.ModuleList, nn.ModuleDict))
        if not container and prefix not in layers:
            return "inner"
        common.pop()
    return "other"


def _layers(raw: RawGroup) -> tuple[str, ...]:
    out_cut = [i.module for i in raw.items if i.is_out]
    in_cut = [i.module for i in raw.items if not i.is_out and i.module not in out_cut]
    return tuple(dict.fromkeys(out_cut + in_cut))


def _stage_names(raws: list[RawGroup], blocks: list[str]) -> dict[int, str]:
    """Stage name per residual-stream group index: the blocks' parent, else the first block, else the root."""
    members: dict[int, list[str]] = {}
    for i, raw in enumerate(raws):
        if raw.has_add:
            outs = [it.module for it in raw.items if it.is_out]
            members[i] = [b for b in blocks if any(m.startswith(b + ".") for m in outs)]
    parents: Counter[str] = Counter()
    for bs in members.values():
        ps = {b.rpartition(".")[0] for b in bs}
        if len(ps) == 1:
            parents[ps.pop()] += 1
    names: dict[int, str] = {}
    for i, bs in members.items():
        ps = {b.rpartition(".")[0] for b in bs}
        if len(ps) == 1 and parents[next(iter(ps))] == 1 and next(iter(ps)):
            names[i] = next(iter(ps))
        elif bs:
            names[i] = bs[0]
        else:
            names[i] = raws[i].root
    return names


def analyze(model: nn.Module, example_input: torch.Tensor, channel_multiple: int = 1) -> ModelAnalysis:
    """Find the prunable channel groups, droppable blocks, params and MACs of ``model``.

    ``example_input`` is one batch (N, C, H, W) of the size the network will run at. The model is
    not modified (the analysis runs on a copy).
    """
    if example_input.dim() < 2:
        raise UnsupportedModelError(
            f"example input must be batched (N, C, ...), got shape {tuple(example_input.shape)}"
        )
    work = copy.deepcopy(model).eval()
    for p in work.parameters():
        p.requires_grad_(True)
    example = example_input[:1].detach()
    try:
        with torch.no_grad():
            reference = work(example)
    except Exception as err:  # a user's model may raise anything on a wrong input shape
        msg = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise UnsupportedModelError(
            f"the model does not run on input {tuple(example.shape)}: {msg[:200]}"
        ) from None
    if not isinstance(reference, torch.Tensor):
        raise UnsupportedModelError("the model must return a single tensor (class scores)")
    graph = build_graph(work, example)
    raws = raw_groups(graph, work)
    block_names = find_residual_blocks(work, example)
    stage_of_group = _stage_names(raws, block_names)

    groups: list[ChannelGroup] = []
    fixed: list[FixedGroup] = []
    prunable: list[tuple[str, RawGroup]] = []
    used: set[str] = set()
    for i, raw in enumerate(raws):
        layers = _layers(raw)
        name = f"stage:{stage_of_group[i]}" if i in stage_of_group else raw.root
        if name in used:
            name = f"{name}@{raw.root}"
        used.add(name)
        if raw.touches_output:
            continue  # the classifier's outputs: never pruned, not a choice
        reason = raw.blocker
        if reason is None and any(it.count % raw.channels for it in raw.items):
            reason = f"group {name} maps channels unevenly onto a layer; not pruned"
        if reason is not None:
            fixed.append(FixedGroup(name, raw.channels, layers, reason))
            continue
        groups.append(ChannelGroup(name, raw.channels, layers, _kind(raw, work, layers), raw.root))
        prunable.append((name, raw))

    stage_by_block: dict[str, str] = {}
    for i, name in stage_of_group.items():
        outs = [it.module for it in raws[i].items if it.is_out]
        for b in block_names:
            if any(m.startswith(b + ".") for m in outs):
                stage_by_block.setdefault(b, name)
    blocks = tuple(BlockInfo(b, stage_by_block.get(b, b.rpartition(".")[0] or b)) for b in block_names)
    stages = tuple(dict.fromkeys(b.stage for b in blocks))
    costs = layer_costs(work, example)
    c, h, w = (*(int(s) for s in example.shape[1:]), 1, 1)[:3]
    return ModelAnalysis(
        groups=tuple(groups),
        blocks=blocks,
        stages=stages,
        params=count_params(work),
        macs=sum(c.macs for c in costs),
        layers=tuple(costs),
        input_shape=(c, h, w),
        channel_multiple=int(channel_multiple),
        fixed=tuple(fixed),
        param_shapes=_param_shapes(work, prunable),
    )
