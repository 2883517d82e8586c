"""Every kernel configuration the search space of a network can produce at a channel multiple.

The space (see :mod:`edgeprune.space`) keeps each prunable width at a multiple of the target's channel
multiple (or the full width) and may drop identity-shortcut blocks. Dropping a block removes its
kernel and changes no other, so the kernels to measure are, per block position of the unpruned
network, its inner width over all levels, and — for CIFAR ResNets, whose stage widths (residual
streams) are architecture genes — the stream widths over all levels too. Other families keep their
stream widths as built (a torchvision network's stream pruning is interpolated or falls outside the
table, which the predictor reports).

With ``ranks`` (the search's rank genes), every kernel that holds a factorisable layer is also
enumerated at each rank the space can give it: the rank levels of the layer at its unpruned width,
kept only where they still save at the pruned width — the same rule :meth:`SearchSpace.decode` applies.
"""

from __future__ import annotations

from dataclasses import replace
from itertools import product

from torch import nn

from edgeprune.graph.lowrank import rank_levels, saves
from edgeprune.latency.kernels import KernelKey, extract_kernels, rank_variant
from edgeprune.space import channel_levels


def _is_cifar_resnet(model: nn.Module) -> bool:
    return type(model).__name__ == "CifarResNet"


def _variants(key: KernelKey, multiple: int, streams: bool, last: bool) -> list[KernelKey]:
    lv = lambda c: channel_levels(c, multiple)  # noqa: E731
    if key.op == "cifar_block":
        mids = lv(key.mid)
        if not streams:
            return [key.with_channels(key.cin, m, key.cout) for m in mids]
        if key.stride == 1 and key.cin == key.cout:
            return [key.with_channels(w, m, w) for w in lv(key.cin) for m in mids]
        return [key.with_channels(a, m, b) for a, m, b in product(lv(key.cin), mids, lv(key.cout))]
    if key.op == "inverted_residual":
        if key.variant.endswith("noexpand"):
            return [key]
        return [key.with_channels(key.cin, m, key.cout) for m in lv(key.mid)]
    if key.op == "conv" and streams and key.variant.startswith("input"):
        return [key.with_channels(key.cin, 0, c) for c in lv(key.cout)]
    if key.op in ("gap_linear", "linear") and streams and last:
        return [key.with_channels(c, 0, key.cout) for c in lv(key.cin)]
    return [key]


def _layer_shapes(key: KernelKey) -> list[tuple[int, int, int]]:
    """(cin, cout, k) of the factorisable layers of a kernel (what rank genes act on)."""
    if key.op == "cifar_block":
        return [(key.cin, key.mid, 3), (key.mid, key.cout, 3)]
    if key.op == "conv" and key.groups == 1 and key.k > 1:
        return [(key.cin, key.cout, key.k)]
    if key.op in ("gap_linear", "linear"):
        return [(key.cin, key.cout, 1)]
    return []


def _rank_variants(unpruned: KernelKey, key: KernelKey, multiple: int) -> list[KernelKey]:
    """``key`` at every combination of ranks its layers can take (``key`` itself first)."""
    options = [
        [0, *(r for r in rank_levels(ci, co, k, multiple) if saves(r, pi, po, k))]
        for (ci, co, k), (pi, po, _) in zip(_layer_shapes(unpruned), _layer_shapes(key), strict=True)
    ]
    return [replace(key, variant=rank_variant(key.variant, tuple(ranks))) for ranks in product(*options)]


def enumerate_kernels(
    model: nn.Module,
    input_shape: tuple[int, int, int],
    multiple: int,
    precision: str = "fp32",
    ranks: bool = False,
) -> list[KernelKey]:
    """Distinct kernels the search space of ``model`` can produce, in network order."""
    base = extract_kernels(model, input_shape, precision)
    streams = _is_cifar_resnet(model)
    seen: dict[KernelKey, None] = {}
    for i, key in enumerate(base):
        for v in _variants(key, multiple, streams, last=i == len(base) - 1):
            for r in _rank_variants(key, v, multiple) if ranks else [v]:
                seen.setdefault(r, None)
    return list(seen)
