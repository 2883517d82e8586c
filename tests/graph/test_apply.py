"""apply_plan: property tests over random plans on many families, the option-A shortcut, determinism.

For every family: the pruned network runs, its output shape is unchanged, its parameter count is the
one predict_params gave before pruning, every kept width is what the plan asked (a multiple of the
channel multiple), it equals the original with the pruned channels zeroed (masked copy), and the plan
replays from JSON to the same state dict.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from edgeprune.config import ModelConfig
from edgeprune.errors import ConfigError
from edgeprune.graph import (
    ModelAnalysis,
    PruningPlan,
    analyze,
    apply_plan,
    count_params,
    predict_params,
    pruned_channels,
)
from edgeprune.models import build_model

# family -> input size; every one of them works (refused families are in test_analysis.py)
FAMILIES = {
    "resnet20": 32,
    "resnet56": 32,
    "torchvision:resnet18": 32,
    "torchvision:mobilenet_v2": 32,
    "torchvision:densenet121": 32,  # concatenations
    "torchvision:mobilenet_v3_small": 32,  # squeeze-excitation, hardswish, depthwise
    "torchvision:efficientnet_b0": 32,  # squeeze-excitation, depthwise, SiLU
    "torchvision:mnasnet0_5": 32,
    "torchvision:regnet_x_400mf": 32,  # grouped convolutions (their groups are fixed)
    "torchvision:squeezenet1_0": 64,  # concatenations, conv classifier
}
EXAMPLES = {"resnet20": 6, "resnet56": 3, "torchvision:resnet18": 2, "torchvision:mobilenet_v2": 2}
SLOW = {"torchvision:densenet121", "torchvision:mobilenet_v3_small", "torchvision:efficientnet_b0",
        "torchvision:mnasnet0_5", "torchvision:regnet_x_400mf", "torchvision:squeezenet1_0"}  # fmt: skip
_CACHE: dict[str, tuple[nn.Module, torch.Tensor, ModelAnalysis]] = {}


def _family(name: str) -> tuple[nn.Module, torch.Tensor, ModelAnalysis]:
    if name not in _CACHE:
        torch.manual_seed(0)
        model = build_model(ModelConfig(name=name, num_classes=10)).model
        for m in model.modules():  # non-trivial BN statistics, so a wrong channel shows in the output
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
                m.bias.data.uniform_(-0.2, 0.2)
        size = FAMILIES[name]
        x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(1))
        _CACHE[name] = (model, x, analyze(model, x))
    return _CACHE[name]


@st.composite
def plans(draw: st.DrawFn, analysis: ModelAnalysis) -> PruningPlan:
    multiple = draw(st.sampled_from([1, 4, 8]))
    keep = {}
    for g in analysis.groups:
        levels = [*range(multiple, g.channels, multiple), g.channels]
        if draw(st.booleans()):
            keep[g.name] = draw(st.sampled_from(levels))
    drop = tuple(b.name for b in analysis.blocks if draw(st.booleans()))
    criterion = draw(st.sampled_from(["l1", "l2", "bn_scale"]))
    return PruningPlan(keep=keep, drop_blocks=drop, criterion=criterion, channel_multiple=multiple)


@pytest.mark.parametrize(
    "family", [pytest.param(f, marks=[pytest.mark.slow] if f in SLOW else []) for f in FAMILIES]
)
def test_random_plans_build_the_predicted_network(family, masked):
    model, x, analysis = _family(family)
    with torch.no_grad():
        out_shape = model(x).shape
    before = {k: v.clone() for k, v in model.state_dict().items()}

    @settings(max_examples=EXAMPLES.get(family, 4), deadline=None, suppress_health_check=list(HealthCheck))
    @given(plan=plans(analysis))
    def check(plan: PruningPlan) -> None:
        predicted = predict_params(analysis, plan)
        pruned = apply_plan(model, plan, x, analysis=analysis)
        with torch.no_grad():
            y = pruned(x)
        assert y.shape == out_shape
        assert count_params(pruned) == predicted
        for name, k in plan.keep.items():
            g = analysis.group(name)
            root = g.root
            if any(root.startswith(b + ".") for b in plan.drop_blocks):
                continue
            assert k % plan.channel_multiple == 0 or k == g.channels
            module = pruned.get_submodule(root)
            assert getattr(module, "out_channels", getattr(module, "out_features", None)) == k
        for b in plan.drop_blocks:
            assert isinstance(pruned.get_submodule(b), nn.Identity)
        ref = masked(model, plan, x, analysis)
        assert torch.allclose(y, ref, rtol=1e-4, atol=1e-5 * float(ref.abs().max()) + 1e-6)
        replay = apply_plan(model, PruningPlan.from_json(plan.to_json()), x, analysis=analysis)
        a, b = pruned.state_dict(), replay.state_dict()
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

    check()
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items()), "the original was modified"


def test_option_a_stage_pruning_matches_masked_copy(masked):
    """Pruning the residual streams through the option-A shortcut is exact (not the F.pad mis-pruning)."""
    model, x, analysis = _family("resnet20")
    plan = PruningPlan(keep={"stage:layer1": 8, "stage:layer2": 16, "stage:layer3": 40})
    pruned = apply_plan(model, plan, x, analysis=analysis)
    sc2, sc3 = pruned.layer2[0].shortcut, pruned.layer3[0].shortcut
    assert (sc2.in_channels, sc2.out_channels, sc3.in_channels, sc3.out_channels) == (8, 16, 16, 40)
    assert pruned.linear.in_features == 40 and pruned.linear.out_features == 10
    with torch.no_grad():
        diff = (pruned(x) - masked(model, plan, x, analysis)).abs().max().item()
    assert diff < 1e-5
    cut = pruned_channels(model, plan, x, analysis=analysis)
    assert {k: len(v) for k, v in cut.items()} == {"stage:layer1": 8, "stage:layer2": 16, "stage:layer3": 24}


def test_criteria_choose_different_channels_and_taylor_needs_data():
    model = build_model(ModelConfig(name="resnet20")).model
    x = torch.randn(16, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    y = torch.arange(16) % 10
    analysis = analyze(model, x)
    chosen = {}
    for crit in ("l1", "l2", "bn_scale", "taylor"):
        plan = PruningPlan(keep={"layer2.1.conv1": 8}, criterion=crit)
        chosen[crit] = pruned_channels(model, plan, x, data=(x, y), analysis=analysis)["layer2.1.conv1"]
    assert len(set(map(tuple, chosen.values()))) >= 3
    # L1 keeps the channels with the largest mean group L1 norm (conv1 out rows, bn1 |gamma|, conv2 in columns)
    blk = model.layer2[1]
    score = (
        blk.conv1.weight.abs().flatten(1).sum(1)
        + blk.bn1.weight.abs()
        + blk.conv2.weight.abs().transpose(0, 1).flatten(1).sum(1)
    ) / 3
    assert chosen["l1"] == sorted(torch.argsort(score, stable=True)[:24].tolist())
    with pytest.raises(ConfigError, match="needs data"):
        apply_plan(model, PruningPlan(keep={"layer2.1.conv1": 8}, criterion="taylor"), x, analysis=analysis)


def test_plan_for_a_dropped_blocks_inner_group_is_ignored():
    model, x, analysis = _family("resnet20")
    plan = PruningPlan(keep={"layer1.1.conv1": 8}, drop_blocks=("layer1.1",))
    pruned = apply_plan(model, plan, x, analysis=analysis)
    assert (
        count_params(pruned)
        == predict_params(analysis, plan)
        == predict_params(analysis, PruningPlan(drop_blocks=("layer1.1",)))
    )
