"""Every kernel the search space of a network can produce, found from the space itself.

The space (:class:`edgeprune.space.SearchSpace`) has one gene per prunable channel group, per stage
depth and (optionally) per factorisable layer. Each kernel of the unpruned network has channel fields
(``cin``, ``mid``, ``cout`` and, for a depthwise conv, ``groups``), and each field belongs to exactly one
channel group — so the kernels a network can have at a position are the product, over the genes that
touch that position, of what each gene does to it. :func:`enumerate_kernels` finds what each gene does
by *probing*: it decodes the unpruned genome with that one gene moved to each of its levels, builds
the network exactly as the search does (:func:`edgeprune.graph.apply_plan`) and reads its kernels.
Nothing is guessed from the family of the model, so any network ``inspect`` accepts is covered, at the
input size it runs at. Dropping a block removes its kernel and changes no other, so depth genes add
no kernel.

With ``ranks`` (the search's rank genes), every kernel that holds a factorisable layer is also
enumerated at each rank the space can give it: the rank levels of the layer at its unpruned width,
kept only where they still save at the pruned width — the rule :meth:`SearchSpace.decode` applies.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from itertools import product

import torch
from torch import nn

from edgeprune.errors import ConfigError, UnsupportedModelError
from edgeprune.graph import ModelAnalysis, analyze, apply_plan
from edgeprune.graph.lowrank import rank_levels, saves
from edgeprune.latency.kernels import KernelKey, extract_kernels, rank_variant
from edgeprune.space import SearchSpace

_FIELDS = ("cin", "mid", "cout", "groups")
Delta = tuple[tuple[str, int], ...]
# at most this many channel configurations per kernel position: beyond it, each gene's levels are
# thinned to an even grid that keeps its narrowest and widest level, so every configuration the search
# can build lies between measured entries and the predictor interpolates (in MACs) between them
MAX_PER_POSITION = 32


def thin(levels: list[int], k: int) -> list[int]:
    """At most ``k`` (>= 2) of ``levels``, evenly spaced, always with the first and the last."""
    if len(levels) <= k:
        return list(levels)
    idx = {round(j * (len(levels) - 1) / (k - 1)) for j in range(k)}
    return [levels[i] for i in sorted(idx)]


def allocate(counts: list[int], cap: int) -> list[int]:
    """Levels to keep per gene when genes with ``counts`` levels touch one position: all of them while
    their product is at most ``cap``, else the gene with most levels loses one until it is (>= 2 each)."""
    keep = list(counts)
    while math.prod(keep) > cap and max(keep) > 2:
        keep[keep.index(max(keep))] -= 1
    return keep


def _delta(base: KernelKey, key: KernelKey) -> Delta:
    if (base.op, base.h, base.w, base.k, base.stride) != (key.op, key.h, key.w, key.k, key.stride):
        raise UnsupportedModelError(f"pruning changed a kernel's kind: {base} -> {key}")
    return tuple((f, getattr(key, f)) for f in _FIELDS if getattr(key, f) != getattr(base, f))


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


def widest_space(
    model: nn.Module, input_shape: tuple[int, int, int], multiple: int
) -> tuple[torch.Tensor, ModelAnalysis, SearchSpace | None]:
    """``(example input, analysis, space)`` of the widest space any compile can ask for (depth, width
    and keep genes all on); the space is None when there is nothing to search (every group at or
    below one channel multiple)."""
    example = torch.zeros(1, *input_shape)
    with torch.no_grad():
        analysis = analyze(model, example, multiple)
    try:
        return example, analysis, SearchSpace.from_analysis(analysis, multiple)
    except ConfigError:
        return example, analysis, None


def enumerate_kernels(
    model: nn.Module,
    input_shape: tuple[int, int, int],
    multiple: int,
    precision: str = "fp32",
    ranks: bool = False,
    on_probe: Callable[[int, int], None] | None = None,
    max_per_position: int = MAX_PER_POSITION,
) -> list[KernelKey]:
    """Distinct kernels the search space of ``model`` can produce at ``multiple``, in network order.

    The space is the widest any compile can ask for (depth, width and keep genes all on), so a table
    that holds these kernels prices every candidate of every search of this network on this target.
    """
    base = extract_kernels(model, input_shape, precision)
    example, analysis, space = widest_space(model, input_shape, multiple)
    # effects[pos][gene][level] = what moving that gene to that level does to the kernel at pos
    effects: list[dict[int, dict[int, Delta]]] = [{} for _ in base]
    genes = [] if space is None else [i for i, g in enumerate(space.genes) if g.kind in ("width", "keep")]
    done = 0

    def probe(i: int, level: int) -> None:
        nonlocal done
        assert space is not None
        genome = space.unpruned()
        genome[i] = level
        pruned = apply_plan(model, space.decode(genome), example, analysis=analysis)
        keys = extract_kernels(pruned, input_shape, precision)
        if len(keys) != len(base):
            raise UnsupportedModelError(
                f"pruning {space.genes[i].name} changed the number of kernels ({len(base)} -> {len(keys)})"
            )
        for pos, (b, k) in enumerate(zip(base, keys, strict=True)):
            if k != b:
                effects[pos].setdefault(i, {})[level] = _delta(b, k)
        done += 1
        if on_probe:
            on_probe(done, len(genes) + len(later))

    later: list[tuple[int, int]] = []
    for i in genes:  # 1: which positions each gene touches (its narrowest level touches them all)
        probe(i, 0)
    wanted: dict[int, set[int]] = {i: set() for i in genes}
    assert space is not None or not genes
    levels_of = {i: list(range(space.genes[i].upper + 1)) for i in genes} if space else {}
    for by_gene in effects:  # 2: the levels each gene needs, position by position
        ks = allocate([len(levels_of[i]) for i in by_gene], max_per_position)
        for i, k in zip(by_gene, ks, strict=True):
            wanted[i].update(thin(levels_of[i], k))
    later = [(i, lv) for i in genes for lv in sorted(wanted[i]) if 0 < lv < len(levels_of[i]) - 1]
    for i, lv in later:
        probe(i, lv)
    seen: dict[KernelKey, None] = {}
    for b, by_gene in zip(base, effects, strict=True):
        ks = allocate([len(levels_of[i]) for i in by_gene], max_per_position)
        options = [
            [by_level.get(lv, ()) for lv in thin(levels_of[i], k)]  # the top level is the unpruned ()
            for (i, by_level), k in zip(by_gene.items(), ks, strict=True)
        ]
        for combo in product(*options):
            fields = dict(pair for delta in combo for pair in delta)
            key = b.with_channels(
                fields.get("cin", b.cin), fields.get("mid", b.mid), fields.get("cout", b.cout)
            )
            key = replace(key, groups=fields.get("groups", b.groups))
            for r in _rank_variants(b, key, multiple) if ranks else [key]:
                seen.setdefault(r, None)
    return list(seen)
