"""The torch-pruning pruner for :class:`~edgeprune.models.cifar_resnet.EmbedShortcut`.

The option-A shortcut is a fixed 0/1 matrix ``embed`` (out, in, 1, 1): pruning its output channels
drops rows, pruning its input channels drops columns. Registered as a customized pruner, it lets the
dependency graph treat the shortcut as a channel mapping that decouples the residual streams of two
stages, which is what makes pruning those streams correct.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import torch_pruning as tp
from torch import nn

from edgeprune.models.cifar_resnet import EmbedShortcut


class EmbedShortcutPruner(tp.pruner.BasePruningFunc):
    """Slice the ``embed`` buffer of an :class:`EmbedShortcut` along its out (0) or in (1) dimension."""

    TARGET_MODULES = (EmbedShortcut,)

    def prune_out_channels(self, layer: nn.Module, idxs: Sequence[int]) -> nn.Module:
        sc = cast(EmbedShortcut, layer)
        keep = sorted(set(range(sc.out_channels)) - {int(i) for i in idxs})
        sc.embed = sc.embed[keep].contiguous()
        return sc

    def prune_in_channels(self, layer: nn.Module, idxs: Sequence[int]) -> nn.Module:
        sc = cast(EmbedShortcut, layer)
        keep = sorted(set(range(sc.in_channels)) - {int(i) for i in idxs})
        sc.embed = sc.embed[:, keep].contiguous()
        return sc

    def get_out_channels(self, layer: nn.Module) -> int:
        return cast(EmbedShortcut, layer).out_channels

    def get_in_channels(self, layer: nn.Module) -> int:
        return cast(EmbedShortcut, layer).in_channels


def customized_pruners() -> dict[type, tp.pruner.BasePruningFunc]:
    """The layer types edgeprune adds to torch-pruning's table (a fresh instance per graph)."""
    return {EmbedShortcut: EmbedShortcutPruner()}
