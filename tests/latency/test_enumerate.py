"""The kernels a search space can produce are what profile measures: a table holding exactly
``enumerate_kernels`` prices every candidate of the space, on families and input sizes no other test
names."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edgeprune.config import ModelConfig
from edgeprune.graph import analyze, apply_plan
from edgeprune.latency import LatencyPredictor, extract_kernels
from edgeprune.latency.enumerate import allocate, enumerate_kernels, thin
from edgeprune.latency.predictor import overhead_key
from edgeprune.latency.table import Entry, LatencyTable
from edgeprune.models import build_model
from edgeprune.space import SearchSpace


def _table_of(keys) -> LatencyTable:
    """Entries for exactly ``keys`` (times proportional to MACs: only coverage is under test)."""
    entries = {k: Entry(1e-9 * k.macs + 1e-3, 0, 0, 0, 1) for k in keys}
    entries[overhead_key("fp32")] = Entry(0.01, 0.01, 0.01, 0, 1)
    return LatencyTable({"source": "measured"}, entries)


def _check_space(name: str, shape: tuple[int, int, int], multiple: int, n: int, exact: bool) -> None:
    model = build_model(ModelConfig(name=name, num_classes=10)).model.eval()
    keys = enumerate_kernels(model, shape, multiple)
    pred = LatencyPredictor("measured", "fp32", table=_table_of(keys))
    example = torch.zeros(1, *shape)
    analysis = analyze(model, example, multiple)
    space = SearchSpace.from_analysis(analysis, multiple)
    rng = np.random.default_rng(0)
    table_keys = set(keys)
    for genome in [space.unpruned(), *space.random(rng, n)]:
        pruned = apply_plan(model, space.decode(genome), example, analysis=analysis)
        kernels = extract_kernels(pruned, shape)
        assert pred.uncovered(kernels) == []  # the search can never meet a kernel it cannot price
        if exact:
            assert set(kernels) <= table_keys  # every kernel measured, none interpolated


def test_thinning_keeps_the_ends_and_the_budget():
    assert thin(list(range(10)), 3) == [0, 4, 9]
    assert thin([1, 2], 5) == [1, 2]
    assert allocate([2, 4, 4], 32) == [2, 4, 4]  # ResNet-56's downsampling block: all 32 measured
    assert allocate([36, 6, 6], 32) == [3, 3, 3]  # the widest gene gives way first, then all evenly
    assert min(allocate([36, 36, 36], 8)) == 2


def test_digits_space_is_measured_exactly():
    _check_space("digits-resnet", (1, 8, 8), 16, n=20, exact=True)


@pytest.mark.slow
def test_mobilenet_v3_small_at_40px_is_covered():
    # a family whose depthwise convs change groups when pruned, at an input size no other test names
    _check_space("torchvision:mobilenet_v3_small", (3, 40, 40), 16, n=15, exact=False)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "shape"), [("torchvision:resnet18", (3, 48, 48)), ("torchvision:mnasnet0_5", (3, 56, 56))]
)
def test_more_torchvision_families_are_covered(name, shape):
    _check_space(name, shape, 16, n=10, exact=False)
