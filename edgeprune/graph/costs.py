"""Per-layer cost of a network: parameters, multiply-accumulates, channels and output size.

MACs count convolutions (including the parameter-free option-A shortcut, which runs as a 1x1 conv)
and linear layers; normalisation and activations are not counted. Measured with forward hooks on one
example input, so they hold for that input size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from edgeprune.graph.tracing import forward_with_hooks
from edgeprune.models.cifar_resnet import EmbedShortcut

_COSTED = (nn.modules.conv._ConvNd, nn.Linear, nn.modules.batchnorm._BatchNorm, nn.LayerNorm, EmbedShortcut)


@dataclass(frozen=True)
class LayerCost:
    """What one layer costs at the analysed input size."""

    name: str
    type: str  # class name, e.g. "Conv2d"
    params: int
    macs: int
    in_channels: int
    out_channels: int
    output_hw: tuple[int, int] | None  # spatial size of the output; None for linear layers
    groups: int = 1
    kernel_size: tuple[int, ...] = ()
    stride: tuple[int, ...] = ()


def _macs(module: nn.Module, out: torch.Tensor) -> int:
    per_sample = out[0].numel() if out.dim() > 1 else out.numel()
    if isinstance(module, nn.modules.conv._ConvNd):
        return per_sample * (module.in_channels // module.groups) * math.prod(module.kernel_size)
    if isinstance(module, EmbedShortcut):
        return per_sample * module.in_channels
    if isinstance(module, nn.Linear):
        return per_sample * module.in_features
    return 0


def _channels(module: nn.Module) -> tuple[int, int]:
    if isinstance(module, nn.Linear):
        return module.in_features, module.out_features
    if isinstance(module, (nn.modules.conv._ConvNd, EmbedShortcut)):
        return int(module.in_channels), int(module.out_channels)
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        return module.num_features, module.num_features
    if isinstance(module, nn.LayerNorm):
        return module.normalized_shape[-1], module.normalized_shape[-1]
    return 0, 0


def layer_costs(model: nn.Module, example_input: torch.Tensor) -> list[LayerCost]:
    """The cost of every conv / linear / norm layer of ``model`` on ``example_input`` (batch ignored)."""
    costs: dict[str, LayerCost] = {}
    hooks = []

    def hook(name: str):
        def fn(module: nn.Module, args: tuple[object, ...], out: object) -> None:
            if name in costs or not isinstance(out, torch.Tensor):
                return
            cin, cout = _channels(module)
            hw = (int(out.shape[-2]), int(out.shape[-1])) if out.dim() == 4 else None
            groups = 1
            kernel: tuple[int, ...] = ()
            stride: tuple[int, ...] = ()
            if isinstance(module, nn.modules.conv._ConvNd):
                groups, kernel, stride = int(module.groups), tuple(module.kernel_size), tuple(module.stride)
            elif isinstance(module, EmbedShortcut):
                stride = (int(module.stride),)
            costs[name] = LayerCost(
                name=name,
                type=type(module).__name__,
                params=sum(p.numel() for p in module.parameters(recurse=False)),
                macs=_macs(module, out),
                in_channels=cin,
                out_channels=cout,
                output_hw=hw,
                groups=groups,
                kernel_size=kernel,
                stride=stride,
            )

        return fn

    order = [name for name, m in model.named_modules() if isinstance(m, _COSTED)]
    for name, m in model.named_modules():
        if isinstance(m, _COSTED):
            hooks.append(m.register_forward_hook(hook(name)))
    forward_with_hooks(model, example_input, hooks, grad=False)
    return [costs[n] for n in order if n in costs]


def count_params(model: nn.Module) -> int:
    """Number of parameters (buffers such as the option-A embedding are not parameters)."""
    return sum(p.numel() for p in model.parameters())


def count_macs(model: nn.Module, example_input: torch.Tensor) -> int:
    """Multiply-accumulates of one forward pass of a single example (convs, shortcuts, linears)."""
    return sum(c.macs for c in layer_costs(model, example_input[:1]))
