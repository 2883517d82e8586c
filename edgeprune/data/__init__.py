"""Data import (load stage): sources, deterministic splits, normalisation.

``load_data(DataConfig) -> DataBundle``: splits ``train``, ``val``, ``calib`` (drawn from train, for
BatchNorm recalibration and INT8 calibration) and ``test``, as normalised float32 NCHW tensors.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from edgeprune.config import DataConfig
from edgeprune.data.sources import RawSource, RawSplit, read_source
from edgeprune.errors import DataError

__all__ = ["DataBundle", "Split", "load_data"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Split:
    """Normalised images (N, C, H, W) float32 and labels (N,) int64."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def head(self, n: int) -> Split:
        """The first ``n`` examples: a fair sample, since every split is shuffled (seeded) by ``load_data``."""
        return Split(self.x[:n], self.y[:n])


@dataclass(frozen=True)
class DataBundle:
    """The splits of one dataset and how its pixels were normalised."""

    train: Split
    val: Split
    calib: Split
    test: Split
    classes: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    name: str

    @property
    def input_shape(self) -> tuple[int, int, int]:
        c, h, w = self.train.x.shape[1:]
        return int(c), int(h), int(w)

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def _normalise(raw: RawSplit, mean: np.ndarray, std: np.ndarray, size: tuple[int, int] | None) -> Split:
    # NCHW in uint8 first (1 byte a pixel), then one float32 copy normalised in place: the peak is the
    # result plus a quarter of it (the full 50k CIFAR-10 pool: 600 MB + 150 MB), not three float copies
    x = torch.from_numpy(raw.x).permute(0, 3, 1, 2).contiguous().float().div_(255.0)
    if size is not None and tuple(x.shape[2:]) != tuple(size):
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False).contiguous()
    m = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
    return Split(x.sub_(m).div_(s), torch.from_numpy(raw.y))


def _take(raw: RawSplit, idx: np.ndarray) -> RawSplit:
    return RawSplit(raw.x[idx], raw.y[idx])


def _stats(cfg: DataConfig, raw: RawSource) -> tuple[tuple[float, ...], tuple[float, ...]]:
    channels = raw.train.x.shape[3]
    if cfg.mean is not None and cfg.std is not None:
        mean, std = cfg.mean, cfg.std
    elif channels == 3:
        mean, std = IMAGENET_MEAN, IMAGENET_STD
    else:
        pix = raw.train.x.reshape(-1, channels).astype(np.float64) / 255.0
        mean = tuple(round(float(v), 4) for v in pix.mean(0))
        std = tuple(round(float(v), 4) for v in pix.std(0))
    if len(mean) != channels or len(std) != channels:
        raise DataError(
            f"normalisation has {len(mean)} mean / {len(std)} std values but the images have {channels} channels"
        )
    return tuple(mean), tuple(std)


def load_data(cfg: DataConfig) -> DataBundle:
    """Read ``cfg.source`` (and ``cfg.extra_train``) and split it deterministically from ``cfg.seed``.

    The extra training files are appended to the source's training pool before it is shuffled, so
    without them the pool, and therefore every split, is exactly the source's own.
    """
    raw = read_source(cfg.source, cfg.input_size, cfg.extra_train)
    if raw.train.x.shape[3] == 4:
        raise DataError(f"{cfg.source}: 4-channel images are not supported; convert to RGB")
    if int(raw.train.y.max()) >= len(raw.classes):
        raise DataError(f"{cfg.source}: label {int(raw.train.y.max())} but only {len(raw.classes)} classes")
    rng = np.random.default_rng(cfg.seed)
    n = len(raw.train.y)
    order = rng.permutation(n)
    n_val = max(1, int(round(n * cfg.val_fraction)))
    if raw.test is None:
        n_test = max(1, int(round(n * cfg.test_fraction)))
        test_raw = _take(raw.train, order[:n_test])
        order = order[n_test:]
    else:  # a test file is often sorted by class: shuffle it too, so any head() is a fair sample
        test_raw = _take(raw.test, rng.permutation(len(raw.test.y)))
    val_idx, train_idx = order[:n_val], order[n_val:]
    if len(train_idx) < 2:
        raise DataError(f"{cfg.source}: too few images ({n}) to split into train / validation / test")
    mean, std = _stats(cfg, raw)
    train = _normalise(_take(raw.train, train_idx), np.array(mean), np.array(std), cfg.input_size)
    val = _normalise(_take(raw.train, val_idx), np.array(mean), np.array(std), cfg.input_size)
    test = _normalise(test_raw, np.array(mean), np.array(std), cfg.input_size)
    calib = train.head(min(cfg.calib_size, len(train)))
    return DataBundle(train, val, calib, test, raw.classes, mean, std, raw.name)
