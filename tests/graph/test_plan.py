"""PruningPlan: JSON, keys, validation, rounding, uniform plans, predicted parameter counts."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from edgeprune.config import ModelConfig
from edgeprune.errors import ConfigError
from edgeprune.graph import PruningPlan, analyze, predict_params, round_channels, uniform_plan, validate_plan
from edgeprune.models import build_model


@pytest.fixture(scope="module")
def resnet20_analysis():
    model = build_model(ModelConfig(name="resnet20")).model
    return analyze(model, torch.zeros(1, 3, 32, 32), channel_multiple=8)


def test_round_channels():
    assert round_channels(11.2, 8, 16) == 8
    assert round_channels(12.0, 8, 16) == 16  # half rounds up to the full width
    assert round_channels(0.1, 8, 64) == 8  # never below one multiple
    assert round_channels(70, 8, 64) == 64
    assert round_channels(5, 8, 6) == 6  # narrower than one multiple: unpruned
    assert round_channels(44.9, 16, 64) == 48
    with pytest.raises(ConfigError):
        round_channels(3, 0, 8)


@given(
    keep=st.dictionaries(st.text(min_size=1, max_size=12), st.integers(1, 4096), max_size=6),
    drop=st.lists(st.text(min_size=1, max_size=12), max_size=4),
    criterion=st.sampled_from(["l1", "l2", "bn_scale", "taylor"]),
    multiple=st.integers(1, 32),
)
def test_plan_json_round_trip(keep, drop, criterion, multiple):
    plan = PruningPlan(keep=keep, drop_blocks=tuple(drop), criterion=criterion, channel_multiple=multiple)
    again = PruningPlan.from_json(plan.to_json())
    assert again == plan and again.key() == plan.key() and hash(again) == hash(plan)
    assert again.drop_blocks == tuple(sorted(set(drop)))


def test_plan_key_is_canonical():
    a = PruningPlan(keep={"b": 8, "a": 16}, drop_blocks=("x", "w"))
    b = PruningPlan(keep={"a": 16, "b": 8}, drop_blocks=("w", "x", "w"))
    assert a == b and a.key() == b.key()
    assert a.key() != PruningPlan(keep={"a": 16, "b": 8}, criterion="l2").key()


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[]",
        '{"keep": {"a": 0}}',
        '{"keep": {"a": 1.5}}',
        '{"criterion": "random"}',
        '{"version": 9}',
        '{"extra": 1}',
    ],
)
def test_malformed_plans_are_config_errors(text):
    with pytest.raises(ConfigError):
        PruningPlan.from_json(text)


def test_validate_against_the_analysis(resnet20_analysis):
    a = resnet20_analysis
    validate_plan(a, PruningPlan(keep={"stage:layer2": 24}, drop_blocks=("layer2.2",), channel_multiple=8))
    with pytest.raises(ConfigError, match="unknown channel group"):
        validate_plan(a, PruningPlan(keep={"nope": 8}))
    with pytest.raises(ConfigError, match="has only 16"):
        validate_plan(a, PruningPlan(keep={"stage:layer1": 24}))
    with pytest.raises(ConfigError, match="not a multiple of 8"):
        validate_plan(a, PruningPlan(keep={"stage:layer2": 20}, channel_multiple=8))
    with pytest.raises(ConfigError, match="not a droppable"):
        validate_plan(a, PruningPlan(drop_blocks=("layer2.0",)))  # its shortcut changes the shape


def test_predict_params_by_hand(resnet20_analysis):
    a = resnet20_analysis
    assert predict_params(a, PruningPlan()) == 269_722
    # one inner group of layer3 from 64 to 32: conv1 out, bn1 (w, b), conv2 in
    assert (
        predict_params(a, PruningPlan(keep={"layer3.1.conv1": 32}))
        == 269_722 - 32 * 64 * 9 - 2 * 32 - 64 * 32 * 9
    )
    # dropping a layer1 block removes two 16x16x3x3 convs and two BNs
    assert predict_params(a, PruningPlan(drop_blocks=("layer1.1",))) == 269_722 - 2 * (16 * 16 * 9 + 32)


def test_uniform_plan(resnet20_analysis):
    a = resnet20_analysis
    plan = uniform_plan(a, 0.3, channel_multiple=8)
    assert (
        plan.keep["stage:layer3"] == 48
        and plan.keep["layer2.1.conv1"] == 24
        and plan.keep["stage:layer1"] == 8
    )
    assert uniform_plan(a, 0.0).keep == {}
    with pytest.raises(ConfigError):
        uniform_plan(a, 1.0)
