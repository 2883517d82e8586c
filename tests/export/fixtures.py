"""Fixtures and helpers shared by the export, runtime, verify and cpp tests (imported by their conftest)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch


@pytest.fixture(scope="session")
def cifar(shared_data: Path):
    """CIFAR-10 (train_10k + test) normalised as the pretrained ResNets expect."""
    from edgeprune.config import DataConfig
    from edgeprune.data import load_data

    return load_data(DataConfig(source=str(shared_data / "cifar10")))


@pytest.fixture(scope="session")
def test_1000(cifar) -> tuple[np.ndarray, np.ndarray]:
    """1,000 test images drawn with a fixed seed (the test split is ordered by class)."""
    idx = np.sort(np.random.default_rng(0).choice(len(cifar.test), 1000, replace=False))
    return cifar.test.x[idx].numpy(), cifar.test.y[idx].numpy()


def random_plan(model: torch.nn.Module, seed: int, drop_p: float = 0.2):
    """A random pruning plan: every group keeps 25-100% of its channels, some blocks dropped."""
    from edgeprune.graph import PruningPlan, analyze

    analysis = analyze(model, torch.zeros(1, 3, 32, 32))
    rng = np.random.default_rng(seed)
    keep = {g.name: int(rng.integers(max(1, g.channels // 4), g.channels + 1)) for g in analysis.groups}
    drop = tuple(b.name for b in analysis.blocks if rng.random() < drop_p)
    return PruningPlan(keep=keep, drop_blocks=drop), analysis


def torch_logits(model: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return np.concatenate(
            [model(torch.from_numpy(x[i : i + 250])).numpy() for i in range(0, len(x), 250)]
        )


def bn_calibrated(model: torch.nn.Module, x: torch.Tensor, batch: int = 128) -> torch.nn.Module:
    """``model`` with BatchNorm statistics recomputed on ``x`` (a randomly initialised network otherwise
    outputs logits of ~1e-15 in eval mode, which would make any parity bound vacuous)."""
    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    model.train()
    with torch.no_grad():
        for i in range(0, len(x), batch):
            model(x[i : i + batch])
    return model.eval()
