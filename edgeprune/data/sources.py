"""Readers for the data sources a user can name: built-in digits, ``.npz`` files, directories of
``.npz`` splits, and image folders. Each returns raw uint8 NHWC arrays and integer labels.

A directory's ``train*.npz`` files (and ``test*.npz`` files) are all read, in name order, and joined
into one pool; ``extra_train`` appends further training files (or directories of ``train*.npz``) to
the source's pool. Joined files must agree on image size, channels and class names.
"""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeprune.errors import DataError

_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


@dataclass(frozen=True)
class RawSplit:
    """Images as uint8 (N, H, W, C) and labels as int64 (N,)."""

    x: np.ndarray
    y: np.ndarray


@dataclass(frozen=True)
class RawSource:
    """What a source provides: a training pool, an optional test split, class names."""

    train: RawSplit
    test: RawSplit | None
    classes: tuple[str, ...]
    name: str


def _check_split(split: RawSplit, where: str, num_classes: int | None) -> RawSplit:
    x, y = split.x, split.y
    if x.ndim != 4:
        raise DataError(f"{where}: images must have shape (N, H, W, C), got {x.shape}")
    if x.dtype != np.uint8:
        raise DataError(f"{where}: images must be uint8 0..255, got dtype {x.dtype}")
    if x.shape[3] not in (1, 3, 4):
        raise DataError(f"{where}: images must be channels-last with 1, 3 or 4 channels, got shape {x.shape}")
    if y.ndim != 1 or len(y) != len(x):
        raise DataError(f"{where}: labels must have shape ({len(x)},), got {y.shape}")
    if len(x) == 0:
        raise DataError(f"{where}: no images")
    if not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"{where}: labels must be integers, got dtype {y.dtype}")
    if y.min() < 0 or (num_classes is not None and y.max() >= num_classes):
        raise DataError(
            f"{where}: label {int(y.max() if y.min() >= 0 else y.min())} is out of range 0..{(num_classes or 1) - 1}"
        )
    return RawSplit(np.ascontiguousarray(x), y.astype(np.int64))


def read_npz(path: Path) -> tuple[RawSplit, tuple[str, ...] | None]:
    """An ``.npz`` with ``x`` (N,H,W,C uint8), ``y`` (N,) and optionally ``classes``."""
    try:
        with np.load(path, allow_pickle=False) as f:
            missing = [k for k in ("x", "y") if k not in f.files]
            if missing:
                raise DataError(
                    f"{path}: npz has no array {missing[0]!r} (expected x (N,H,W,C uint8) and y (N,))"
                )
            x, y = f["x"], f["y"]
            classes = tuple(str(c) for c in f["classes"]) if "classes" in f.files else None
    except FileNotFoundError:
        raise DataError(f"data file not found: {path}") from None
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as err:
        raise DataError(
            f"{path}: not a readable npz file ({str(err).splitlines()[0] if str(err) else type(err).__name__})"
        ) from None
    if x.ndim == 3:  # (N, H, W): grayscale without channel axis
        x = x[..., None]
    split = _check_split(RawSplit(x, y), str(path), len(classes) if classes else None)
    return split, classes


def read_digits() -> RawSource:
    """scikit-learn's 8x8 handwritten digits (1,797 images, ships inside scikit-learn: no download)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = np.round(d.images * (255.0 / 16.0)).astype(np.uint8)[..., None]
    return RawSource(RawSplit(x, d.target.astype(np.int64)), None, tuple(str(i) for i in range(10)), "digits")


def _read_image_folder(
    root: Path, classes: tuple[str, ...] | None, size: tuple[int, int] | None
) -> tuple[RawSplit, tuple[str, ...]]:
    from PIL import Image, UnidentifiedImageError

    found = tuple(sorted(p.name for p in root.iterdir() if p.is_dir()))
    if not found:
        raise DataError(f"{root}: image folder has no class sub-folders")
    classes = classes or found
    images: list[np.ndarray] = []
    labels: list[int] = []
    for label, cls in enumerate(classes):
        folder = root / cls
        if not folder.is_dir():
            continue
        for f in sorted(folder.iterdir()):
            if f.suffix.lower() not in _IMAGE_SUFFIXES:
                continue
            try:
                with Image.open(f) as im:
                    rgb = im.convert("RGB")
                    if size is not None:
                        rgb = rgb.resize((size[1], size[0]), Image.Resampling.BILINEAR)
                    arr = np.asarray(rgb, dtype=np.uint8)
            except (UnidentifiedImageError, OSError) as err:
                raise DataError(f"{f}: not a readable image ({err})") from None
            if images and arr.shape != images[0].shape:
                raise DataError(
                    f"{f}: image is {arr.shape[1]}x{arr.shape[0]} but earlier ones are "
                    f"{images[0].shape[1]}x{images[0].shape[0]}; set the data input_size to resize"
                )
            images.append(arr)
            labels.append(label)
    if not images:
        raise DataError(f"{root}: image folder holds no images")
    return RawSplit(np.stack(images), np.asarray(labels, dtype=np.int64)), classes


@dataclass(frozen=True)
class _Part:
    """One file's images, labels and class names (None: the file names none)."""

    split: RawSplit
    classes: tuple[str, ...] | None
    where: str


def _join(parts: Sequence[_Part]) -> tuple[RawSplit, tuple[str, ...] | None]:
    """Concatenate ``parts`` in order after checking that they agree (one-line :class:`DataError`).

    A single part is returned as it is (no copy); several are copied once into one array.
    """
    first = parts[0]
    classes = next((p.classes for p in parts if p.classes is not None), None)
    named = next((p for p in parts if p.classes is not None), first)
    for p in parts[1:]:
        if p.split.x.shape[1:] != first.split.x.shape[1:]:
            raise DataError(
                f"{p.where}: images are {p.split.x.shape[1:]} (H, W, C) but {first.where} has "
                f"{first.split.x.shape[1:]}; joined files must hold images of the same size and channels"
            )
    for p in parts:
        if p.classes is not None and p.classes != classes:
            raise DataError(
                f"{p.where}: classes {list(p.classes)} differ from {list(classes or ())} in {named.where}; "
                "joined files must name the same classes in the same order"
            )
    if classes is not None:
        for p in parts:
            top = int(p.split.y.max())
            if top >= len(classes):
                raise DataError(f"{p.where}: label {top} is out of range 0..{len(classes) - 1}")
    if len(parts) == 1:
        return first.split, classes
    x = np.concatenate([p.split.x for p in parts])
    y = np.concatenate([p.split.y for p in parts])
    return RawSplit(x, y), classes


def _npz_parts(path: Path, pattern: str) -> list[_Part]:
    return [_Part(*read_npz(f), str(f)) for f in sorted(path.glob(pattern))]


def _extra_parts(entry: str) -> list[_Part]:
    """The training files one ``extra_train`` entry names: an ``.npz`` or a directory of ``train*.npz``."""
    path = Path(entry)
    if path.is_file():
        return [_Part(*read_npz(path), str(path))]
    if path.is_dir():
        parts = _npz_parts(path, "train*.npz")
        if not parts:
            raise DataError(f"extra training data {path}: directory holds no train*.npz file")
        return parts
    raise DataError(f"extra training data not found: {path} (give an .npz file or a directory of train*.npz)")


def read_source(
    source: str, size: tuple[int, int] | None = None, extra_train: Sequence[str] = ()
) -> RawSource:
    """Read the source a :class:`~edgeprune.config.DataConfig` names, plus its extra training files."""
    train, test, classes, name = _read_primary(source, size)
    if extra_train:
        parts = [_Part(train, classes, source)]
        for entry in extra_train:
            parts.extend(_extra_parts(entry))
        train, classes = _join(parts)
    return RawSource(train, test, classes or _default_classes(train), name)


def _read_primary(
    source: str, size: tuple[int, int] | None
) -> tuple[RawSplit, RawSplit | None, tuple[str, ...] | None, str]:
    """(training pool, test split or None, class names or None when the files name none, name)."""
    if source == "digits":
        d = read_digits()
        return d.train, d.test, d.classes, d.name
    path = Path(source)
    if not path.exists():
        raise DataError(
            f"data not found: {path} (give 'digits', an .npz file, a directory of train/test .npz, or an image folder)"
        )
    if path.is_file():
        split, classes = read_npz(path)
        return split, None, classes, path.stem
    train_parts = _npz_parts(path, "train*.npz")
    if train_parts:
        train, classes = _join(train_parts)
        test = None
        test_parts = _npz_parts(path, "test*.npz")
        if test_parts:
            test, test_classes = _join(test_parts)
            if classes is not None and test_classes is not None and classes != test_classes:
                raise DataError(
                    f"{path}: the train files name classes {list(classes)} but the test files {list(test_classes)}"
                )
            classes = classes or test_classes
            if train.x.shape[1:] != test.x.shape[1:]:
                raise DataError(
                    f"{path}: train images are {train.x.shape[1:]} but test images are {test.x.shape[1:]}"
                )
        return train, test, classes, path.name
    if (path / "train").is_dir():
        train, classes = _read_image_folder(path / "train", None, size)
        test = _read_image_folder(path / "test", classes, size)[0] if (path / "test").is_dir() else None
        return train, test, classes, path.name
    train, classes = _read_image_folder(path, None, size)
    return train, None, classes, path.name


def _default_classes(split: RawSplit) -> tuple[str, ...]:
    return tuple(str(i) for i in range(int(split.y.max()) + 1))
