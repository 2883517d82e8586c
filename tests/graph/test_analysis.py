"""analyze(): groups, kinds, blocks, stages, params and MACs on real networks."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from edgeprune.config import ModelConfig
from edgeprune.errors import UnsupportedModelError
from edgeprune.graph import analyze, count_macs, count_params
from edgeprune.models import build_model


@pytest.fixture(scope="module")
def resnet20_analysis():
    model = build_model(ModelConfig(name="resnet20")).model
    return model, analyze(model, torch.zeros(1, 3, 32, 32), channel_multiple=8)


def test_resnet20_groups_blocks_and_costs(resnet20_analysis):
    model, a = resnet20_analysis
    names = [g.name for g in a.groups]
    assert names[:2] == ["stage:layer1", "layer1.0.conv1"]
    stage = {g.name: g for g in a.groups if g.kind == "stage"}
    assert set(stage) == {"stage:layer1", "stage:layer2", "stage:layer3"}
    # the stem, every block's conv2 of layer1, the shortcut of layer2.0 and the next convs are coupled
    s1 = stage["stage:layer1"]
    assert s1.channels == 16 and s1.root == "conv1"
    assert {"conv1", "bn1", "layer1.0.conv2", "layer1.2.bn2", "layer2.0.conv1", "layer2.0.shortcut"} <= set(
        s1.layers
    )
    inner = [g for g in a.groups if g.kind == "inner"]
    assert len(inner) == 9 and all(
        g.layers == (g.name, g.name[:-5] + "bn1", g.name[:-5] + "conv2") for g in inner
    )
    assert "linear" not in {g.root for g in a.groups}  # the classifier's outputs are never a choice
    assert [b.name for b in a.blocks] == [
        "layer1.0",
        "layer1.1",
        "layer1.2",
        "layer2.1",
        "layer2.2",
        "layer3.1",
        "layer3.2",
    ]
    assert a.stages == ("layer1", "layer2", "layer3")
    assert {b.stage for b in a.blocks if b.name.startswith("layer2")} == {"layer2"}
    assert a.params == 269_722 == count_params(model)
    # 40.55 M MACs of the convs + linear, plus the two 1x1 option-A shortcuts (16*32*16*16 + 32*64*8*8)
    assert a.macs == 40_813_184 == count_macs(model, torch.zeros(1, 3, 32, 32))
    assert a.input_shape == (3, 32, 32) and a.channel_multiple == 8 and a.fixed == ()
    conv = next(c for c in a.layers if c.name == "layer3.0.conv1")
    assert (conv.in_channels, conv.out_channels, conv.output_hw, conv.macs) == (
        32,
        64,
        (8, 8),
        8 * 8 * 64 * 32 * 9,
    )


def test_analysis_does_not_touch_the_model(resnet20_analysis):
    model, _ = resnet20_analysis
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    analyze(model, torch.zeros(2, 3, 32, 32))
    assert model.training  # mode restored
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_mobilenet_v2_depthwise_inner_groups_and_stages():
    model = build_model(ModelConfig(name="torchvision:mobilenet_v2", num_classes=10)).model
    a = analyze(model, torch.zeros(1, 3, 32, 32))
    g = a.group("features.2.conv.0.0")  # expansion 1x1 -> depthwise 3x3 -> projection input
    assert g.kind == "inner" and g.channels == 96
    assert {"features.2.conv.0.0", "features.2.conv.1.0", "features.2.conv.2"} <= set(g.layers)
    assert [b.name for b in a.blocks][:3] == ["features.3", "features.5", "features.6"]
    assert a.group("stage:features.3").layers[0] == "features.2.conv.2"  # stream starts at the projection
    assert len(a.stages) == 5 and not a.fixed


def test_regnet_grouped_convolutions_are_fixed_and_named():
    model = build_model(ModelConfig(name="torchvision:regnet_x_400mf", num_classes=10)).model
    a = analyze(model, torch.zeros(1, 3, 32, 32))
    assert a.fixed and all("grouped convolution" in f.reason for f in a.fixed)
    assert "trunk_output.block1.block1-0.f.b.0" in a.fixed[0].reason
    assert {g.kind for g in a.groups} <= {"stage", "other"} and len(a.groups) == 5


def test_shufflenet_channel_shuffle_is_refused():
    model = build_model(ModelConfig(name="torchvision:shufflenet_v2_x0_5", num_classes=10)).model
    with pytest.raises(UnsupportedModelError, match="cannot trace"):
        analyze(model, torch.zeros(1, 3, 32, 32))


class _ChannelMix(nn.Module):
    """A layer torch-pruning reads as element-wise but that mixes channels (a roll)."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 8, 3, padding=1)
        self.b = nn.Conv2d(8, 8, 3, padding=1)
        self.fc = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.roll(self.a(x), 1, dims=1)
        return self.fc(self.b(y).mean((2, 3)))


def test_an_op_that_mixes_channels_fixes_its_group():
    a = analyze(_ChannelMix(), torch.zeros(1, 3, 8, 8))
    assert [f.name for f in a.fixed] == ["a"]
    assert "may mix channels" in a.fixed[0].reason
    assert [g.name for g in a.groups] == ["b"]


class _TwoOutputs(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.conv(x), x


def test_bad_models_are_refused():
    with pytest.raises(UnsupportedModelError, match="single tensor"):
        analyze(_TwoOutputs(), torch.zeros(1, 3, 8, 8))
    model = build_model(ModelConfig(name="resnet20")).model
    with pytest.raises(UnsupportedModelError, match="does not run on input"):
        analyze(model, torch.zeros(1, 1, 32, 32))
