"""Low-rank factorisation: SVD factors, plans with ranks, rank genes, kernels and export."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from edgeprune.errors import ConfigError
from edgeprune.graph import PruningPlan, analyze, apply_plan, count_macs, count_params, predict_params
from edgeprune.graph.lowrank import FactorisedConv, factorise, rank_levels, saves
from edgeprune.latency.enumerate import enumerate_kernels
from edgeprune.latency.kernels import extract_kernels
from edgeprune.models.cifar_resnet import cifar_resnet
from edgeprune.space import SearchSpace

SHAPE = (3, 32, 32)


@pytest.fixture(scope="module")
def resnet20():
    torch.manual_seed(0)
    model = cifar_resnet(20).eval()
    example = torch.zeros(1, *SHAPE)
    analysis = analyze(model, example, 16)
    return model, example, analysis, SearchSpace.from_analysis(analysis, 16, rank_genes=True)


def test_full_rank_is_exact_and_error_falls_with_rank():
    torch.manual_seed(0)
    conv = nn.Conv2d(24, 40, 3, stride=2, padding=1, bias=True).eval()
    x = torch.randn(2, 24, 9, 9)
    ref = conv(x)
    full = factorise(conv, 40)
    assert isinstance(full, FactorisedConv) and full.rank == 40 and full.stride == (2, 2)
    assert (full(x) - ref).abs().max() < 1e-4
    with torch.no_grad():
        errors = [float((factorise(conv, r)(x) - ref).norm()) for r in (4, 12, 24, 36)]
    assert errors == sorted(errors, reverse=True)  # Eckart-Young: a larger rank never fits worse
    lin = nn.Linear(30, 20)
    z = torch.randn(3, 30)
    assert (factorise(lin, 20)(z) - lin(z)).abs().max() < 1e-5
    assert count_params(factorise(lin, 5)) == 5 * (30 + 20) + 20


def test_rank_levels_only_offer_saving_ranks():
    assert rank_levels(64, 64, 3, 16) == (16, 32)  # 48 saves only 17 % of a 64x64 3x3 conv
    assert rank_levels(16, 16, 3, 16) == ()  # a 16-wide conv has nothing to give at multiple 16
    assert rank_levels(64, 10, 1, 16) == ()
    assert saves(16, 32, 32, 3) and not saves(16, 16, 16, 3)


def test_plan_with_ranks_prunes_then_factorises(resnet20):
    model, example, analysis, _ = resnet20
    plan = PruningPlan(keep={}, drop_blocks=("layer3.2",), ranks={"layer3.1.conv1": 32, "layer2.1.conv2": 16})
    net = apply_plan(model, plan, example, analysis=analysis)  # checks params == predict_params itself
    assert isinstance(net.get_submodule("layer3.1.conv1"), FactorisedConv)
    assert predict_params(analysis, plan) == count_params(net)
    again = PruningPlan.from_json(plan.to_json())
    assert again == plan and again.ranks == plan.ranks
    assert "ranks" not in PruningPlan(keep={}, drop_blocks=("layer3.2",)).to_json()  # old plans unchanged
    full = apply_plan(model, PruningPlan(ranks={"layer3.1.conv1": 64}), example, analysis=analysis)
    x = torch.randn(4, *SHAPE)
    with torch.no_grad():
        assert (full(x) - model(x)).abs().max() < 1e-4


@pytest.mark.parametrize(
    ("ranks", "drop", "message"),
    [
        ({"layer3.1.conv1": 65}, (), "larger than the layer allows: at most 64"),
        ({"layer3.1.bn1": 8}, (), "not a factorisable layer"),
        ({"layer3.2.conv1": 8}, ("layer3.2",), "whose block the plan drops"),
        ({"layer3.1.conv1": 0}, (), "a rank is a positive integer"),
    ],
)
def test_bad_ranks_are_one_clear_error(resnet20, ranks, drop, message):
    model, example, analysis, _ = resnet20
    with pytest.raises(ConfigError, match=message):
        apply_plan(model, PruningPlan(drop_blocks=drop, ranks=ranks), example, analysis=analysis)


def test_rank_larger_than_a_pruned_layer_allows(resnet20):
    model, example, analysis, _ = resnet20
    group = next(g.name for g in analysis.groups if "layer3.1.conv1" in g.layers and g.kind != "stage")
    plan = PruningPlan(keep={group: 16}, ranks={"layer3.1.conv1": 32}, channel_multiple=16)
    with pytest.raises(
        ConfigError, match="rank 32 for layer 'layer3.1.conv1' is larger than the layer allows"
    ):
        apply_plan(model, plan, example, analysis=analysis)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**31 - 1))
def test_rank_genes_decode_to_valid_saving_plans(resnet20, seed):
    model, example, analysis, space = resnet20
    genome = space.random(np.random.default_rng(seed), 1)[0]
    plan = space.decode(genome)
    assert space.decode(space.encode(plan)) == plan
    predict_params(analysis, plan)  # valid: raises otherwise
    for layer, r in plan.ranks.items():  # repair keeps only ranks that still save at the pruned width
        assert not any(layer.startswith(b + ".") for b in plan.drop_blocks)
        w = analysis_weight_shape(model, plan, example, analysis, layer)
        assert saves(r, w[1], w[0], w[2])


def analysis_weight_shape(model, plan, example, analysis, layer):
    pruned = apply_plan(
        model, PruningPlan(keep=plan.keep, drop_blocks=plan.drop_blocks), example, analysis=analysis
    )
    weight = pruned.get_submodule(layer).weight
    return weight.shape[0], weight.shape[1], weight.shape[2]


def test_rank_genes_exist_only_where_a_rank_saves(resnet20):
    _, _, _, space = resnet20
    ranked = {g.target: g.levels for g in space.genes if g.kind == "rank"}
    assert ranked and all(not name.startswith("layer1.") for name in ranked)
    assert ranked["layer3.1.conv1"] == (16, 32, 64)  # the last level is "not factorised"
    plain = SearchSpace.from_analysis(resnet20[2], 16)
    assert all(g.kind != "rank" for g in plain.genes)
    assert space.decode(space.unpruned()) == PruningPlan(channel_multiple=16)


def test_enumerated_kernels_cover_every_rank_plan(resnet20):
    model, example, analysis, space = resnet20
    keys = set(enumerate_kernels(model, SHAPE, 16, ranks=True))
    plain = set(enumerate_kernels(model, SHAPE, 16))
    assert plain < keys
    rng = np.random.default_rng(1)
    seen_ranked = 0
    for genome in space.random(rng, 12):
        plan = space.decode(genome)
        net = apply_plan(model, plan, example, analysis=analysis)
        ks = extract_kernels(net, SHAPE)
        seen_ranked += sum(bool(k.ranks) for k in ks)
        missing = [k for k in ks if k not in keys]
        assert not missing, missing[0]
        macs_net = sum(k.macs for k in ks)
        assert macs_net == pytest.approx(count_macs(net, example), rel=0.02)
    assert seen_ranked > 0


def test_factorised_network_exports_and_matches(tmp_path, resnet20):
    import onnxruntime as ort

    from edgeprune.export.onnx_export import export_onnx

    model, example, analysis, _ = resnet20
    plan = PruningPlan(ranks={"layer3.1.conv1": 16, "layer3.2.conv2": 32, "layer2.0.conv1": 16})
    net = apply_plan(model, plan, example, analysis=analysis)
    path = export_onnx(net, example, tmp_path / "lr.onnx").path
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = torch.randn(1, *SHAPE)
    with torch.no_grad():
        ref = net(x).numpy()
    out = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
    assert np.abs(out - ref).max() < 1e-4
