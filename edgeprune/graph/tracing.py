"""One hooked forward pass: how the analysis reads shapes, costs and residual structure."""

from __future__ import annotations

from collections.abc import Sequence

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
