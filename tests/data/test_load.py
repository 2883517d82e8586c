import numpy as np
import pytest
import torch

from edgeprune.config import DataConfig
from edgeprune.data import IMAGENET_MEAN, load_data
from edgeprune.errors import DataError


def test_digits_splits_are_disjoint_and_deterministic():
    a = load_data(DataConfig(source="digits", seed=3))
    b = load_data(DataConfig(source="digits", seed=3))
    c = load_data(DataConfig(source="digits", seed=4))
    assert len(a.train) + len(a.val) + len(a.test) == 1797
    assert torch.equal(a.val.x, b.val.x) and not torch.equal(a.val.x, c.val.x)
    assert a.input_shape == (1, 8, 8) and a.num_classes == 10
    # normalised with the training split's own statistics
    assert abs(float(a.train.x.mean())) < 0.05 and abs(float(a.train.x.std()) - 1) < 0.05


def test_cifar_directory_uses_its_test_split(shared_data):
    b = load_data(DataConfig(source=str(shared_data / "cifar10"), val_fraction=0.2))
    assert (len(b.train), len(b.val), len(b.test)) == (8000, 2000, 10000)
    assert b.classes[0] == "airplane" and b.mean == IMAGENET_MEAN
    # the test file is sorted by class; the split is shuffled (seeded) so any head is a fair sample
    assert len(set(b.test.y[:200].tolist())) == 10 and len(b.calib) == 512
    assert sorted(b.test.y.tolist()) == sorted(
        load_data(DataConfig(source=str(shared_data / "cifar10"), seed=1)).test.y.tolist()
    )


def _npz(tmp_path, **arrays):
    path = tmp_path / "d.npz"
    np.savez(path, **arrays)
    return str(path)


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"x": np.zeros((4, 8, 8, 3), np.uint8)}, "no array 'y'"),
        ({"x": np.zeros((4, 8, 8, 3), np.float32), "y": np.zeros(4, np.int64)}, "uint8"),
        ({"x": np.zeros((4, 8, 8, 3), np.uint8), "y": np.zeros(5, np.int64)}, "labels must have shape"),
        (
            {
                "x": np.zeros((4, 8, 8, 3), np.uint8),
                "y": np.array([0, 1, 2, 9]),
                "classes": np.array(["a", "b"]),
            },
            "out of range",
        ),
        ({"x": np.zeros((4, 8), np.uint8), "y": np.zeros(4, np.int64)}, "shape (N, H, W, C)"),
    ],
)
def test_malformed_npz_is_one_clear_error(tmp_path, arrays, message):
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_data(DataConfig(source=_npz(tmp_path, **arrays)))


def test_truncated_npz_and_missing_path(tmp_path):
    path = tmp_path / "t.npz"
    np.savez(path, x=np.zeros((10, 8, 8, 3), np.uint8), y=np.zeros(10, np.int64))
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(DataError, match="not a readable npz"):
        load_data(DataConfig(source=str(path)))
    with pytest.raises(DataError, match="data not found"):
        load_data(DataConfig(source=str(tmp_path / "nope")))


def test_image_folder(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for cls in ("cat", "dog"):
        (tmp_path / cls).mkdir()
        for i in range(6):
            Image.fromarray(rng.integers(0, 255, (12, 10, 3), dtype=np.uint8)).save(
                tmp_path / cls / f"{i}.png"
            )
    b = load_data(DataConfig(source=str(tmp_path), input_size=(16, 16)))
    assert b.classes == ("cat", "dog") and b.input_shape == (3, 16, 16)
    assert len(b.train) + len(b.val) + len(b.test) == 12
    empty = tmp_path / "empty"
    (empty / "a").mkdir(parents=True)
    with pytest.raises(DataError, match="holds no images"):
        load_data(DataConfig(source=str(empty)))
