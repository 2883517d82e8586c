"""One hooked forward pass: how the analysis reads shapes, costs and residual structure."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle


def forward_with_hooks(
    model: nn.Module, example_input: torch.Tensor, hooks: Sequence[RemovableHandle], *, grad: bool
) -> None:
    """Run ``model`` once in eval mode on ``example_input`` (with autograd on when ``grad``), then
    remove ``hooks`` and restore the model's train/eval mode, whatever happens."""
    was_training = model.training
    try:
        model.eval()
        with torch.set_grad_enabled(grad):
            model(example_input)
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)


def _signature(module: nn.Module) -> tuple[Any, ...]:
    return (type(module), tuple(tuple(t.shape) for t in (*module.parameters(False), *module.buffers(False))))


def batchnorms_after_first_change(
    original: nn.Module, derived: nn.Module, example_input: torch.Tensor
) -> set[str]:
    """BatchNorms of ``derived`` that run at or after its first layer that differs from ``original``.

    ``derived`` is ``original`` pruned, with blocks dropped or layers factorised (module names kept).
    A layer differs when ``original`` has no module of that name, or one of another type or with other
    parameter shapes. BatchNorms that run before it see exactly what they saw in ``original`` and keep
    their statistics; the rest need re-estimating. Empty when nothing that runs differs.
    """
    order: list[str] = []

    def record(name: str) -> Any:
        return lambda module, args: order.append(name)

    hooks = [
        m.register_forward_pre_hook(record(n)) for n, m in derived.named_modules() if not list(m.children())
    ]
    with torch.no_grad():
        forward_with_hooks(derived, example_input[:1], hooks, grad=False)
    originals = dict(original.named_modules())
    derived_modules = dict(derived.named_modules())
    first = next(
        (
            i
            for i, name in enumerate(order)
            if name not in originals or _signature(originals[name]) != _signature(derived_modules[name])
        ),
        len(order),
    )
    return {n for n in order[first:] if isinstance(derived_modules[n], nn.modules.batchnorm._BatchNorm)}
