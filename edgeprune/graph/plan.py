"""Pruning plans: how many channels each group keeps, which residual blocks are dropped, which ranks.

A plan is plain data (JSON), versioned, and replays to the identical network. It is checked against
a :class:`ModelAnalysis` before use; :func:`predict_params` gives the parameter count of the network
a plan builds without building it (exactly: the search uses it as an objective). ``ranks`` factorise
layers after pruning (:mod:`edgeprune.graph.lowrank`); a plan without ranks serialises exactly as
before ranks existed, so caches and checkpoints of pruning-only searches stay valid.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from edgeprune.errors import ConfigError
from edgeprune.graph.analysis import ModelAnalysis, ParamShape
from edgeprune.graph.lowrank import factorised_params

PLAN_VERSION = 1
CRITERIA = ("l1", "l2", "bn_scale", "taylor")


@dataclass(frozen=True)
class PruningPlan:
    """Per-group kept channels, dropped blocks and the importance criterion that picks the channels."""

    keep: Mapping[str, int] = field(default_factory=dict)  # group name -> channels kept
    drop_blocks: tuple[str, ...] = ()  # residual blocks removed (depth genes)
    criterion: str = "l1"  # "l1" | "l2" | "bn_scale" | "taylor"
    channel_multiple: int = 1
    version: int = PLAN_VERSION
    ranks: Mapping[str, int] = field(default_factory=dict)  # layer name -> rank of its factorisation

    def __post_init__(self) -> None:
        if self.criterion not in CRITERIA:
            raise ConfigError(
                f"unknown importance criterion {self.criterion!r} (use one of {', '.join(CRITERIA)})"
            )
        if self.channel_multiple < 1:
            raise ConfigError(f"channel multiple must be >= 1, got {self.channel_multiple}")
        if self.version != PLAN_VERSION:
            raise ConfigError(
                f"pruning plan version {self.version} is not supported (this edgeprune reads {PLAN_VERSION})"
            )
        for name, k in self.keep.items():
            if not isinstance(k, int) or isinstance(k, bool) or k < 1:
                raise ConfigError(
                    f"plan keeps {k!r} channels of {name!r}; a kept count is a positive integer"
                )
        for name, r in self.ranks.items():
            if not isinstance(r, int) or isinstance(r, bool) or r < 1:
                raise ConfigError(f"plan gives {name!r} rank {r!r}; a rank is a positive integer")
        object.__setattr__(self, "keep", dict(sorted(self.keep.items())))
        object.__setattr__(self, "ranks", dict(sorted(self.ranks.items())))
        object.__setattr__(self, "drop_blocks", tuple(sorted(set(self.drop_blocks))))

    def __hash__(self) -> int:
        return hash(self.key())

    def to_dict(self) -> dict[str, Any]:
        """Plain data, stable order."""
        out: dict[str, Any] = {
            "version": self.version,
            "criterion": self.criterion,
            "channel_multiple": self.channel_multiple,
            "keep": dict(self.keep),
            "drop_blocks": list(self.drop_blocks),
        }
        if self.ranks:
            out["ranks"] = dict(self.ranks)
        return out

    def to_json(self) -> str:
        """Canonical JSON (sorted keys, no whitespace variation)."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, s: str) -> PruningPlan:
        """Parse :meth:`to_json` output; malformed input raises :class:`ConfigError`."""
        try:
            data = json.loads(s)
        except (TypeError, json.JSONDecodeError) as err:
            raise ConfigError(f"pruning plan is not valid JSON: {err}") from None
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: Any) -> PruningPlan:
        """Build from plain data; unknown or ill-typed fields raise :class:`ConfigError`."""
        if not isinstance(data, dict):
            raise ConfigError("pruning plan must be a JSON object")
        unknown = set(data) - {"version", "criterion", "channel_multiple", "keep", "drop_blocks", "ranks"}
        if unknown:
            raise ConfigError(f"pruning plan has unknown field {sorted(unknown)[0]!r}")
        keep = data.get("keep", {})
        drop = data.get("drop_blocks", [])
        ranks = data.get("ranks", {})
        if not isinstance(ranks, dict):
            raise ConfigError("pruning plan: 'ranks' must map layer names to ranks")
        if (
            not isinstance(keep, dict)
            or not isinstance(drop, list)
            or not all(isinstance(b, str) for b in drop)
        ):
            raise ConfigError(
                "pruning plan: 'keep' must map group names to counts, 'drop_blocks' list block names"
            )
        return cls(
            keep={str(k): v for k, v in keep.items()},
            drop_blocks=tuple(drop),
            criterion=str(data.get("criterion", "l1")),
            channel_multiple=int(data.get("channel_multiple", 1)),
            version=int(data.get("version", PLAN_VERSION)),
            ranks={str(k): v for k, v in ranks.items()},
        )

    def key(self) -> str:
        """A canonical hashable string (cache key): equal plans have equal keys."""
        return self.to_json()


def round_channels(c: float, multiple: int, maximum: int) -> int:
    """Round ``c`` to the nearest multiple of ``multiple``, at least one multiple, at most ``maximum``.

    ``maximum`` itself is always allowed (the unpruned width need not be a multiple).
    """
    if multiple < 1:
        raise ConfigError(f"channel multiple must be >= 1, got {multiple}")
    if maximum <= multiple or c >= maximum:
        return maximum
    k = max(1, int(math.floor(c / multiple + 0.5)))
    return min(k * multiple, maximum)


def validate_plan(analysis: ModelAnalysis, plan: PruningPlan) -> None:
    """Raise :class:`ConfigError` naming the first group / block of ``plan`` that ``analysis`` rejects."""
    groups = {g.name: g for g in analysis.groups}
    fixed = {f.name: f for f in analysis.fixed}
    for name, k in plan.keep.items():
        if name not in groups:
            if name in fixed:
                raise ConfigError(f"plan prunes group {name!r}, which cannot be pruned: {fixed[name].reason}")
            raise ConfigError(f"plan names unknown channel group {name!r}")
        c = groups[name].channels
        if k > c:
            raise ConfigError(f"plan keeps {k} channels of {name!r}, which has only {c}")
        if k != c and k % plan.channel_multiple:
            raise ConfigError(
                f"plan keeps {k} channels of {name!r}: not a multiple of {plan.channel_multiple}"
            )
    blocks = {b.name for b in analysis.blocks}
    for b in plan.drop_blocks:
        if b not in blocks:
            raise ConfigError(f"plan drops {b!r}, which is not a droppable residual block")
    if plan.ranks:
        layers = factorisable_layers(analysis)
        kept = kept_channels(analysis, plan)
        for name, r in plan.ranks.items():
            if name not in layers:
                raise ConfigError(
                    f"plan gives a rank to {name!r}, which is not a factorisable layer "
                    "(a Conv2d with groups 1 and a kernel larger than 1x1, or a Linear)"
                )
            if _in_blocks(name, plan.drop_blocks):
                raise ConfigError(f"plan gives a rank to {name!r}, whose block the plan drops")
            cout, cin, k = layer_shape(layers[name], kept)
            most = min(cout, cin * k * k)
            if r > most:
                raise ConfigError(
                    f"rank {r} for layer {name!r} is larger than the layer allows: at most {most} "
                    f"(min of {cout} outputs and {cin}x{k}x{k} inputs after pruning)"
                )


def _in_blocks(name: str, blocks: tuple[str, ...]) -> bool:
    return any(name.startswith(b + ".") for b in blocks)


def kept_channels(analysis: ModelAnalysis, plan: PruningPlan) -> dict[str, int]:
    """Channels every prunable group keeps under ``plan``."""
    return {g.name: plan.keep.get(g.name, g.channels) for g in analysis.groups}


def pruned_shape(p: ParamShape, kept: Mapping[str, int]) -> tuple[int, ...]:
    """A parameter's shape once its groups keep ``kept`` channels."""
    sizes = list(p.shape)
    for d in p.dims:
        sizes[d.dim] = d.fixed + sum(m * kept[g] for g, m in d.shares)
    return tuple(sizes)


def factorisable_layers(analysis: ModelAnalysis) -> dict[str, ParamShape]:
    """Layers a rank can factorise (groups-1 k×k convs with k > 1, linears) → their weight's shape."""
    weights = {p.name: p for p in analysis.param_shapes}
    out = {}
    for layer in analysis.layers:
        ks = tuple(layer.kernel_size)
        conv = layer.type == "Conv2d" and layer.groups == 1 and len(ks) == 2 and ks[0] == ks[1] > 1
        if (conv or layer.type == "Linear") and f"{layer.name}.weight" in weights:
            out[layer.name] = weights[f"{layer.name}.weight"]
    return out


def layer_shape(weight: ParamShape, kept: Mapping[str, int]) -> tuple[int, int, int]:
    """``(cout, cin, k)`` of a factorisable layer after pruning (``k`` = 1 for a linear layer)."""
    shape = pruned_shape(weight, kept)
    return shape[0], shape[1], shape[2] if len(shape) == 4 else 1


def predict_params(analysis: ModelAnalysis, plan: PruningPlan) -> int:
    """Parameter count of the network ``plan`` builds, computed from the analysis alone."""
    validate_plan(analysis, plan)
    kept = kept_channels(analysis, plan)
    factorised = {f"{name}.weight": r for name, r in plan.ranks.items()}
    total = 0
    for p in analysis.param_shapes:
        if _in_blocks(p.name, plan.drop_blocks):
            continue
        sizes = pruned_shape(p, kept)
        if p.name in factorised:
            cin_k = math.prod(sizes[1:])
            total += factorised_params(factorised[p.name], cin_k, sizes[0], 1)
        else:
            total += math.prod(sizes)
    return total


def uniform_plan(
    analysis: ModelAnalysis, ratio: float, channel_multiple: int = 1, criterion: str = "l1"
) -> PruningPlan:
    """Prune every prunable group by ``ratio`` (0.3 keeps ~70% of each group's channels), no blocks dropped."""
    if not 0.0 <= ratio < 1.0:
        raise ConfigError(f"pruning ratio must be in [0, 1), got {ratio}")
    keep = {}
    for g in analysis.groups:
        k = round_channels(g.channels * (1.0 - ratio), channel_multiple, g.channels)
        if k != g.channels:
            keep[g.name] = k
    return PruningPlan(keep=keep, drop_blocks=(), criterion=criterion, channel_multiple=channel_multiple)
