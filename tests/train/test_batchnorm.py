"""BatchNorm recalibration: exact cumulative statistics, and what it buys a pruned ResNet-56."""

from __future__ import annotations

import torch
from torch import nn

from edgeprune.config import ModelConfig
from edgeprune.graph import analyze, apply_plan, uniform_plan
from edgeprune.models import build_model
from edgeprune.train import evaluate_accuracy, recalibrate_bn


def test_running_stats_are_the_average_over_the_batches():
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 4, 1, bias=False)
    bn = nn.BatchNorm2d(4)
    model = nn.Sequential(conv, bn, nn.Dropout(0.9))
    x = torch.randn(8, 3, 5, 5, generator=torch.Generator().manual_seed(1))
    recalibrate_bn(model, x, num_batches=2, batch_size=4)
    with torch.no_grad():
        f = conv(x)
    a, b = f[:4].transpose(0, 1).flatten(1), f[4:].transpose(0, 1).flatten(1)
    assert torch.allclose(bn.running_mean, (a.mean(1) + b.mean(1)) / 2, atol=1e-6)
    assert torch.allclose(bn.running_var, (a.var(1) + b.var(1)) / 2, atol=1e-5)  # unbiased per batch
    assert bn.momentum == 0.1 and not model.training  # restored, eval mode


def test_recalibration_rescues_resnet56_at_30_percent(cifar_test_npz, shared_data, pretrained, cifar_loader):
    model = build_model(ModelConfig(name="resnet56", weights=pretrained["resnet56"])).model
    x, y = cifar_loader(cifar_test_npz, step=40)  # 250 test images
    calib, _ = cifar_loader(shared_data / "cifar10" / "train_10k.npz", step=20)  # 500 training images
    analysis = analyze(model, x[:1])
    pruned = apply_plan(model, uniform_plan(analysis, 0.3), x[:1], analysis=analysis)
    before = evaluate_accuracy(pruned, x, y)
    recalibrate_bn(pruned, calib, num_batches=4, batch_size=128)
    after = evaluate_accuracy(pruned, x, y)
    assert after > before + 0.15, (before, after)


def test_only_batchnorms_after_the_first_change_are_re_estimated():
    from edgeprune.graph import PruningPlan, apply_plan
    from edgeprune.graph.tracing import batchnorms_after_first_change
    from edgeprune.models.cifar_resnet import cifar_resnet
    from edgeprune.train import recalibrate_changed_bn

    torch.manual_seed(0)
    model = cifar_resnet(20).eval()
    x = torch.randn(64, 3, 32, 32)
    dropped = apply_plan(model, PruningPlan(drop_blocks=("layer2.2",)), x[:1])
    names = batchnorms_after_first_change(model, dropped, x)
    assert "layer3.0.bn1" in names and "layer2.1.bn2" not in names and "bn1" not in names
    factorised = apply_plan(model, PruningPlan(ranks={"layer3.1.conv1": 16}), x[:1])
    assert min(batchnorms_after_first_change(model, factorised, x)) == "layer3.1.bn1"
    assert batchnorms_after_first_change(model, apply_plan(model, PruningPlan(), x[:1]), x) == set()
    before = dropped.layer1[0].bn1.running_mean.clone()
    recalibrate_changed_bn(model, dropped, x, batch_size=32)
    assert torch.equal(dropped.layer1[0].bn1.running_mean, before)  # untouched upstream of the change
    assert not torch.equal(dropped.layer3[0].bn1.running_mean, model.layer3[0].bn1.running_mean)
