"""Shared fixtures: the real data in ../shared/data (CI has it beside the clone)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = (REPO_ROOT / ".." / "shared" / "data").resolve()


def _gpu_available() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except ImportError:
        return False


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip ``gpu`` tests where there is no CUDA GPU."""
    if _gpu_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def edgeprune_home(tmp_path_factory: pytest.TempPathFactory):
    """Tests measure into their own user data directory, never the real one (compiles in subprocesses
    inherit it): a session starts with no table of this machine."""
    home = tmp_path_factory.mktemp("edgeprune_home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EDGEPRUNE_HOME", str(home))
        yield home


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data``; tests that need it skip loudly when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def cifar_test_npz(shared_data: Path) -> Path:
    return shared_data / "cifar10" / "test.npz"


@pytest.fixture(scope="session")
def pretrained(shared_data: Path) -> dict[str, Path]:
    """Pretrained CIFAR ResNet weights by family name."""
    d = shared_data / "pretrained"
    return {"resnet20": d / "resnet20-12fca82f.th", "resnet56": d / "resnet56-4bfd9763.th"}
