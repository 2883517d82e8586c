"""torch-pruning's dependency graph, built the edgeprune way, and the groups it yields.

We do not rewrite torch-pruning: we build its :class:`DependencyGraph` with our customized pruners,
enumerate its groups in module order, and check each group against a whitelist of operations whose
channel mapping torch-pruning models correctly. A group that touches anything else (a channel
shuffle, a permute, a grouped convolution, a split, an unknown parameter) is *fixed*: it is reported
with the layer that blocks it and never pruned, so nothing is ever pruned silently wrong.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from edgeprune.errors import UnsupportedModelError
from edgeprune.models.cifar_resnet import EmbedShortcut

# element-wise autograd nodes that keep channel c in channel c (activations, pooling over H/W, adds,
# per-channel gating); anything else in a group makes the group fixed
_CHANNEL_PRESERVING = {
    "AddBackward0", "AddBackward1", "SubBackward0", "MulBackward0", "DivBackward0",
    "ReluBackward0", "HardtanhBackward0", "HardswishBackward0", "HardsigmoidBackward0",
    "SigmoidBackward0", "SiluBackward0", "GeluBackward0", "TanhBackward0", "LeakyReluBackward0",
    "EluBackward0", "MishBackward0", "CloneBackward0", "TBackward0",
    "MaxPool2DWithIndicesBackward0", "AvgPool2DBackward0", "AdaptiveAvgPool2DBackward0",
    "AdaptiveMaxPool2DBackward0", "MeanBackward1", "AmaxBackward0",
}  # fmt: skip
_VIEW_NODES = {"ViewBackward0", "UnsafeViewBackward0", "ReshapeAliasBackward0"}


@dataclass(frozen=True)
class GroupItem:
    """One coupled operation of a group: a named module, whether its outputs or inputs are cut, how many."""

    module: str
    is_out: bool
    count: int  # indices of the module's dimension that belong to the group (channels x spatial for flatten)


@dataclass(frozen=True)
class RawGroup:
    """A torch-pruning group, summarised: its root, its width, its items and what (if anything) blocks it."""

    root: str
    channels: int
    items: tuple[GroupItem, ...]
    has_add: bool
    touches_output: bool
    blocker: str | None  # why it cannot be pruned, naming the layer; None when prunable


def build_graph(model: nn.Module, example_input: torch.Tensor) -> Any:
    """Trace ``model`` into a torch-pruning DependencyGraph; a model it cannot trace is refused."""
    import torch_pruning as tp

    from edgeprune.graph.shortcut import customized_pruners

    was_training = model.training
    try:
        with torch.enable_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            graph = tp.DependencyGraph().build_dependency(
                model, example_inputs=example_input, customized_pruners=customized_pruners(), verbose=False
            )
    except Exception as err:  # torch-pruning raises anything from asserts to ZeroDivisionError
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise UnsupportedModelError(
            f"cannot trace the model's channel dependencies ({type(err).__name__}: {first[:160]})"
        ) from None
    finally:
        model.train(was_training)
    return graph


@contextlib.contextmanager
def frozen_index_mapping(graph: Any) -> Iterator[None]:
    """Skip torch-pruning's per-call index-mapping refresh while nothing is being pruned.

    ``get_pruning_group`` recomputes every concat / reshape index mapping on each call (quadratic on
    a DenseNet); between two cuts the mapping cannot change, so we refresh once and reuse it.
    """
    from torch_pruning.dependency import index_mapping

    original = index_mapping.update_index_mapping
    original(graph)
    index_mapping.update_index_mapping = lambda g: None
    try:
        yield
    finally:
        index_mapping.update_index_mapping = original


def _node_label(node: Any) -> str:
    if node.name:
        return str(node.name)
    fn = node.grad_fn
    return fn.name() if hasattr(fn, "name") else type(node.module).__name__


def _norm_dims(dims: Any, ndim: int) -> set[int]:
    dims = dims if isinstance(dims, tuple) else (dims,)
    out = set()
    for d in dims:
        d = int(d)
        if d >= 2**63:
            d -= 2**64
        out.add(d % ndim if ndim else d)
    return out


def _blocker(graph: Any, node: Any, is_out: bool) -> str | None:
    """Why ``node`` cannot take part in a pruned group, or None."""
    import torch_pruning as tp

    op = tp.ops.OPTYPE
    module, kind = node.module, node.type
    where = _node_label(node)
    if kind == op.CONV:
        if module.groups != 1:
            return f"grouped convolution {where} (groups={module.groups}) is not pruned"
        return None
    if kind == op.DEPTHWISE_CONV:
        if module.in_channels != module.out_channels:
            return f"depthwise convolution {where} with a channel multiplier is not pruned"
        return None
    if kind in (op.BN, op.LINEAR, op.PRELU, op.OUTPUT):
        return None
    if kind == op.LN:
        if len(module.normalized_shape) != 1:
            return f"layer norm {where} over several dimensions is not pruned"
        return None
    if kind == op.CUSTOMIZED:
        return None if isinstance(module, EmbedShortcut) else f"custom layer {where} is not pruned"
    if kind == op.CONCAT:
        dim = getattr(node.grad_fn, "_saved_dim", None)
        return None if dim == 1 else f"concatenation {where} along dim {dim} is not pruned"
    if kind == op.RESHAPE:
        sizes = getattr(node.grad_fn, "_saved_self_sym_sizes", None)
        if node.grad_fn.name() in _VIEW_NODES and sizes is not None and len(sizes) in (2, 4):
            return None
        return f"reshape {where} that may move channels is not pruned"
    if kind == op.ELEMENTWISE:
        name = node.grad_fn.name() if hasattr(node.grad_fn, "name") else "unknown op"
        if name not in _CHANNEL_PRESERVING:
            return f"operation {name} ({where}) may mix channels; not pruned"
        if name in ("MeanBackward1", "AmaxBackward0"):
            sizes = getattr(node.grad_fn, "_saved_self_sym_sizes", None) or ()
            if 1 in _norm_dims(getattr(node.grad_fn, "_saved_dim", ()), len(sizes)):
                return f"reduction {name} over channels ({where}) is not pruned"
        return None
    return f"{kind.name.lower()} node {where} is not pruned"


def raw_groups(graph: Any, model: nn.Module) -> list[RawGroup]:
    """Every channel group of ``graph``, rooted at convs / linears in ``model.named_modules()`` order."""

    names = {m: n for n, m in model.named_modules()}
    visited: set[nn.Module] = set()
    groups: list[RawGroup] = []
    with frozen_index_mapping(graph):
        for name, module in model.named_modules():
            _add_group(graph, names, visited, groups, name, module)
    return groups


def _add_group(
    graph: Any,
    names: dict[nn.Module, str],
    visited: set[nn.Module],
    groups: list[RawGroup],
    name: str,
    module: nn.Module,
) -> None:
    """Append the group rooted at ``module``'s outputs, unless it was already seen from another root."""
    import torch_pruning as tp

    if not isinstance(module, (nn.modules.conv._ConvNd, nn.Linear)) or module in visited:
        return
    if module not in graph.module2node:
        return  # not reached by the forward pass
    pruner = graph.get_pruner_of_module(module)
    channels = pruner.get_out_channels(module)
    group = graph.get_pruning_group(module, pruner.prune_out_channels, list(range(channels)))
    items: list[GroupItem] = []
    blocker = None
    has_add = touches_output = False
    for dep, idxs in group:
        node = dep.target
        is_out = graph.is_out_channel_pruning_fn(dep.handler)
        if node.type == tp.ops.OPTYPE.OUTPUT or (is_out and not node.outputs):
            touches_output = True
        if is_out and isinstance(node.module, nn.Module):
            visited.add(node.module)
        if blocker is None:
            blocker = _blocker(graph, node, is_out)
        fn = node.grad_fn
        if hasattr(fn, "name") and fn.name() in ("AddBackward0", "AddBackward1", "SubBackward0"):
            has_add = True
        target = names.get(node.module) if isinstance(node.module, nn.Module) else None
        if target is not None:
            items.append(GroupItem(target, bool(is_out), len(idxs)))
        elif isinstance(node.module, nn.Parameter):
            blocker = blocker or f"free parameter {_node_label(node)} is not pruned"
    groups.append(RawGroup(name, int(channels), tuple(items), has_add, touches_output, blocker))
