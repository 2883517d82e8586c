import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from edgeprune.config import ModelConfig
from edgeprune.errors import ConfigError
from edgeprune.graph import PruningPlan, analyze, apply_plan, predict_params
from edgeprune.models import build_model
from edgeprune.space import SearchSpace, channel_levels


@pytest.fixture(scope="module")
def resnet20_space():
    model = build_model(ModelConfig(name="resnet20")).model
    example = torch.zeros(1, 3, 32, 32)
    analysis = analyze(model, example, channel_multiple=8)
    return model, example, analysis, SearchSpace.from_analysis(analysis, 8)


def test_channel_levels():
    assert channel_levels(64, 16) == (16, 32, 48, 64)
    assert channel_levels(20, 8) == (8, 16, 20)
    assert channel_levels(8, 16) == (8,)


def test_space_has_architecture_and_pruning_genes(resnet20_space):
    _, _, _analysis, space = resnet20_space
    kinds = [g.kind for g in space.genes]
    assert kinds.count("depth") == 3  # one per stage
    assert kinds.count("width") >= 1 and kinds.count("keep") >= 9
    assert space.size == int(np.prod([len(g.levels) for g in space.genes]))
    # the unpruned genome is a valid genome and decodes to the empty plan
    plan = space.decode(space.unpruned())
    assert plan.keep == {} and plan.drop_blocks == ()


@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_decode_encode_round_trip(resnet20_space, data):
    _, _, _, space = resnet20_space
    genome = np.array([data.draw(st.integers(0, g.upper)) for g in space.genes])
    plan = space.decode(genome)
    again = space.decode(space.encode(plan))
    assert again == plan
    assert PruningPlan.from_json(plan.to_json()) == plan
    assert all(
        v % 8 == 0 or v == dict((g.target, g.levels[-1]) for g in space.genes).get(k)
        for k, v in plan.keep.items()
    )


@settings(max_examples=20, deadline=None)
@given(data=st.data())
def test_repair_keeps_any_vector_valid(resnet20_space, data):
    _, _, _, space = resnet20_space
    raw = np.array([data.draw(st.floats(-5, 20, allow_nan=False)) for _ in space.genes])
    g = space.repair(raw)
    assert g.dtype.kind == "i" and np.all(g >= 0) and np.all(g <= space.upper_bounds)
    space.decode(raw)  # never raises


def test_decoded_plan_builds_the_predicted_network(resnet20_space):
    model, example, analysis, space = resnet20_space
    rng = np.random.default_rng(0)
    for genome in space.random(rng, 3):
        plan = space.decode(genome)
        pruned = apply_plan(model, plan, example)
        assert pruned(example).shape == (1, 10)
        assert sum(p.numel() for p in pruned.parameters()) == predict_params(analysis, plan)


def test_dropped_blocks_alias_to_one_plan(resnet20_space):
    _, _, _, space = resnet20_space
    depth = [i for i, g in enumerate(space.genes) if g.kind == "depth"]
    g = space.unpruned()
    g[depth[0]] = 0
    a = space.decode(g)
    inner = [i for i, gene in enumerate(space.genes) if gene.block in a.drop_blocks]
    assert inner, "a dropped block's inner genes exist"
    g2 = g.copy()
    g2[inner] = 0
    assert space.decode(g2) == a


def test_wrong_genome_length_is_a_config_error(resnet20_space):
    _, _, _, space = resnet20_space
    with pytest.raises(ConfigError, match="genes"):
        space.decode(np.zeros(space.n_var + 1))
    assert json.loads(space.decode(space.uniform(0.5)).to_json())


def test_spread_genomes_span_sizes_that_uniform_genomes_do_not(resnet20_space):
    _, _, analysis, space = resnet20_space
    rng = np.random.default_rng(0)

    def sizes(genomes):
        return np.array([predict_params(analysis, space.decode(g)) for g in genomes], dtype=float)

    spread, uniform = space.spread(rng, 40), space.random(rng, 40)
    assert spread.shape == (40, space.n_var) and spread.dtype.kind == "i"
    assert np.all(spread >= 0) and np.all(spread <= space.upper_bounds)
    full = predict_params(analysis, space.decode(space.unpruned()))
    s, u = sizes(spread) / full, sizes(uniform) / full
    # stratified centres: the smallest and the largest decile are both reached
    assert s.min() < 0.15 and s.max() > 0.8
    assert np.ptp(s) > 1.5 * np.ptp(u)
