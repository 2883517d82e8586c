"""A small `edgeprune compile --transfer` run, shared by the transfer tests (imported by conftest.py):
a CIFAR-10 ResNet-20 backbone on a 6-class animal task built from ../shared/data. The backbone saw all
of CIFAR-10's training set, so every split of the task comes from CIFAR-10's test.npz (disjoint
halves): images the backbone never trained on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

ANIMALS = (2, 3, 4, 5, 6, 7)  # bird cat deer dog frog horse -> 0..5
TINY = {
    "search": {"generations": 1, "population": 6, "val_size": 120, "calib_batches": 2, "batch_size": 64},
    "pretrain": {"epochs": 15, "lr": 0.05},
    "finalize": {"epochs": 2, "baseline": False},
    "ship": {"verify_images": 120},
}


def write_animal_task(shared: Path, out: Path, per_class_train: int, per_class_test: int) -> Path:
    """train_animals.npz and test_animals.npz, labels 0..5, both from CIFAR-10's test.npz (1000 images
    per class; train from the first 500 of each class, test from the last 500): images the backbone
    never trained on, in every split."""
    out.mkdir(parents=True, exist_ok=True)
    remap = np.full(10, -1)
    remap[list(ANIMALS)] = np.arange(len(ANIMALS))
    d = np.load(shared / "cifar10" / "test.npz")
    y = remap[d["y"]]
    classes = np.array([d["classes"][c] for c in ANIMALS])
    for split, start, per in (("train", 0, per_class_train), ("test", 500, per_class_test)):
        idx = np.concatenate([np.flatnonzero(y == c)[start : start + per] for c in range(len(ANIMALS))])
        np.savez(out / f"{split}_animals.npz", x=d["x"][idx], y=y[idx].astype(np.int64), classes=classes)
    return out


@pytest.fixture(scope="session")
def animals(shared_data, tmp_path_factory) -> Path:
    return write_animal_task(shared_data, tmp_path_factory.mktemp("animals"), 100, 40)


@pytest.fixture(scope="session")
def transfer_run(animals, pretrained, frozen_profiles, tmp_path_factory) -> Path:
    """One tiny transfer compile (session-shared: tests only read its run directory, or copy it)."""
    from edgeprune.cli import main

    root = tmp_path_factory.mktemp("transfer")
    cfg = root / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(TINY))
    out = root / "run"
    mp = pytest.MonkeyPatch()
    mp.setenv("EDGEPRUNE_PROFILES_DIR", str(frozen_profiles))
    try:
        rc = main(["compile", "resnet20", "--transfer", "--weights", str(pretrained["resnet20"]), "--head-hidden", "32",
                   "--data", str(animals), "--config", str(cfg), "--out", str(out), "--quiet", "--seed", "1"])  # fmt: skip
    finally:
        mp.undo()
    assert rc == 0
    return out
