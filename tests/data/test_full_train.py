"""The full 50k CIFAR-10 training pool: several training files joined, the 10k default untouched."""

import numpy as np
import pytest
import torch

from edgeprune.config import DataConfig
from edgeprune.data import IMAGENET_MEAN, IMAGENET_STD, load_data
from edgeprune.errors import DataError


@pytest.fixture(scope="module")
def extra_40k(shared_data):
    path = shared_data / "cifar10-extra" / "train_40k.npz"
    if not path.is_file():
        pytest.skip(f"the 40k extra CIFAR-10 training images are not at {path}")
    return path


def _normalised(x: np.ndarray) -> torch.Tensor:
    t = torch.from_numpy(x).permute(0, 3, 1, 2).float() / 255.0
    m = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    s = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (t - m) / s


def test_the_10k_default_is_unchanged(shared_data):
    """``--data cifar10`` is still train_10k.npz alone, split by the seeded permutation as before."""
    with np.load(shared_data / "cifar10" / "train_10k.npz") as f:
        x, y = f["x"], f["y"].astype(np.int64)
    b = load_data(DataConfig(source=str(shared_data / "cifar10")))
    order = np.random.default_rng(0).permutation(10_000)  # data.seed 0, val_fraction 0.2
    assert (len(b.train), len(b.val), len(b.test)) == (8000, 2000, 10_000)
    assert torch.equal(b.val.y, torch.from_numpy(y[order[:2000]]))
    assert torch.equal(b.train.y, torch.from_numpy(y[order[2000:]]))
    assert torch.allclose(b.train.x[:8], _normalised(x[order[2000:2008]]), atol=1e-6)
    assert torch.allclose(b.val.x[:8], _normalised(x[order[:8]]), atol=1e-6)
    assert b.train.x.is_contiguous() and b.train.x.dtype == torch.float32


def test_extra_train_gives_the_full_50k_pool(shared_data, extra_40k, tmp_path):
    cfg = DataConfig(source=str(shared_data / "cifar10"), extra_train=(str(extra_40k),))
    b = load_data(cfg)
    assert (len(b.train), len(b.val), len(b.test)) == (40_000, 10_000, 10_000)
    assert b.classes[0] == "airplane" and b.num_classes == 10 and b.input_shape == (3, 32, 32)
    pool = torch.cat([b.train.y, b.val.y])
    assert torch.bincount(pool, minlength=10).tolist() == [5000] * 10  # 1000 + 4000 per class
    assert torch.bincount(b.test.y, minlength=10).tolist() == [1000] * 10
    first_val = b.val.x[:4].clone()
    del b
    # a directory holding both training files is the same pool, in the same (name) order
    both = tmp_path / "cifar10-full"
    both.mkdir()
    for f in (shared_data / "cifar10" / "train_10k.npz", extra_40k, shared_data / "cifar10" / "test.npz"):
        (both / f.name).symlink_to(f)
    d = load_data(DataConfig(source=str(both)))
    assert (len(d.train), len(d.val), len(d.test)) == (40_000, 10_000, 10_000)
    assert torch.equal(d.val.x[:4], first_val)


def _write(path, n=12, shape=(8, 8, 3), dtype=np.uint8, classes=("a", "b", "c"), labels=None):
    x = np.random.default_rng(0).integers(0, 256, size=(n, *shape)).astype(dtype)
    y = labels if labels is not None else np.arange(n) % 3
    arrays = {"x": x, "y": y}
    if classes is not None:
        arrays["classes"] = np.array(classes)
    np.savez(path, **arrays)
    return path


def test_a_directory_joins_all_its_train_files_in_name_order(tmp_path):
    _write(tmp_path / "train_b.npz", n=10)
    _write(tmp_path / "train_a.npz", n=6)
    _write(tmp_path / "test.npz", n=9)
    b = load_data(DataConfig(source=str(tmp_path), val_fraction=0.25))
    assert len(b.train) + len(b.val) == 16 and len(b.test) == 9 and b.classes == ("a", "b", "c")


def test_extra_train_accepts_a_directory_and_one_path_in_yaml(tmp_path):
    _write(tmp_path / "main.npz", n=20)
    more = tmp_path / "more"
    more.mkdir()
    _write(more / "train_1.npz", n=8)
    _write(more / "train_2.npz", n=4, classes=None)  # no class names: the source's apply
    cfg = DataConfig.from_mapping({"source": str(tmp_path / "main.npz"), "extra_train": str(more)})
    assert cfg.extra_train == (str(more),)
    b = load_data(cfg)
    assert len(b.train) + len(b.val) + len(b.test) == 32
    assert DataConfig.from_mapping({"source": "digits"}).extra_train == ()  # old configs load unchanged


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"shape": (16, 16, 3)}, r"images are \(16, 16, 3\) \(H, W, C\) but .* has \(8, 8, 3\)"),
        ({"shape": (8, 8, 1)}, r"images are \(8, 8, 1\)"),
        ({"dtype": np.float32}, "images must be uint8"),
        ({"classes": ("a", "c", "b")}, r"classes \['a', 'c', 'b'\] differ from \['a', 'b', 'c'\]"),
        ({"classes": None, "labels": np.full(12, 5)}, r"label 5 is out of range 0\.\.2"),
    ],
)
def test_a_mismatched_extra_file_is_one_clear_error(tmp_path, extra, message):
    _write(tmp_path / "train.npz")
    bad = _write(tmp_path / "bad.npz", **extra)
    with pytest.raises(DataError, match=message) as err:
        load_data(DataConfig(source=str(tmp_path), extra_train=(str(bad),)))
    assert "\n" not in str(err.value) and "bad.npz" in str(err.value)


def test_a_mismatched_extra_is_refused_beside_real_cifar(shared_data, tmp_path):
    bad = _write(tmp_path / "small.npz", shape=(16, 16, 3), classes=None)
    with pytest.raises(DataError, match="small.npz: images are") as err:
        load_data(DataConfig(source=str(shared_data / "cifar10"), extra_train=(str(bad),)))
    assert "\n" not in str(err.value)


def test_missing_or_empty_extra_is_one_clear_error(tmp_path):
    _write(tmp_path / "train.npz")
    with pytest.raises(DataError, match="extra training data not found"):
        load_data(DataConfig(source=str(tmp_path), extra_train=(str(tmp_path / "nope.npz"),)))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="holds no train\\*.npz"):
        load_data(DataConfig(source=str(tmp_path), extra_train=(str(tmp_path / "empty"),)))


def test_compile_extra_train_option_reaches_the_data_config():
    from edgeprune.cli.cmd_compile import _overrides, command

    def params(*args):
        return command.make_context("compile", list(args)).params

    given = params("--data", "d", "--extra-train", "a.npz", "--extra-train", "more/")
    assert given["extra_train"] == ("a.npz", "more/")
    assert _overrides(data="d", extra_train=given["extra_train"])["data"] == {
        "source": "d",
        "extra_train": ("a.npz", "more/"),
    }
    assert params("--data", "d")["extra_train"] is None  # not given: no override at all
