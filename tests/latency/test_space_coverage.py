"""The shipped host-cpu reference table covers every network the search space can build (no ProfileError)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edgeprune.graph import analyze, apply_plan
from edgeprune.latency import load_profile, predictor_for
from edgeprune.models.registry import resolve_model
from edgeprune.space.genome import SearchSpace


@pytest.mark.parametrize(
    ("name", "shape"),
    [pytest.param("resnet20", (3, 32, 32), marks=pytest.mark.slow), ("digits-resnet", (1, 8, 8))],
)
def test_random_plans_are_predicted_from_measurements(name, shape):
    profile = load_profile("host-cpu")
    model = resolve_model(name, 10).model.eval()
    example = torch.zeros(1, *shape)
    analysis = analyze(model, example, profile.channel_multiple)
    space = SearchSpace.from_analysis(analysis, profile.channel_multiple)
    pred = predictor_for(profile)
    assert pred.source == "measured elsewhere"
    full_ms = pred.predict_ms(model, shape)
    rng = np.random.default_rng(0)
    for genome in space.random(rng, 4):
        pruned = apply_plan(model, space.decode(genome), example, analysis=analysis)
        assert 0 < pred.predict_ms(pruned, shape) <= full_ms * 1.05
