"""`edgeprune.report.influence`: how often each filter of the base network survives across the front."""

from __future__ import annotations

import csv

import torch

from edgeprune.config import ModelConfig
from edgeprune.graph import PruningPlan, analyze
from edgeprune.models import build_model
from edgeprune.report.influence import influential_filters

EXAMPLE = torch.zeros(1, 3, 32, 32)


def _base() -> torch.nn.Module:
    """A seeded ResNet-20 whose layer1.0.conv1 channels 0..7 are ~1000x smaller than 8..15 in every
    layer of their group: any magnitude criterion prunes them first."""
    torch.manual_seed(0)
    net = build_model(ModelConfig(name="resnet20")).model
    block = net.get_submodule("layer1.0")
    with torch.no_grad():
        block.conv1.weight[:8] *= 1e-3
        block.bn1.weight[:8] *= 1e-3
        block.bn1.bias[:8] *= 1e-3
        block.conv2.weight[:, :8] *= 1e-3
    return net


def test_kept_fractions_per_filter(tmp_path):
    base = _base()
    plans = [
        PruningPlan(),  # the unpruned network
        PruningPlan(keep={"layer1.0.conv1": 8}),
        PruningPlan(drop_blocks=("layer1.1",)),
    ]
    path = tmp_path / "influential_filters.csv"
    section = influential_filters(base, EXAMPLE, 1, plans, path)
    assert section.count("data:image/png;base64,") == 1 and "influential_filters.csv" in section
    with path.open() as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["group", "channel", "kept_fraction"]
    groups = analyze(base, EXAMPLE, 1).groups
    assert len(rows) == sum(g.channels for g in groups)  # one row per filter of the base network
    got = {(r["group"], int(r["channel"])): r["kept_fraction"] for r in rows}
    for g in groups:
        for ch in range(g.channels):
            if g.name == "layer1.0.conv1":
                expected = "0.6667" if ch < 8 else "1.0000"  # plan 2 cut the 8 small ones
            elif g.name == "layer1.1.conv1":
                expected = "0.6667"  # plan 3 dropped the block
            else:
                expected = "1.0000"
            assert got[(g.name, ch)] == expected, (g.name, ch)
    # the base network itself is not modified
    assert torch.equal(
        base.get_submodule("layer1.0.conv1").weight, _base().get_submodule("layer1.0.conv1").weight
    )
