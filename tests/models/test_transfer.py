"""Transfer networks: a pretrained CIFAR ResNet backbone with a new FC head whose hidden neurons are genes."""

import pytest
import torch

from edgeprune.config import ModelConfig
from edgeprune.errors import ConfigError, ModelLoadError
from edgeprune.graph import PruningPlan, analyze, apply_plan
from edgeprune.models import build_model
from edgeprune.models.transfer import (
    TransferNet,
    freeze_backbone,
    head_hidden_kept,
    parse_transfer_spec,
    transfer_spec,
)
from edgeprune.space import SearchSpace


def _transfer(pretrained, hidden: int = 32, k: int = 6) -> TransferNet:
    cfg = ModelConfig(
        name="resnet20",
        transfer=True,
        head_hidden=hidden,
        num_classes=k,
        backbone_weights=pretrained["resnet20"],
    )
    return build_model(cfg).model  # type: ignore[return-value]


def test_backbone_features_are_the_pretrained_networks(pretrained):
    net = _transfer(pretrained)
    ref = build_model(ModelConfig(name="resnet20", weights=pretrained["resnet20"])).model
    x = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        logits_ref = ref(x)
        feats = net.backbone(x)
        # the old classifier applied to the backbone's features gives back the pretrained logits exactly
        assert torch.allclose(ref.linear(feats), logits_ref, atol=1e-5)
        assert tuple(net(x).shape) == (3, 6)
    assert net.dropped_classifier == "linear"
    assert (net.head[0].in_features, net.head[0].out_features, net.head[2].out_features) == (64, 32, 6)
    assert not any(k.startswith("backbone.linear") for k in net.state_dict())


def test_spec_name_rebuilds_the_same_architecture_and_full_weights_round_trip(pretrained, tmp_path):
    cfg = ModelConfig(
        name="resnet20", transfer=True, head_hidden=32, num_classes=6, backbone_weights=pretrained["resnet20"]
    )
    assert transfer_spec(cfg) == "transfer:resnet20:32"
    assert parse_transfer_spec("transfer:torchvision:resnet18:128") == ("torchvision:resnet18", 128)
    net = build_model(cfg).model
    with torch.no_grad():
        net.head[0].weight.mul_(2.0)  # something the fresh head does not have
    torch.save(net.state_dict(), tmp_path / "full.pt")
    # full weights take precedence over the backbone's, through the config fields or the spec name
    a = build_model(cfg.model_copy(update={"weights": tmp_path / "full.pt"})).model
    b = build_model(ModelConfig(name="transfer:resnet20:32", num_classes=6, weights=tmp_path / "full.pt"))
    assert b.name == "transfer:resnet20:32" and b.input_shape == (3, 32, 32) and b.num_classes == 6
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.equal(a(x), net(x)) and torch.equal(b.model(x), net(x))
    # the head's initialisation is seeded, not drawn from the global RNG
    fresh = [build_model(ModelConfig(name="transfer:resnet20:32", num_classes=6)).model for _ in range(2)]
    assert torch.equal(fresh[0].head[0].weight, fresh[1].head[0].weight)


def test_wrong_backbone_weights_name_the_first_offending_parameter(pretrained):
    with pytest.raises(ModelLoadError, match=r"'layer1\.3\.conv1\.weight'.*different family"):
        build_model(
            ModelConfig(
                name="resnet20", transfer=True, num_classes=6, backbone_weights=pretrained["resnet56"]
            )
        )
    with pytest.raises(ModelLoadError, match=r"'conv1\.weight'.*\(16, 3, 3, 3\).*\(16, 1, 3, 3\)"):
        build_model(
            ModelConfig(
                name="digits-resnet", transfer=True, num_classes=6, backbone_weights=pretrained["resnet20"]
            )
        )
    with pytest.raises(ConfigError, match="transfer: true"):
        build_model(ModelConfig(name="resnet20", backbone_weights=pretrained["resnet20"]))
    with pytest.raises(ConfigError, match="transfer:BACKBONE:HIDDEN"):
        build_model(ModelConfig(name="transfer:resnet20"))


def test_head_hidden_width_is_a_gene_next_to_the_backbones(pretrained):
    net = _transfer(pretrained, hidden=32)
    example = torch.zeros(1, 3, 32, 32)
    analysis = analyze(net, example, 16)
    head = [g for g in analysis.groups if g.name == "head.0"]
    assert len(head) == 1 and head[0].kind == "other" and head[0].channels == 32
    assert head[0].layers == ("head.0", "head.2")
    space = SearchSpace.from_analysis(analysis, 16)
    targets = {g.target for g in space.genes}
    assert "head.0" in targets and "backbone.layer3.0.conv1" in targets
    # pruning the head keeps a TransferNet whose two Linears shrink together
    plan = PruningPlan(keep={"head.0": 16, "backbone.layer3.0.conv1": 32}, channel_multiple=16)
    pruned = apply_plan(net, plan, example)
    assert isinstance(pruned, TransferNet) and head_hidden_kept(pruned) == 16
    assert pruned.head[2].in_features == 16 and pruned.backbone.layer3[0].conv1.out_channels == 32


def test_freeze_backbone_keeps_it_in_eval_mode_and_the_head_trainable(pretrained):
    net = freeze_backbone(_transfer(pretrained))
    net.train()
    assert net.training and net.head.training and not net.backbone.training
    assert not net.backbone.bn1.training
    assert all(not p.requires_grad for p in net.backbone.parameters())
    assert all(p.requires_grad for p in net.head.parameters())
    with pytest.raises(ConfigError, match="TransferNet"):
        freeze_backbone(torch.nn.Linear(2, 2))
