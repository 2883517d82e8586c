"""Build the small ONNX models that time one kernel in context.

A kernel is timed as ``t(context + kernel) − t(context)``: the context is a 3×3 conv + ReLU that
produces the kernel's input at its resolution, so the kernel sees the same fused, blocked layout as
inside a network and the empty-call overhead cancels. A kernel that reads the network input
(``variant`` starting with ``input``) is timed alone, minus the empty call (an Identity model).
"""

from __future__ import annotations

import io
import warnings

import torch
from torch import nn

from edgeprune.errors import ProfileError
from edgeprune.graph.lowrank import apply_ranks, factorise
from edgeprune.latency.kernels import KernelKey

ONNX_OPSET = 17


class _GapLinear(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.linear = nn.Linear(cin, cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(torch.nn.functional.adaptive_avg_pool2d(x, 1).flatten(1))


class _Embed(nn.Module):
    """A pruned option-A shortcut: a 0/1 1x1 conv (as :class:`EmbedShortcut`) of any shape."""

    embed: torch.Tensor

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        embed = torch.zeros(cout, cin, 1, 1)
        for i in range(min(cin, cout)):
            embed[i, i] = 1.0
        self.stride = stride
        self.register_buffer("embed", embed)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.conv2d(x, self.embed, stride=self.stride)


def kernel_module(key: KernelKey) -> nn.Module:
    """A module that runs exactly ``key`` (random weights: timing does not depend on values)."""
    module = _plain_module(key)
    ranks = key.ranks
    if not ranks:
        return module
    if key.op == "linear":  # the module is the layer itself
        return factorise(module, ranks[0])
    layers = {"cifar_block": ("conv1", "conv2"), "conv": ("0",), "gap_linear": ("linear",)}[key.op]
    apply_ranks(module, {n: r for n, r in zip(layers, ranks, strict=True) if r})
    return module


def _plain_module(key: KernelKey) -> nn.Module:
    if key.op == "cifar_block":
        from edgeprune.models.cifar_resnet import BasicBlock

        if key.cin > key.cout:  # a pruned stream can narrow: BasicBlock's embedding cannot be built
            block = BasicBlock(key.cout, key.cout, key.stride, mid_planes=key.mid)
            block.conv1 = nn.Conv2d(key.cin, key.mid, 3, key.stride, 1, bias=False)
            block.shortcut = _Embed(key.cin, key.cout, key.stride)
            return block
        return BasicBlock(key.cin, key.cout, key.stride, mid_planes=key.mid)
    if key.op == "inverted_residual":
        from edgeprune.models.tv_compat import torchvision_models

        ir_cls = torchvision_models().mobilenetv2.InvertedResidual
        ratio = 1 if key.variant.endswith("noexpand") else key.mid / key.cin
        if ratio == 1 and not key.variant.endswith("noexpand"):
            ratio = 1 + 1e-9  # keep the 1x1 expansion (torchvision drops it at ratio exactly 1)
        block = ir_cls(key.cin, key.cout, key.stride, ratio)
        if key.k != 3:
            raise ProfileError(
                f"inverted residual with a {key.k}x{key.k} depthwise conv is not supported: {key}"
            )
        return block
    if key.op == "conv":
        from edgeprune.latency.kernels import HSWISH

        return nn.Sequential(
            nn.Conv2d(key.cin, key.cout, key.k, key.stride, key.k // 2, groups=key.groups, bias=False),
            nn.BatchNorm2d(key.cout),
            nn.Hardswish() if HSWISH in key.variant.split("-") else nn.ReLU(),
        )
    if key.op == "se":
        from edgeprune.models.tv_compat import import_torchvision

        return import_torchvision().ops.misc.SqueezeExcitation(key.cin, key.mid)
    if key.op == "gap_linear":
        return _GapLinear(key.cin, key.cout)
    if key.op == "linear":
        return nn.Linear(key.cin, key.cout)
    raise ProfileError(f"no kernel model for op {key.op!r}")


def _context(cin: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, cin, 3, 1, 1, bias=False), nn.ReLU())


def input_shape_of(key: KernelKey) -> tuple[int, ...]:
    """Shape the kernel reads (NCHW, batch 1; a plain linear reads (1, cin))."""
    if key.op == "linear":
        return (1, key.cin)
    return (1, key.cin, key.h, key.w)


def export_onnx(module: nn.Module, shape: tuple[int, ...]) -> bytes:
    """ONNX bytes of ``module`` in eval mode (legacy TorchScript exporter: ~0.05 s per model)."""
    module.eval()
    buf = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation notice; it is ~100x faster here
        torch.onnx.export(
            module,
            (torch.zeros(*shape),),
            buf,  # type: ignore[arg-type]
            dynamo=False,
            opset_version=ONNX_OPSET,
            input_names=["x"],
            output_names=["y"],
        )
    return buf.getvalue()


def empty_model() -> bytes:
    """An Identity model: the cost of one runtime call with nothing to compute."""
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 1, 1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, 1, 1])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "empty", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", ONNX_OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def kernel_models(key: KernelKey, seed: int = 0) -> tuple[bytes, bytes]:
    """``(baseline, with_kernel)`` ONNX models whose time difference is the kernel's time."""
    with torch.random.fork_rng(devices=[]):  # random weights without touching the caller's RNG
        torch.manual_seed(seed)
        module = kernel_module(key)
        ctx = _context(key.cin)
    if key.variant.startswith("input") or key.op == "linear":
        return empty_model(), export_onnx(module, input_shape_of(key))
    shape = (1, 3, key.h, key.w)
    return export_onnx(ctx, shape), export_onnx(nn.Sequential(ctx, module), shape)
