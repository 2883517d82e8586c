"""The flat NSGA-III's seeding and variation operators on ResNet-56's space at host-cpu's multiple."""

import numpy as np
import pytest
import torch
from pymoo.core.population import Population
from pymoo.core.problem import Problem

from edgeprune.config import ModelConfig
from edgeprune.graph import analyze
from edgeprune.models import build_model
from edgeprune.search.nsga import initial_population, make_nsga3
from edgeprune.space import SearchSpace


@pytest.fixture(scope="module")
def space():
    model = build_model(ModelConfig(name="resnet56")).model
    return SearchSpace.from_analysis(analyze(model, torch.zeros(1, 3, 32, 32), channel_multiple=16), 16)


def test_initial_population_holds_unpruned_uniform_and_shallower_genomes(space):
    X = initial_population(space, 20, np.random.default_rng(0))
    assert len({tuple(r) for r in X.astype(int).tolist()}) == 20
    plans = [space.decode(x) for x in X]
    assert plans[0] == space.decode(space.unpruned())
    assert any(p.keep and not p.drop_blocks for p in plans), "a uniform-ratio seed"
    shallow = space.decode(space.shallow(0.4))
    assert shallow in plans and not shallow.keep
    # layer1 has 9 droppable blocks and keeps round(0.6 * 9) = 5; layer2/3 have 8 (their first block
    # downsamples) and keep round(0.6 * 8) = 5; the trailing ones go
    want = [f"layer1.{i}" for i in (5, 6, 7, 8)] + [f"layer{s}.{i}" for s in (2, 3) for i in (6, 7, 8)]
    assert sorted(shallow.drop_blocks) == sorted(want)


def test_mutation_moves_integer_genes(space):
    """Mutation must reach genes of 2-4 levels; at the continuous default (eta 20) it rounds back ~98 %."""
    algorithm = make_nsga3(3, 20, initial_population(space, 20, np.random.default_rng(0)), seed=0)
    ub = space.upper_bounds.astype(float)
    problem = Problem(n_var=space.n_var, xl=np.zeros(space.n_var), xu=ub)
    X = np.random.default_rng(1).integers(0, space.upper_bounds + 1, size=(1000, space.n_var)).astype(float)
    Y = algorithm.mating.mutation.do(problem, Population.new(X=X), random_state=np.random.default_rng(2))
    Y = np.rint(Y.get("X"))
    assert np.all((Y >= 0) & (Y <= ub))
    changed = np.any(Y != X, axis=1).mean()
    assert changed > 0.1, f"only {changed:.1%} of mutated genomes differ from their parent"
    binary = ub == 1
    assert np.any((Y != X)[:, binary]), "two-level genes never mutate"
