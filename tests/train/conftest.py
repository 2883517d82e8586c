"""CIFAR-10 subsets from ../shared/data, normalised as the pretrained ResNets expect."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)  # ImageNet statistics on x/255
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def load_cifar(path: Path, step: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Every ``step``-th image of a CIFAR npz as normalised NCHW float32, and its labels."""
    d = np.load(path)
    x = torch.from_numpy(d["x"][::step]).permute(0, 3, 1, 2).float().div_(255.0)
    return ((x - MEAN) / STD).contiguous(), torch.from_numpy(d["y"][::step]).long()


@pytest.fixture(scope="session")
def cifar_loader():
    return load_cifar
