"""The CIFAR ResNets of He et al. (2016), 6n+2 layers, with the parameter-free "option A" shortcut.

Parameter names and shapes match github.com/akamaster/pytorch_resnet_cifar10, so its pretrained files
load unchanged. The downsampling shortcut (stride-2 subsampling + zero channels padded on both sides)
is written as a fixed 0/1 1x1 convolution (:class:`EmbedShortcut`), numerically identical to the pad
but visible to a dependency graph as a channel mapping: pruning then keeps the residual adds coupled
correctly (``F.pad`` on channels is read as a pass-through by torch-pruning and mis-prunes silently).
Its matrix is a non-persistent buffer, so it never appears in a state dict.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class EmbedShortcut(nn.Module):
    """``y = conv1x1(x, embed, stride)``: a parameter-free channel embedding with spatial subsampling.

    ``embed[o, i] = 1`` copies input channel ``i`` to output channel ``o``; output channels with no
    source are zero (the padding of option A).
    """

    embed: torch.Tensor

    def __init__(self, in_channels: int, out_channels: int, stride: int, offset: int | None = None):
        super().__init__()
        if offset is None:
            offset = (out_channels - in_channels) // 2
        embed = torch.zeros(out_channels, in_channels, 1, 1)
        for i in range(in_channels):
            embed[offset + i, i, 0, 0] = 1.0
        self.stride = stride
        self.register_buffer("embed", embed, persistent=False)

    @property
    def in_channels(self) -> int:
        return int(self.embed.shape[1])

    @property
    def out_channels(self) -> int:
        return int(self.embed.shape[0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.embed, stride=self.stride)

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, stride={self.stride}"


class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN, plus shortcut, then ReLU."""

    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1, mid_planes: int | None = None):
        super().__init__()
        mid = planes if mid_planes is None else mid_planes
        self.conv1 = nn.Conv2d(in_planes, mid, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(mid)
        self.conv2 = nn.Conv2d(mid, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut: nn.Module
        if stride != 1 or in_planes != planes:
            self.shortcut = EmbedShortcut(in_planes, planes, stride)
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """Stem conv + three stages of BasicBlocks + global average pool + linear."""

    def __init__(
        self,
        num_blocks: tuple[int, int, int] = (3, 3, 3),
        num_classes: int = 10,
        in_channels: int = 3,
        widths: tuple[int, int, int] = (16, 32, 64),
    ):
        super().__init__()
        self.in_planes = widths[0]
        self.conv1 = nn.Conv2d(in_channels, widths[0], 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.layer1 = self._make_layer(widths[0], num_blocks[0], stride=1)
        self.layer2 = self._make_layer(widths[1], num_blocks[1], stride=2)
        self.layer3 = self._make_layer(widths[2], num_blocks[2], stride=2)
        self.linear = nn.Linear(widths[2], num_classes)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight)

    def _make_layer(self, planes: int, blocks: int, stride: int) -> nn.Sequential:
        layers = []
        for s in [stride] + [1] * (blocks - 1):
            layers.append(BasicBlock(self.in_planes, planes, s))
            self.in_planes = planes
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)
        return self.linear(out)


def cifar_resnet(depth: int, num_classes: int = 10, in_channels: int = 3) -> CifarResNet:
    """A 6n+2-layer CIFAR ResNet (depth 20, 32, 44, 56, 110, ...)."""
    n, rest = divmod(depth - 2, 6)
    if rest or n < 1:
        raise ValueError(f"CIFAR ResNet depth must be 6n+2, got {depth}")
    return CifarResNet((n, n, n), num_classes=num_classes, in_channels=in_channels)
