"""Top-1 accuracy of a classifier on a tensor split (eval mode, no gradients)."""

from __future__ import annotations

import torch
from torch import nn

from edgeprune.errors import DataError


def predict_logits(model: nn.Module, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Class scores of ``model`` on ``x`` (N, ...), in batches, eval mode; the model's mode is restored."""
    if batch_size < 1:
        raise DataError(f"batch size must be >= 1, got {batch_size}")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            outs = [model(x[i : i + batch_size]) for i in range(0, len(x), batch_size)]
    finally:
        model.train(was_training)
    return torch.cat(outs) if outs else torch.empty(0)


def evaluate_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 256) -> float:
    """Fraction of ``x`` whose top-1 class is ``y`` (0.0 .. 1.0)."""
    if len(x) != len(y):
        raise DataError(f"{len(x)} inputs but {len(y)} labels")
    if len(x) == 0:
        raise DataError("cannot evaluate accuracy on an empty split")
    logits = predict_logits(model, x, batch_size)
    if logits.dim() != 2:
        raise DataError(f"model output has shape {tuple(logits.shape)}; expected (N, classes)")
    if int(y.max()) >= logits.shape[1] or int(y.min()) < 0:
        raise DataError(f"labels range over 0..{int(y.max())} but the model has {logits.shape[1]} classes")
    return float((logits.argmax(1) == y).float().mean())
