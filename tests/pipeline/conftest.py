import shutil
from pathlib import Path

import pytest
import yaml

from tests.pipeline.transfer_fixtures import animals, transfer_run  # noqa: F401  (shared fixtures)

SMALL = {
    "search": {"generations": 2, "population": 8, "val_size": 200, "calib_batches": 2, "batch_size": 64},
    "pretrain": {"epochs": 3},
    "finalize": {"epochs": 1},
    "ship": {"verify_images": 300},
}


@pytest.fixture(scope="session")
def frozen_profiles(tmp_path_factory) -> Path:
    """A snapshot of hw_profiles/ so a profiling run elsewhere cannot change a test's figures."""
    from edgeprune.latency import load_profile

    src = load_profile("host-cpu").profile_dir
    dst = tmp_path_factory.mktemp("profiles") / "hw_profiles"
    shutil.copytree(src, dst)
    return dst


@pytest.fixture(scope="session")
def small_yaml() -> str:
    """YAML of a ~1 minute default job."""
    return yaml.safe_dump(SMALL)


@pytest.fixture()
def small_config(tmp_path, frozen_profiles, monkeypatch, small_yaml) -> Path:
    """A YAML config file for a ~1 minute default job, with the frozen profiles."""
    monkeypatch.setenv("EDGEPRUNE_PROFILES_DIR", str(frozen_profiles))
    path = tmp_path / "small.yaml"
    path.write_text(small_yaml)
    return path
