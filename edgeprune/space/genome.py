"""The search space: architecture genes and filter-pruning genes over one analysed network.

A genome is a vector of small integers, one per gene:

* ``depth:<stage>`` — how many of the stage's droppable (identity-shortcut) blocks are kept; the
  trailing ones are dropped first (architecture gene, Bi-CNN-D-C's "number of blocks");
* ``width:<group>`` — the kept width of a residual stream ("stage" group): architecture gene;
* ``keep:<group>`` — the kept channels of any other prunable group: filter-pruning gene;
* ``rank:<layer>`` — (with ``rank_genes``) the rank of a layer's low-rank factorisation: the levels
  are the ranks at the channel multiple that save ≥ 25 % of the unpruned layer, then the layer's full
  rank, which stands for "not factorised" (compression gene, Neurocomputing 2020).

A gene's value indexes its *levels*: the channel counts that are multiples of the target's channel
multiple, plus the full count (so the unpruned network is always a genome). :meth:`SearchSpace.decode`
is pure and deterministic; genes that cannot matter (the inner widths of a dropped block) are dropped
from the plan, so two genomes that build the same network decode to the same plan. A rank that no
longer saves anything at the layer's pruned width (say rank 32 of a conv pruned to 32 outputs) is
repaired away in the same way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from edgeprune.errors import ConfigError
from edgeprune.graph import ModelAnalysis, PruningPlan
from edgeprune.graph.analysis import ParamShape
from edgeprune.graph.lowrank import full_rank, rank_levels, saves
from edgeprune.graph.plan import factorisable_layers, layer_shape

GeneKind = Literal["depth", "width", "keep", "rank"]


@dataclass(frozen=True)
class Gene:
    """One integer decision variable and the values its indices stand for."""

    name: str  # "depth:layer2", "width:<group>", "keep:<group>", "rank:<layer>"
    kind: GeneKind
    target: str  # stage name (depth), channel-group name (width / keep) or layer name (rank)
    levels: tuple[int, ...]  # increasing; the last level is the unpruned value
    block: str | None = None  # for keep genes inside a droppable block: that block's name

    @property
    def is_architecture(self) -> bool:
        return self.kind in ("depth", "width")

    @property
    def upper(self) -> int:
        return len(self.levels) - 1


def channel_levels(channels: int, multiple: int) -> tuple[int, ...]:
    """Kept-channel counts a gene may take: multiples of ``multiple`` below ``channels``, then ``channels``."""
    if channels <= multiple:
        return (channels,)
    return (*range(multiple, channels, multiple), channels)


def _block_of(layers: tuple[str, ...], blocks: tuple[str, ...]) -> str | None:
    for b in blocks:
        prefix = b + "."
        if layers and all(name.startswith(prefix) for name in layers):
            return b
    return None


@dataclass(frozen=True)
class SearchSpace:
    """The genes of one network at one channel multiple, with decode/encode and repair."""

    genes: tuple[Gene, ...]
    stage_blocks: dict[str, tuple[str, ...]]  # stage -> its droppable blocks, in order
    channel_multiple: int
    criterion: str
    # rank genes: each factorisable layer's weight shape and every group's full width (for repair)
    rank_weights: dict[str, ParamShape] = field(default_factory=dict)
    group_widths: dict[str, int] = field(default_factory=dict)

    # --- construction ------------------------------------------------------------------------------
    @classmethod
    def from_analysis(
        cls,
        analysis: ModelAnalysis,
        channel_multiple: int,
        *,
        criterion: str = "l1",
        depth_genes: bool = True,
        width_genes: bool = True,
        rank_genes: bool = False,
    ) -> SearchSpace:
        """Build the space of ``analysis``; every prunable group gets a gene (and, with ``rank_genes``,
        every factorisable layer that has a rank level worth taking)."""
        if channel_multiple < 1:
            raise ConfigError(f"channel multiple must be >= 1, got {channel_multiple}")
        stage_blocks: dict[str, tuple[str, ...]] = {}
        for b in analysis.blocks:
            stage_blocks.setdefault(b.stage, ())
            stage_blocks[b.stage] = (*stage_blocks[b.stage], b.name)
        if not depth_genes:
            stage_blocks = {}
        all_blocks = tuple(b for bs in stage_blocks.values() for b in bs)
        genes: list[Gene] = [
            Gene(f"depth:{stage}", "depth", stage, tuple(range(len(bs) + 1)))
            for stage, bs in stage_blocks.items()
        ]
        for g in analysis.groups:
            levels = channel_levels(g.channels, channel_multiple)
            if len(levels) < 2:
                continue
            if g.kind == "stage":
                if width_genes:
                    genes.append(Gene(f"width:{g.name}", "width", g.name, levels))
                continue
            genes.append(Gene(f"keep:{g.name}", "keep", g.name, levels, _block_of(g.layers, all_blocks)))
        widths = {g.name: g.channels for g in analysis.groups}
        rank_weights: dict[str, ParamShape] = {}
        if rank_genes:
            for layer, weight in factorisable_layers(analysis).items():
                cout, cin, k = layer_shape(weight, widths)
                levels = rank_levels(cin, cout, k, channel_multiple)
                if levels:
                    rank_weights[layer] = weight
                    full = (*levels, full_rank(cin, cout, k))
                    genes.append(Gene(f"rank:{layer}", "rank", layer, full, _block_of((layer,), all_blocks)))
        if not genes:
            raise ConfigError(
                "the model has nothing to search: no prunable group wider than one channel multiple"
            )
        return cls(tuple(genes), stage_blocks, channel_multiple, criterion, rank_weights, widths)

    # --- sizes and bounds --------------------------------------------------------------------------
    @property
    def n_var(self) -> int:
        return len(self.genes)

    @property
    def upper_bounds(self) -> np.ndarray:
        return np.array([g.upper for g in self.genes], dtype=int)

    @property
    def size(self) -> int:
        """Number of distinct genomes (not of distinct networks: dropped blocks alias)."""
        return math.prod(len(g.levels) for g in self.genes)

    def unpruned(self) -> np.ndarray:
        """The genome of the original network."""
        return self.upper_bounds.copy()

    # --- genome <-> plan ---------------------------------------------------------------------------
    def repair(self, genome: np.ndarray) -> np.ndarray:
        """Round and clip any real vector into a valid genome."""
        x = np.rint(np.asarray(genome, dtype=float)).astype(int)
        if x.shape != (self.n_var,):
            raise ConfigError(f"genome has {x.size} genes, the space has {self.n_var}")
        return np.clip(x, 0, self.upper_bounds)

    def decode(self, genome: np.ndarray) -> PruningPlan:
        """The pruning plan a genome stands for (pure; unused genes are ignored)."""
        x = self.repair(genome)
        dropped: list[str] = []
        for gene, v in zip(self.genes, x, strict=True):
            if gene.kind == "depth":
                blocks = self.stage_blocks[gene.target]
                dropped.extend(blocks[gene.levels[v] :])
        dropped_set = set(dropped)
        keep: dict[str, int] = {}
        wanted: dict[str, int] = {}
        for gene, v in zip(self.genes, x, strict=True):
            if gene.kind == "depth" or (gene.block is not None and gene.block in dropped_set):
                continue
            if v != gene.upper:
                (wanted if gene.kind == "rank" else keep)[gene.target] = gene.levels[v]
        ranks: dict[str, int] = {}
        if wanted:
            kept = {**self.group_widths, **keep}
            for layer, r in wanted.items():
                cout, cin, k = layer_shape(self.rank_weights[layer], kept)
                if saves(r, cin, cout, k):
                    ranks[layer] = r
        return PruningPlan(
            keep=dict(sorted(keep.items())),
            drop_blocks=tuple(sorted(dropped)),
            criterion=self.criterion,
            channel_multiple=self.channel_multiple,
            ranks=ranks,
        )

    def encode(self, plan: PruningPlan) -> np.ndarray:
        """A genome that decodes to ``plan`` (inverse of :meth:`decode` on canonical plans)."""
        x = self.unpruned()
        for i, gene in enumerate(self.genes):
            if gene.kind == "depth":
                blocks = self.stage_blocks[gene.target]
                kept = [b for b in blocks if b not in plan.drop_blocks]
                x[i] = len(kept)
            elif gene.kind == "rank":
                if gene.target in plan.ranks:
                    want = plan.ranks[gene.target]
                    if want not in gene.levels[:-1]:
                        raise ConfigError(
                            f"plan gives {gene.target} rank {want}; allowed: {gene.levels[:-1]}"
                        )
                    x[i] = gene.levels.index(want)
            elif gene.target in plan.keep:
                want = plan.keep[gene.target]
                if want not in gene.levels:
                    raise ConfigError(f"plan keeps {want} channels of {gene.target}; allowed: {gene.levels}")
                x[i] = gene.levels.index(want)
        return x

    def uniform(self, ratio: float, architecture: bool = True) -> np.ndarray:
        """Prune every channel gene by ``ratio`` (0 = unpruned), rounded to the nearest level; depth kept."""
        x = self.unpruned()
        for i, gene in enumerate(self.genes):
            if gene.kind in ("depth", "rank") or (gene.kind == "width" and not architecture):
                continue
            full = gene.levels[-1]
            want = full * (1.0 - ratio)
            x[i] = int(np.argmin([abs(level - want) for level in gene.levels]))
        return x

    def shallow(self, ratio: float) -> np.ndarray:
        """Drop ``ratio`` of every stage's droppable blocks (rounded; trailing first); widths unpruned."""
        x = self.unpruned()
        for i, gene in enumerate(self.genes):
            if gene.kind == "depth":
                x[i] = int(round(gene.upper * (1.0 - ratio)))
        return x

    def random(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` uniformly random genomes."""
        return rng.integers(0, self.upper_bounds + 1, size=(n, self.n_var))

    def spread(self, rng: np.random.Generator, n: int, jitter: float = 0.2) -> np.ndarray:
        """``n`` random genomes whose overall size is spread from the smallest network to the unpruned one.

        Uniform genomes (:meth:`random`) all have about the same size, a sum of many independent genes,
        while a search's front runs from its smallest networks to the unpruned one. Genome ``i`` draws a
        centre ``c`` stratified over [0, 1] (one per ``1/n`` slice, in random order), and every gene the
        index nearest to ``upper · (c + N(0, jitter))``, clipped to its levels.
        """
        centres = (rng.permutation(n) + rng.uniform(0.0, 1.0, n)) / max(n, 1)
        frac = np.clip(centres[:, None] + rng.normal(0.0, jitter, (n, self.n_var)), 0.0, 1.0)
        return np.rint(frac * self.upper_bounds).astype(int)

    def describe(self) -> list[tuple[str, str, str]]:
        """(gene, kind, levels) rows for printing."""
        rows: list[tuple[str, str, str]] = []
        for g in self.genes:
            levels = ",".join(map(str, g.levels[:-1] if g.kind == "rank" else g.levels))
            rows.append((g.name, g.kind, levels + (",unfactorised" if g.kind == "rank" else "")))
        return rows
