"""Fixtures of the search tests: a briefly trained digits-resnet and a frozen host-cpu profile."""

import shutil
from pathlib import Path

import pytest
import yaml
from search_helpers import _TARGET, _spec

from edgeprune.config import DataConfig, ModelConfig
from edgeprune.search.evaluator import Evaluator


@pytest.fixture(scope="module", autouse=True)
def frozen_host_profile(tmp_path_factory):
    """A snapshot of the host-cpu profile and its table, so re-profiling cannot change a test's figures."""
    from edgeprune.latency import load_profile
    from edgeprune.latency.store import reference_table_path

    src = load_profile("host-cpu")
    root = tmp_path_factory.mktemp("profiles")
    (root / "tables").mkdir()
    shutil.copy(reference_table_path(src), root / "tables" / "host-cpu.json")
    yaml_text = yaml.safe_dump(src.to_dict(), sort_keys=False)
    (root / "host-cpu.yaml").write_text(yaml_text)
    _TARGET[:] = [str(root / "host-cpu.yaml")]
    yield


@pytest.fixture(scope="module")
def digits_weights(tmp_path_factory) -> Path:
    """A briefly trained digits-resnet (trained here: nothing is downloaded)."""
    import torch

    from edgeprune.data import load_data
    from edgeprune.models import build_model
    from edgeprune.train import fine_tune

    data = load_data(DataConfig(source="digits"))
    model = build_model(ModelConfig(name="digits-resnet")).model
    fine_tune(model, data.train.x, data.train.y, epochs=3, lr=0.05, batch_size=64, seed=0)
    path = tmp_path_factory.mktemp("w") / "digits.pt"
    torch.save(model.state_dict(), path)
    return path


@pytest.fixture(scope="module")
def evaluator(digits_weights) -> Evaluator:
    return Evaluator(_spec(digits_weights))
