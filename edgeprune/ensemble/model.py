"""An ensemble that averages its members' class probabilities; exports as one ONNX graph."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class ProbabilityAverage(nn.Module):
    """``mean_k softmax(member_k(x))``. Outputs probabilities, not logits."""

    def __init__(self, members: Sequence[nn.Module]):
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one member")
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        probs = [torch.softmax(m(x), dim=1) for m in self.members]
        return torch.stack(probs).mean(dim=0)
