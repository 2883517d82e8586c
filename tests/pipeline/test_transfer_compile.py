"""`edgeprune compile --transfer`: a CIFAR-10 ResNet-20 backbone on a 6-class animal task built from
../shared/data (the run and the task: tests/pipeline/transfer_fixtures.py)."""

import json

import pytest
import torch
import yaml

from edgeprune.cli import main
from edgeprune.config import DataConfig, ModelConfig
from edgeprune.data import load_data
from edgeprune.graph import PruningPlan, apply_plan
from edgeprune.models import build_model, load_weights
from edgeprune.pipeline.pretrain import train_head


@pytest.mark.slow  # a full compile (CONTRIBUTING: end-to-end runs are the slow tier)
def test_transfer_compile_ships_verified_picks_with_a_frozen_backbone(transfer_run, animals):
    out = transfer_run
    stored = yaml.safe_load((out / "config.yaml").read_text())
    assert stored["model"]["transfer"] is True and stored["model"]["weights"] is None
    assert stored["model"]["backbone_weights"].endswith("resnet20-12fca82f.th")
    data = load_data(DataConfig(source=str(animals), seed=1))
    base = build_model(
        ModelConfig(name="transfer:resnet20:32", num_classes=6, weights=out / "base" / "weights.pt")
    )
    base_model = base.model
    example = torch.zeros(1, 3, 32, 32)
    for pick in ("accurate", "knee", "fast"):
        d = out / "picks" / pick
        verify = json.loads((d / "verify.json").read_text())
        checks = {c["name"]: c for c in verify["checks"]}
        assert checks["fp32_max_abs_logit_diff"]["passed"] and checks["fp32_top1_agreement"]["passed"], pick
        manifest = json.loads((d / "manifest.json").read_text())
        assert manifest["model_name"] == "transfer:resnet20:32"
        plan = PruningPlan.from_json((d / "plan.json").read_text())
        model = apply_plan(base_model, plan, example)
        before = {k: v.clone() for k, v in model.state_dict().items()}
        load_weights(model, d / "weights.pt")
        after = model.state_dict()
        # finalize trained the kept head neurons only: every backbone weight is the pruned pretrained one
        conv_keys = [k for k in after if k.startswith("backbone.") and k.endswith("conv1.weight")]
        assert conv_keys and all(torch.equal(before[k], after[k]) for k in conv_keys)
        bn_weights = [k for k in after if k.startswith("backbone.") and ".bn" in k and k.endswith("weight")]
        assert all(torch.equal(before[k], after[k]) for k in bn_weights)
        assert not torch.equal(before["head.2.weight"], after["head.2.weight"])
        assert model.head[0].out_features == plan.keep.get("head.0", 32)
    # the new head learned the task on frozen features: well above chance (1/6) on held-out test images
    with torch.no_grad():
        acc = (base_model(data.test.x).argmax(1) == data.test.y).float().mean().item()
    assert acc > 0.6


@pytest.mark.slow  # a full compile (CONTRIBUTING: end-to-end runs are the slow tier)
def test_transfer_pick_rebuilds_from_its_directory(transfer_run):
    from edgeprune.export.manifest import read_manifest
    from edgeprune.verify.rebuild import rebuild_torch_model

    d = transfer_run / "picks" / "knee"
    model = rebuild_torch_model(d, read_manifest(d))
    assert model is not None and type(model).__name__ == "TransferNet"
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 6)


def test_train_head_changes_only_the_head(animals, pretrained):
    data = load_data(DataConfig(source=str(animals)))
    cfg = ModelConfig(
        name="resnet20", transfer=True, head_hidden=16, num_classes=6, backbone_weights=pretrained["resnet20"]
    )
    net = build_model(cfg).model
    backbone_before = {k: v.clone() for k, v in net.backbone.state_dict().items()}
    head_before = net.head[0].weight.clone()
    train_head(net, data.train.x, data.train.y, epochs=5, lr=0.05, batch_size=64, seed=0)
    assert all(
        torch.equal(v, net.backbone.state_dict()[k]) for k, v in backbone_before.items()
    )  # incl. BN stats
    assert not torch.equal(head_before, net.head[0].weight)
    assert not net.training


def test_transfer_without_weights_is_one_line(animals, tmp_path, capsys):
    rc = main(
        ["compile", "resnet20", "--transfer", "--data", str(animals), "--out", str(tmp_path / "r"), "--quiet"]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert rc != 0 and err == ["edgeprune: error: --transfer needs a pretrained backbone: pass --weights"]
    assert not (tmp_path / "r").exists()


def test_transfer_with_another_familys_weights_is_one_line(animals, pretrained, tmp_path, capsys):
    rc = main(["compile", "resnet20", "--transfer", "--weights", str(pretrained["resnet56"]), "--data", str(animals),
               "--out", str(tmp_path / "r"), "--quiet"])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert rc != 0 and len(err) == 1 and "'layer1.3.conv1.weight'" in err[0]
    assert not (tmp_path / "r").exists()


def test_head_options_need_transfer(animals, tmp_path, capsys):
    rc = main(
        ["compile", "resnet20", "--head-hidden", "8", "--data", str(animals), "--out", str(tmp_path / "r")]
    )
    assert rc != 0 and capsys.readouterr().err.strip() == "edgeprune: error: --head-hidden needs --transfer"
