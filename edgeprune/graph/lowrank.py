"""Low-rank factorisation: the rank genes of multiobjective compression learning (Neurocomputing 2020).

A ``k×k`` convolution with weight ``W`` (``cout × cin × k × k``) is replaced by two: a ``k×k``
convolution from ``cin`` to ``r`` channels (same stride, padding and dilation) followed by a ``1×1``
convolution from ``r`` to ``cout`` channels that carries the original bias. The weights come from the
truncated SVD of ``W`` reshaped to ``cout × (cin·k·k)``: ``W ≈ U_r S_r V_rᵀ``, the first conv gets
``S_r^½ V_rᵀ`` and the second ``U_r S_r^½`` — the best rank-``r`` approximation (Eckart–Young), so the
approximate compressed model is scored without retraining. A linear layer becomes ``in → r → out``.

Both halves are ordinary ``Conv2d`` / ``Linear`` layers, so the factorised network exports to ONNX and
runs on every runtime unchanged. Factorising saves parameters and MACs only when
``r·(cin·k² + cout) < cout·cin·k²``; a rank gene offers only ranks at the target's channel multiple
that save at least :data:`MIN_SAVING` of the layer at its unpruned width.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import cast

import torch
from torch import nn

from edgeprune.errors import ConfigError

MIN_SAVING = 0.25  # a rank level must save at least this share of the unpruned layer's parameters


def full_rank(cin: int, cout: int, k: int) -> int:
    """The largest meaningful rank of a ``cout × cin × k × k`` kernel."""
    return min(cout, cin * k * k)


def saves(rank: int, cin: int, cout: int, k: int) -> bool:
    """Whether factorising at ``rank`` has fewer parameters (and MACs) than the layer itself."""
    return factorised_params(rank, cin, cout, k) < cout * cin * k * k


def factorised_params(rank: int, cin: int, cout: int, k: int) -> int:
    """Weights of the two factors (the bias, if any, is counted separately)."""
    return rank * (cin * k * k + cout)


def rank_levels(cin: int, cout: int, k: int, multiple: int) -> tuple[int, ...]:
    """Ranks a gene may take: multiples of ``multiple`` that save ≥ :data:`MIN_SAVING` of the layer."""
    limit = (1.0 - MIN_SAVING) * cout * cin * k * k
    return tuple(
        r
        for r in range(multiple, full_rank(cin, cout, k), multiple)
        if factorised_params(r, cin, cout, k) <= limit
    )


class FactorisedConv(nn.Module):
    """``k×k`` conv to ``rank`` channels, then ``1×1`` conv to ``cout`` (exposes ``Conv2d``'s geometry)."""

    def __init__(self, spatial: nn.Conv2d, pointwise: nn.Conv2d):
        super().__init__()
        self.spatial = spatial
        self.pointwise = pointwise

    @property
    def rank(self) -> int:
        return self.spatial.out_channels

    @property
    def in_channels(self) -> int:
        return self.spatial.in_channels

    @property
    def out_channels(self) -> int:
        return self.pointwise.out_channels

    @property
    def kernel_size(self) -> tuple[int, ...]:
        return tuple(self.spatial.kernel_size)

    @property
    def stride(self) -> tuple[int, ...]:
        return tuple(self.spatial.stride)

    @property
    def groups(self) -> int:
        return 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.spatial(x))


class FactorisedLinear(nn.Module):
    """``in → rank → out`` (the second layer carries the bias)."""

    def __init__(self, down: nn.Linear, up: nn.Linear):
        super().__init__()
        self.down = down
        self.up = up

    @property
    def rank(self) -> int:
        return self.down.out_features

    @property
    def in_features(self) -> int:
        return self.down.in_features

    @property
    def out_features(self) -> int:
        return self.up.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(self.down(x))


def _svd_factors(w2d: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(A, B)`` with ``A @ B`` the best rank-``rank`` approximation of ``w2d`` (``A``: out × r)."""
    u, s, vh = torch.linalg.svd(w2d.detach().double(), full_matrices=False)
    root = s[:rank].sqrt()
    return (u[:, :rank] * root).to(w2d.dtype), (root[:, None] * vh[:rank]).to(w2d.dtype)


def factorise(layer: nn.Module, rank: int, name: str = "layer") -> nn.Module:
    """The rank-``rank`` factorisation of a ``Conv2d`` (groups 1) or ``Linear``; ``ConfigError`` if it cannot be."""
    if not isinstance(layer, (nn.Conv2d, nn.Linear)):
        raise ConfigError(
            f"layer {name!r} is a {type(layer).__name__}; only Conv2d and Linear layers take a rank"
        )
    if isinstance(layer, nn.Conv2d) and (
        layer.groups != 1 or layer.padding_mode != "zeros" or isinstance(layer.padding, str)
    ):
        raise ConfigError(f"layer {name!r} cannot be factorised (grouped, or padding {layer.padding!r})")
    w2d = layer.weight.reshape(layer.weight.shape[0], -1)  # cout x (cin·k·k), or out x in
    most = min(w2d.shape)
    if not 1 <= rank <= most:
        raise ConfigError(f"rank {rank} for layer {name!r} is out of range: that layer allows 1 to {most}")
    a, b = _svd_factors(w2d, rank)
    first: nn.Conv2d | nn.Linear
    second: nn.Conv2d | nn.Linear
    if isinstance(layer, nn.Conv2d):
        cout, cin, kh, kw = layer.weight.shape
        stride, padding, dilation = (
            cast(tuple[int, int], tuple(v)) for v in (layer.stride, layer.padding, layer.dilation)
        )
        first = nn.Conv2d(cin, rank, (kh, kw), stride, padding, dilation, bias=False)
        second = nn.Conv2d(rank, cout, 1, bias=layer.bias is not None)
    else:
        first = nn.Linear(layer.in_features, rank, bias=False)
        second = nn.Linear(rank, layer.out_features, bias=layer.bias is not None)
    with torch.no_grad():
        first.weight.copy_(b.reshape(first.weight.shape))
        second.weight.copy_(a.reshape(second.weight.shape))
        if layer.bias is not None and second.bias is not None:
            second.bias.copy_(layer.bias)
    if isinstance(layer, nn.Conv2d):
        return FactorisedConv(cast(nn.Conv2d, first), cast(nn.Conv2d, second)).to(layer.weight.device)
    return FactorisedLinear(cast(nn.Linear, first), cast(nn.Linear, second)).to(layer.weight.device)


def apply_ranks(model: nn.Module, ranks: Mapping[str, int]) -> None:
    """Factorise ``model``'s layers in place (``ranks``: layer name → rank)."""
    for name, rank in sorted(ranks.items()):
        try:
            layer = model.get_submodule(name)
        except AttributeError:
            raise ConfigError(f"plan gives a rank to {name!r}, which is not a layer of the network") from None
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, factorise(layer, rank, name))
