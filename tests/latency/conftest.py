"""Helpers for the latency tests: pruned CIFAR ResNets built the way `graph.apply_plan` shapes them."""

from __future__ import annotations

import pytest
from torch import nn

from edgeprune.models.cifar_resnet import BasicBlock, CifarResNet


def pruned_resnet(counts: tuple[int, int, int], mids: list[list[int]], widths=(16, 32, 64)) -> nn.Module:
    """A CIFAR ResNet with ``counts`` blocks per stage and per-block inner widths ``mids``."""
    model = CifarResNet(counts, widths=widths)
    cin = widths[0]
    for s, layer in enumerate((model.layer1, model.layer2, model.layer3)):
        for i in range(len(layer)):
            stride = 2 if s > 0 and i == 0 else 1
            layer[i] = BasicBlock(cin, widths[s], stride, mid_planes=mids[s][i])
            cin = widths[s]
    return model.eval()


@pytest.fixture
def make_pruned_resnet():
    """The :func:`pruned_resnet` builder."""
    return pruned_resnet
