"""Channel importance per group, through torch-pruning's importance classes.

``l1`` / ``l2``: group magnitude (mean over the coupled layers of each channel's weight norm);
``bn_scale``: |gamma| of the group's BatchNorms (groups without one fall back to ``l1``);
``taylor``: |w * dL/dw| after one backward pass of cross-entropy on the given data.
Scores are not normalised (only their order within a group matters).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from edgeprune.errors import ConfigError


def make_importance(criterion: str) -> Any:
    """The torch-pruning importance object for ``criterion``."""
    import torch_pruning as tp

    if criterion == "l1":
        return tp.importance.GroupMagnitudeImportance(p=1, normalizer=None)
    if criterion == "l2":
        return tp.importance.GroupMagnitudeImportance(p=2, normalizer=None)
    if criterion == "bn_scale":
        return tp.importance.BNScaleImportance(normalizer=None)
    if criterion == "taylor":
        return tp.importance.GroupTaylorImportance(normalizer=None)
    raise ConfigError(f"unknown importance criterion {criterion!r}")


def accumulate_gradients(
    model: nn.Module, data: tuple[torch.Tensor, torch.Tensor] | None, batch_size: int = 128
) -> None:
    """Fill ``.grad`` of every parameter with the cross-entropy gradient on ``data`` (eval mode)."""
    if data is None:
        raise ConfigError("the 'taylor' criterion needs data (x, y) to compute gradients")
    x, y = data
    if len(x) == 0 or len(x) != len(y):
        raise ConfigError("the 'taylor' criterion needs a non-empty (x, y) pair of equal length")
    model.eval()
    model.zero_grad(set_to_none=True)
    with torch.enable_grad():
        for i in range(0, len(x), batch_size):
            xb, yb = x[i : i + batch_size], y[i : i + batch_size]
            loss = F.cross_entropy(model(xb), yb, reduction="sum") / len(x)
            loss.backward()


def group_scores(importance: Any, group: Any, fallback: Any) -> torch.Tensor:
    """Per-channel scores of ``group`` (length = its channel count); never None, never NaN."""
    scores = importance(group)
    if scores is None and fallback is not None:
        scores = fallback(group)
    n = len(group[0].idxs)
    if scores is None:
        return torch.zeros(n)
    return torch.nan_to_num(scores.detach().float().cpu(), nan=0.0, posinf=0.0, neginf=0.0)


def lowest(scores: torch.Tensor, count: int) -> list[int]:
    """Indices of the ``count`` lowest scores (ties: lower index first), sorted."""
    order = torch.sort(scores, stable=True).indices
    return sorted(int(i) for i in order[:count])
