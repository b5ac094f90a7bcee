import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from keras_pixel import data

MNIST_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist"


def test_digits_are_real_8bit_images():
    train, train_labels = data.load_digits("train")
    test, test_labels = data.load_digits("test")
    assert train.shape == (1500, 8, 8, 1) and test.shape == (297, 8, 8, 1)
    assert train.dtype == np.uint8 and train.max() == 255 and train.min() == 0
    assert len(np.unique(train)) == 17
    assert set(np.unique(train_labels)) == set(range(10))
    assert len(test_labels) == 297
    flat = {x.tobytes() for x in train}
    assert sum(x.tobytes() in flat for x in test) < 5, "train and test splits overlap"
    np.testing.assert_array_equal(data.load_digits("test")[0], test)


def _write_idx(path, array, compress):
    header = bytes([0, 0, 8, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    raw = header + array.astype(np.uint8).tobytes()
    if compress:
        with gzip.open(path.with_name(path.name + ".gz"), "wb") as f:
            f.write(raw)
    else:
        path.write_bytes(raw)


@pytest.mark.parametrize("compress", [False, True])
def test_mnist_idx_reader(tmp_path, compress):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (5, 28, 28), dtype=np.uint8)
    labels = np.array([3, 1, 4, 1, 5], np.uint8)
    _write_idx(tmp_path / "t10k-images-idx3-ubyte", images, compress)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte", labels, compress)
    x, y = data.load_mnist_idx(tmp_path, "test")
    assert x.shape == (5, 28, 28, 1) and x.dtype == np.uint8
    np.testing.assert_array_equal(x[..., 0], images)
    np.testing.assert_array_equal(y, labels)
    x2, _ = data.load(f"idx:{tmp_path}", "test")
    np.testing.assert_array_equal(x2, x)


def test_corrupt_idx_files_are_rejected(tmp_path):
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x03" + b"\x00" * 20)
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(b"garbage!")
    with pytest.raises(ValueError, match="truncated or corrupt"):
        data.load_mnist_idx(tmp_path, "test")
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(b"PK\x03\x04" + b"\x00" * 20)
    with pytest.raises(ValueError, match="magic"):
        data.load_mnist_idx(tmp_path, "test")
    with pytest.raises(FileNotFoundError):
        data.load_mnist_idx(tmp_path, "train")


@pytest.mark.skipif(not MNIST_DIR.exists(), reason=f"real MNIST not at {MNIST_DIR}")
def test_real_mnist_from_shared_idx_files():
    x, y = data.load_mnist_idx(MNIST_DIR, "test")
    assert x.shape == (10000, 28, 28, 1)
    train, train_labels = data.load_mnist_idx(MNIST_DIR, "train")
    assert abs(train.mean() / 255 - 0.1307) < 1e-3
    assert np.bincount(train_labels)[:3].tolist() == [5923, 6742, 5958]


def test_tfds_loader_with_mocked_mnist():
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=7):
        x, y = data.load_tfds("mnist", "train")
        ds = data.tfds_dataset("mnist", "test", batch_size=4, with_labels=True)
        images, labels = next(iter(ds))
        cli_x, _ = data.load("tfds:mnist", "test")  # the CLI's --dataset path
        cifar, _ = data.load("tfds:cifar10", "test")
    assert cli_x.shape == (7, 28, 28, 1) and cifar.shape == (7, 32, 32, 3)
    assert x.shape == (7, 28, 28, 1) and x.dtype == np.uint8 and y.shape == (7,)
    assert images.shape == (4, 28, 28, 1) and images.dtype == "uint8" and labels.shape == (4,)


def test_image_folder(tmp_path, rgb_patches):
    for label in ("cats", "dogs"):
        (tmp_path / label).mkdir()
        for k in range(3):
            Image.fromarray(rgb_patches[k + (3 if label == "dogs" else 0)]).save(
                tmp_path / label / f"{k}.png"
            )
    x, y = data.load_image_folder(tmp_path)
    assert x.shape == (6, 8, 8, 3) and x.dtype == np.uint8
    np.testing.assert_array_equal(x, rgb_patches[:6])
    np.testing.assert_array_equal(y, [0, 0, 0, 1, 1, 1])
    gray, _ = data.load_image_folder(tmp_path, image_size=(4, 4), channels=1)
    assert gray.shape == (6, 4, 4, 1)


def test_image_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        data.load_image_folder(tmp_path / "missing")
    with pytest.raises(ValueError, match="No images"):
        data.load_image_folder(tmp_path)


def test_make_dataset_batches_and_reshuffles(digits):
    train, _ = digits
    ds = data.make_dataset(train[:100], batch_size=32, seed=0)
    batches = [b.numpy() for b in ds]
    assert [len(b) for b in batches] == [32, 32, 32, 4]
    assert batches[0].dtype == np.uint8
    epoch2 = np.concatenate([b.numpy() for b in ds])
    epoch1 = np.concatenate(batches)
    assert not np.array_equal(epoch1, epoch2)
    assert sorted(map(bytes, epoch1)) == sorted(map(bytes, train[:100]))
    labelled = next(iter(data.make_dataset(train[:10], np.arange(10), batch_size=4)))
    assert len(labelled) == 2
    with pytest.raises(ValueError, match="uint8"):
        data.make_dataset(train.astype(np.float32))


def test_binarize(digits):
    train, _ = digits
    a = data.binarize(train[:50], seed=0)
    assert set(np.unique(a)) <= {0, 255}
    np.testing.assert_array_equal(a, data.binarize(train[:50], seed=0))
    assert not np.array_equal(a, data.binarize(train[:50], seed=1))
    np.testing.assert_array_equal(a[train[:50] == 0], 0)
    np.testing.assert_array_equal(a[train[:50] == 255], 255)
    ds = data.make_dataset(train[:64], batch_size=64, binarize_dynamic=True, shuffle=False)
    b1, b2 = next(iter(ds)).numpy(), next(iter(ds)).numpy()  # two epochs
    assert set(np.unique(b1)) <= {0, 255} and not np.array_equal(b1, b2)


def test_load_specs(tmp_path, digits):
    train, _ = digits
    np.savez(tmp_path / "d.npz", train_images=train[:5], train_labels=np.arange(5))
    x, y = data.load(f"npz:{tmp_path / 'd.npz'}", "train")
    np.testing.assert_array_equal(x, train[:5])
    np.testing.assert_array_equal(y, np.arange(5))
    with pytest.raises(ValueError, match="Unknown dataset"):
        data.load("imagenet64")
    with pytest.raises(ValueError, match="split"):
        data.load("digits", "validation")


def test_tfds_download_path_runs_and_an_unreachable_source_is_a_clear_error(tmp_path, monkeypatch):
    """The real ``tfds.load`` download path (which needs ``importlib_resources``, a
    dependency tensorflow-datasets does not declare) up to the download, which
    fails here as it does offline."""
    import requests

    def unreachable(self, url, **kwargs):
        raise requests.exceptions.ConnectionError(f"Failed to resolve the host of {url}")

    monkeypatch.setattr(requests.Session, "get", unreachable)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.delenv("KERAS_PIXEL_MNIST_DIR", raising=False)
    with pytest.raises(data.DatasetUnavailableError) as error:
        data.load("mnist", "test", data_dir=str(tmp_path / "tfds"))
    message = str(error.value)
    for part in ("'mnist'", str(tmp_path / "tfds"), "--data-dir", "idx", "mnist.npz"):
        assert part in message, (part, message)
    assert isinstance(error.value, OSError)  # the CLI prints it as one error: line


def test_keras_datasets_cache_is_a_source(tmp_path, monkeypatch):
    import pickle

    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.delenv("KERAS_PIXEL_MNIST_DIR", raising=False)
    folder = tmp_path / "datasets"
    (folder / "cifar-10-batches-py").mkdir(parents=True)
    assert data.load_keras_cache("mnist") is None
    rng = np.random.default_rng(0)
    mnist = {
        f"{x}_{split}": rng.integers(0, 256, shape, np.uint8)
        for split, n in (("train", 5), ("test", 3))
        for x, shape in (("x", (n, 28, 28)), ("y", (n,)))
    }
    np.savez(folder / "mnist.npz", **mnist)
    images, labels = data.load("mnist", "test")
    np.testing.assert_array_equal(images[..., 0], mnist["x_test"])
    np.testing.assert_array_equal(labels, mnist["y_test"])

    chw = rng.integers(0, 256, (2, 3, 32, 32), np.uint8)
    for name in [f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]:
        batch = {b"data": chw.reshape(2, -1), b"labels": [3, 7]}
        with open(folder / "cifar-10-batches-py" / name, "wb") as f:
            pickle.dump(batch, f)
    images, labels = data.load("cifar10", "train")
    assert images.shape == (10, 32, 32, 3) and labels.tolist() == [3, 7] * 5
    np.testing.assert_array_equal(images[1, 4, 5], chw[1, :, 4, 5])  # HWC from CHW
    with pytest.raises(ValueError, match="caches"):
        data.load_keras_cache("fashion_mnist")
