"""Kernel keys: a network as the runtime executes it after fusion, one key per kernel.

A kernel is what ONNX Runtime runs as one unit once Conv+BN+ReLU are fused: a whole residual block
(a CIFAR ``BasicBlock``, a torchvision ``InvertedResidual``) measured in context so that the same
fusions and layout reorders happen as in the full network, a lone conv (+BN+activation), or the
global-average-pool + linear head. :func:`extract_kernels` traces a (pruned) ``nn.Module`` with
forward hooks and returns its kernels in execution order; the key is built from the layer's
configuration (Once-for-All style), never from parameter names, so a pruned network and a freshly
built one of the same shape share keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import torch
from torch import nn

from edgeprune.errors import UnsupportedModelError
from edgeprune.graph.lowrank import FactorisedConv, FactorisedLinear

OPS = ("cifar_block", "inverted_residual", "conv", "se", "gap_linear", "linear")
HSWISH = "hswish"  # variant tag: a conv followed by hard-swish (not fused into the conv, unlike ReLU)


@dataclass(frozen=True)
class ConvSpec:
    """One convolution (or a linear layer as a 1x1 conv on a 1x1 map): what a roofline needs."""

    h: int  # input height
    w: int  # input width
    cin: int
    cout: int
    k: int
    stride: int
    groups: int

    @property
    def out_hw(self) -> tuple[int, int]:
        pad = self.k // 2
        return (
            (self.h + 2 * pad - self.k) // self.stride + 1,
            (self.w + 2 * pad - self.k) // self.stride + 1,
        )

    @property
    def macs(self) -> int:
        oh, ow = self.out_hw
        return oh * ow * self.cout * (self.cin // self.groups) * self.k * self.k

    def bytes_moved(self, bytes_per_value: int) -> int:
        """Input + output activations + weights, each read or written once."""
        oh, ow = self.out_hw
        weights = self.cout * (self.cin // self.groups) * self.k * self.k
        return bytes_per_value * (self.h * self.w * self.cin + oh * ow * self.cout + weights)


@dataclass(frozen=True, order=True)
class KernelKey:
    """One fused kernel: ``op`` at input ``h``×``w`` with channels ``cin`` → ``mid`` → ``cout``.

    ``mid`` is the inner (prunable) width of a block (0 for single layers); ``k``/``stride``/``groups``
    describe the block's spatial conv; ``variant`` distinguishes structural options
    (``input`` = reads the network input directly; ``noexpand`` = inverted residual without its 1x1
    expansion; ``lr16-32`` = a CIFAR block whose conv1 / conv2 are factorised at ranks 16 / 32, 0 for
    a conv left whole; ``lr16`` = a factorised single conv or linear layer). Precision lives in the
    key so fp16 and int8 tables can share a file.
    """

    op: str
    h: int
    w: int
    cin: int
    mid: int
    cout: int
    k: int = 3
    stride: int = 1
    groups: int = 1
    variant: str = ""
    precision: str = "fp32"

    def __str__(self) -> str:
        return (
            f"{self.op}/h{self.h}w{self.w}/c{self.cin}-{self.mid}-{self.cout}"
            f"/k{self.k}s{self.stride}g{self.groups}/{self.variant or '-'}/{self.precision}"
        )

    @classmethod
    def parse(cls, text: str) -> KernelKey:
        """Inverse of ``str(key)``; ``ValueError`` on a malformed key."""
        try:
            op, hw, ch, ksg, variant, precision = text.split("/")
            h, w = hw[1:].split("w")
            cin, mid, cout = ch[1:].split("-")
            k, rest = ksg[1:].split("s")
            s, g = rest.split("g")
            key = cls(
                op,
                int(h),
                int(w),
                int(cin),
                int(mid),
                int(cout),
                int(k),
                int(s),
                int(g),
                "" if variant == "-" else variant,
                precision,
            )
        except ValueError:
            raise ValueError(f"malformed kernel key {text!r}") from None
        if op not in OPS and op != "overhead":
            raise ValueError(f"unknown kernel op {op!r} in key {text!r}")
        return key

    @property
    def family(self) -> tuple[Any, ...]:
        """Everything but the channel counts: keys of one family interpolate along channels (a depthwise
        conv's groups follow its channels, so all its widths are one family: groups -1)."""
        depthwise = self.groups > 1 and self.groups == self.cin == self.cout
        return (self.op, self.h, self.w, self.k, self.stride, -1 if depthwise else self.groups, self.variant,
                self.precision)  # fmt: skip

    @property
    def channels(self) -> tuple[int, int, int]:
        return (self.cin, self.mid, self.cout)

    def with_channels(self, cin: int, mid: int, cout: int) -> KernelKey:
        return KernelKey(
            self.op,
            self.h,
            self.w,
            cin,
            mid,
            cout,
            self.k,
            self.stride,
            self.groups,
            self.variant,
            self.precision,
        )

    @property
    def ranks(self) -> tuple[int, ...]:
        """Ranks of the factorised convs this kernel holds (empty: none factorised)."""
        return ranks_of(self.variant)

    def convs(self) -> tuple[ConvSpec, ...]:
        """The convolutions this kernel runs (for rooflines and MAC counts)."""
        h, w, s = self.h, self.w, self.stride
        ranks = self.ranks
        if self.op == "cifar_block":
            r1, r2 = ranks or (0, 0)
            conv1 = ConvSpec(h, w, self.cin, self.mid, 3, s, 1)
            oh, ow = conv1.out_hw
            out = [
                *_factor(conv1, r1),
                *_factor(ConvSpec(oh, ow, self.mid, self.cout, 3, 1, 1), r2),
            ]
            if s != 1 or self.cin != self.cout:
                out.append(ConvSpec(h, w, self.cin, self.cout, 1, s, 1))
            return tuple(out)
        if self.op == "inverted_residual":
            out = [] if self.variant == "noexpand" else [ConvSpec(h, w, self.cin, self.mid, 1, 1, 1)]
            dw = ConvSpec(h, w, self.mid, self.mid, self.k, s, self.mid)
            oh, ow = dw.out_hw
            return (*out, dw, ConvSpec(oh, ow, self.mid, self.cout, 1, 1, 1))
        if self.op == "conv":
            return _factor(
                ConvSpec(h, w, self.cin, self.cout, self.k, s, self.groups), ranks[0] if ranks else 0
            )
        if self.op in ("gap_linear", "linear"):
            return _factor(ConvSpec(1, 1, self.cin, self.cout, 1, 1, 1), ranks[0] if ranks else 0)
        if self.op == "se":  # squeeze (global pool) -> 1x1 to mid -> 1x1 back -> scale
            return (ConvSpec(1, 1, self.cin, self.mid, 1, 1, 1), ConvSpec(1, 1, self.mid, self.cout, 1, 1, 1))
        return ()

    @property
    def macs(self) -> int:
        return sum(c.macs for c in self.convs())

    @property
    def weights(self) -> int:
        """Weight values the kernel reads (what a whole network streams through the caches)."""
        return sum(c.cout * (c.cin // c.groups) * c.k * c.k for c in self.convs())


def ranks_of(variant: str) -> tuple[int, ...]:
    """The ranks a variant names (``"lr16-0"`` -> (16, 0)); empty when nothing is factorised."""
    _, sep, tail = variant.partition("lr")
    if not sep:
        return ()
    return tuple(int(r) for r in tail.split("-"))


def rank_variant(base: str, ranks: tuple[int, ...]) -> str:
    """``base`` with the ranks appended (``"input"`` + (16,) -> ``"input-lr16"``); unchanged if none."""
    if not any(ranks):
        return base
    tag = "lr" + "-".join(str(r) for r in ranks)
    return f"{base}-{tag}" if base else tag


def _factor(conv: ConvSpec, rank: int) -> tuple[ConvSpec, ...]:
    """``conv`` itself, or its two factors at ``rank`` (k×k to ``rank``, then 1×1)."""
    if not rank:
        return (conv,)
    oh, ow = conv.out_hw
    return (
        ConvSpec(conv.h, conv.w, conv.cin, rank, conv.k, conv.stride, 1),
        ConvSpec(oh, ow, rank, conv.cout, 1, 1, 1),
    )


# --- extraction -------------------------------------------------------------------------------------


def _unit_of(module: nn.Module) -> str | None:
    """Which kernel op a module is, if it is one unit for the runtime."""
    name = type(module).__name__
    if (
        name == "BasicBlock"
        and hasattr(module, "conv1")
        and hasattr(module, "conv2")
        and hasattr(module, "shortcut")
    ):
        return "cifar_block"
    if name == "InvertedResidual" and isinstance(getattr(module, "conv", None), nn.Sequential):
        return "inverted_residual"
    if name == "SqueezeExcitation" and hasattr(module, "fc1") and hasattr(module, "fc2"):
        return "se"
    if name == "Conv2dNormActivation" or isinstance(module, (nn.Conv2d, FactorisedConv)):
        return "conv"
    if isinstance(module, (nn.Linear, FactorisedLinear)):
        return "linear"
    return None


def _first_conv(module: nn.Module) -> nn.Conv2d | FactorisedConv:
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, FactorisedConv)):
            return m
    raise UnsupportedModelError(f"{type(module).__name__} holds no convolution")


def _rank(layer: nn.Module) -> int:
    return int(getattr(layer, "rank", 0))


def _key_for(
    op: str,
    module: nn.Module,
    shape: tuple[int, ...],
    last_4d: tuple[int, ...] | None,
    first: bool,
    precision: str,
) -> KernelKey:
    variant = "input" if first else ""
    if op == "cifar_block":
        c1, c2 = cast(nn.Conv2d, module.conv1), cast(nn.Conv2d, module.conv2)
        variant = rank_variant(variant, (_rank(c1), _rank(c2)))
        return KernelKey(
            op,
            shape[2],
            shape[3],
            c1.in_channels,
            c1.out_channels,
            c2.out_channels,
            3,
            c1.stride[0],
            1,
            variant,
            precision,
        )
    if op == "inverted_residual":
        convs = [m for m in cast(nn.Module, module.conv).modules() if isinstance(m, nn.Conv2d)]
        dw = next(c for c in convs if c.groups > 1 and c.groups == c.in_channels)
        if len(convs) == 2:
            variant = "noexpand" if not first else "input-noexpand"
        return KernelKey(
            op,
            shape[2],
            shape[3],
            convs[0].in_channels,
            dw.in_channels,
            convs[-1].out_channels,
            dw.kernel_size[0],
            dw.stride[0],
            1,
            variant,
            precision,
        )
    if op == "se":
        fc1 = cast(nn.Conv2d, module.fc1)
        return KernelKey(op, shape[2], shape[3], fc1.in_channels, fc1.out_channels, fc1.in_channels,
                         1, 1, 1, variant, precision)  # fmt: skip
    if op == "conv":
        c = _first_conv(module)
        if isinstance(module, nn.Sequential) and isinstance(module[-1], nn.Hardswish):
            variant = f"{variant}-{HSWISH}" if variant else HSWISH
        variant = rank_variant(variant, (_rank(c),))
        return KernelKey(
            op,
            shape[2],
            shape[3],
            c.in_channels,
            0,
            c.out_channels,
            c.kernel_size[0],
            c.stride[0],
            c.groups,
            variant,
            precision,
        )
    assert isinstance(module, (nn.Linear, FactorisedLinear))
    variant = rank_variant(variant, (_rank(module),))
    if last_4d is not None and last_4d[1] == module.in_features and last_4d[2] * last_4d[3] > 1:
        return KernelKey(
            "gap_linear",
            last_4d[2],
            last_4d[3],
            module.in_features,
            0,
            module.out_features,
            1,
            1,
            1,
            variant,
            precision,
        )
    return KernelKey("linear", 1, 1, module.in_features, 0, module.out_features, 1, 1, 1, variant, precision)


def extract_kernels(
    model: nn.Module, input_shape: tuple[int, int, int], precision: str = "fp32"
) -> list[KernelKey]:
    """The fused kernels of ``model`` at batch 1, in execution order (one traced forward pass)."""
    keys: list[KernelKey] = []
    active: list[nn.Module] = []
    # a Linear reads the global-average-pooled last feature map only when no Linear ran since it
    state: dict[str, Any] = {"last_4d": None, "x_ptr": None, "linear_since_4d": False}
    handles = []

    def pre(module: nn.Module, args: tuple[Any, ...]) -> None:
        if active:
            active.append(module)
            return
        active.append(module)
        x = args[0] if args else None
        if not isinstance(x, torch.Tensor):
            return
        op = _unit_of(module)
        assert op is not None
        if op != "linear" and x.dim() != 4:
            raise UnsupportedModelError(f"{type(module).__name__} got a {x.dim()}-D input; expected NCHW")
        first = x.data_ptr() == state["x_ptr"]
        last_4d = None if state["linear_since_4d"] else state["last_4d"]
        keys.append(_key_for(op, module, tuple(x.shape), last_4d, first, precision))

    def post(module: nn.Module, args: tuple[Any, ...], out: Any) -> None:
        active.pop()
        if active or not isinstance(out, torch.Tensor):
            return
        if out.dim() == 4:
            state["last_4d"], state["linear_since_4d"] = tuple(out.shape), False
        elif _unit_of(module) == "linear":
            state["linear_since_4d"] = True

    for m in model.modules():
        if _unit_of(m) is not None:
            handles.append(m.register_forward_pre_hook(pre))
            handles.append(m.register_forward_hook(post))
    was_training = model.training
    model.eval()
    try:
        x = torch.zeros(1, *input_shape)
        state["x_ptr"] = x.data_ptr()
        with torch.no_grad():
            model(x)
    except UnsupportedModelError:
        raise
    except Exception as err:  # a model that cannot run on this shape is the user's problem, one line
        raise UnsupportedModelError(
            f"cannot trace the model at input {input_shape}: {err}".splitlines()[0]
        ) from None
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    if not keys:
        raise UnsupportedModelError("the model has no convolution or linear layer to time")
    return keys
