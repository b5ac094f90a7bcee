"""Input pipelines of uint8 images for training and evaluation.

Every loader returns uint8 arrays ``[N, H, W, C]`` (and int labels), and
:func:`make_dataset` turns them into a shuffled, batched, prefetched
``tf.data.Dataset``. Sources: scikit-learn's 8x8 digits (embedded, offline),
local MNIST idx files, the arrays ``keras.datasets`` keeps (MNIST, CIFAR-10),
``tensorflow-datasets`` (any image dataset), numpy arrays and image folders.
"""

import gzip
import os
import pickle
import zlib
from pathlib import Path

import numpy as np
import tensorflow as tf

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
DIGITS_TEST_SIZE = 297
_MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def _check_split(split, choices=("train", "test")):
    if split not in choices:
        raise ValueError(f"split must be one of {list(choices)}, got {split!r}.")


def load_digits(split="train"):
    """scikit-learn's 8x8 handwritten digits, rescaled from 0..16 to 0..255.

    A fixed split (seeded permutation): 1500 training and 297 test images.

    Returns:
        ``(images, labels)``: uint8 ``[N, 8, 8, 1]`` and int64 ``[N]``.
    """
    _check_split(split)
    from sklearn.datasets import load_digits as sk_load_digits

    digits = sk_load_digits()
    images = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)[..., None]
    order = np.random.default_rng(0).permutation(len(images))
    index = order[DIGITS_TEST_SIZE:] if split == "train" else order[:DIGITS_TEST_SIZE]
    return images[index], digits.target[index].astype(np.int64)


def _read_idx(path):
    opener = gzip.open if str(path).endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (gzip.BadGzipFile, EOFError, zlib.error) as error:
        raise ValueError(
            f"{path} is not a readable gzip file (truncated or corrupt): {error}"
        ) from None
    if len(raw) < 8 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path} is not an idx file of unsigned bytes (bad magic number).")
    ndim = raw[3]
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(raw[4 + 4 * k : 8 + 4 * k], "big") for k in range(ndim))
    data = np.frombuffer(raw, dtype=np.uint8, offset=header)
    if data.size != int(np.prod(shape)):
        raise ValueError(
            f"{path} is truncated or corrupt: header says {shape}, found {data.size} values."
        )
    return data.reshape(shape)


def _find_idx(directory, stem):
    for name in (stem, stem + ".gz"):
        path = Path(directory) / name
        if path.exists():
            return path
    raise FileNotFoundError(f"No {stem}[.gz] in {directory}.")


def load_mnist_idx(directory, split="train"):
    """MNIST from the standard idx files (gzipped or not) in ``directory``.

    Returns:
        ``(images, labels)``: uint8 ``[N, 28, 28, 1]`` and int64 ``[N]``.
    """
    _check_split(split)
    image_stem, label_stem = _MNIST_FILES[split]
    images = _read_idx(_find_idx(directory, image_stem))
    labels = _read_idx(_find_idx(directory, label_stem))
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise ValueError(
            f"MNIST idx files in {directory} disagree: images {images.shape}, "
            f"labels {labels.shape}."
        )
    return images[..., None].copy(), labels.astype(np.int64)


class DatasetUnavailableError(OSError):
    """A dataset is neither on disk nor downloadable from here."""


def _tfds_load(name, split, data_dir, download, **kwargs):
    """``tfds.load``, with a failed download reported as
    :class:`DatasetUnavailableError`: which dataset, where it looked, and how to
    point at a prepared copy (tfds retries for minutes before it gives up)."""
    import tensorflow_datasets as tfds

    try:
        return tfds.load(name, split=split, data_dir=data_dir, download=download, **kwargs)
    except (OSError, tfds.core.download.DownloadError) as error:
        where = data_dir or os.environ.get("TFDS_DATA_DIR") or "~/tensorflow_datasets"
        local = (
            " MNIST idx files (train-images-idx3-ubyte[.gz], ...) in --data-dir, or"
            if name == "mnist"
            else ""
        )
        cache = (
            f" Keras's cached copy ({_keras_cache_description(name)}) is used where present;"
            if name in _KERAS_CACHE
            else ""
        )
        raise DatasetUnavailableError(
            f"Could not load the {name!r} dataset ({split!r} split): tensorflow-datasets "
            f"found no prepared copy in {where} and could not download it "
            f"({type(error).__name__}: {error}). Offline, use{local} a tfds data folder "
            f"prepared on a machine with internet access, passed as --data-dir "
            f"(data_dir=).{cache}"
        ) from error


def load_tfds(
    name, split="train", data_dir=None, image_key="image", label_key="label", download=True
):
    """Any ``tensorflow-datasets`` image dataset as uint8 arrays.

    Args:
        name: tfds name, e.g. ``"mnist"`` or ``"cifar10"``.
        split: tfds split string.
        data_dir: where tfds keeps its data (passed through).
        image_key: name of the image feature.
        label_key: name of the label feature; labels are ``None`` if absent.
        download: let tfds download and prepare the data if missing.

    Returns:
        ``(images, labels)``.
    """
    import tensorflow_datasets as tfds

    ds = _tfds_load(name, split, data_dir, download)
    images, labels = [], []
    for example in tfds.as_numpy(ds):
        images.append(example[image_key])
        if label_key in example:
            labels.append(example[label_key])
    if not images:
        raise ValueError(f"tfds dataset {name!r} split {split!r} is empty.")
    images = np.stack(images)
    if images.ndim == 3:
        images = images[..., None]
    return images.astype(np.uint8), (np.asarray(labels, np.int64) if labels else None)


def tfds_dataset(
    name,
    split="train",
    data_dir=None,
    batch_size=32,
    shuffle=True,
    seed=None,
    with_labels=False,
    image_key="image",
    label_key="label",
    download=True,
):
    """A streaming ``tf.data`` pipeline over a ``tensorflow-datasets`` image dataset.

    Unlike :func:`load_tfds` nothing is held in memory, so it suits datasets of
    any size.

    Args:
        name: tfds name, e.g. ``"mnist"``, ``"cifar10"``.
        split: tfds split string.
        data_dir: passed to ``tfds.load``.
        batch_size: images per batch.
        shuffle: shuffle files and examples (buffer of 10,000).
        seed: shuffle seed.
        with_labels: yield ``(images, labels)`` instead of images.
        image_key: name of the image feature.
        label_key: name of the label feature.
        download: let tfds download and prepare the data if missing.

    Returns:
        ``tf.data.Dataset`` of uint8 ``[batch, H, W, C]`` (and int64 labels).
    """
    ds = _tfds_load(name, split, data_dir, download, shuffle_files=shuffle)

    def _select(example):
        image = tf.cast(example[image_key], tf.uint8)
        if image.shape.rank == 2:
            image = image[..., None]
        if with_labels:
            return image, tf.cast(example[label_key], tf.int64)
        return image

    ds = ds.map(_select, num_parallel_calls=tf.data.AUTOTUNE)
    if shuffle:
        ds = ds.shuffle(10_000, seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def load_image_folder(directory, image_size=None, channels=None):
    """Images from a folder tree (png, jpg, bmp, gif), labels from sub-folder names.

    Args:
        directory: the root folder; images directly in it get label 0, images in
            its sub-folders the index of the sorted sub-folder name.
        image_size: ``(H, W)`` to resize to (bilinear) or None to require equal sizes.
        channels: 1 or 3 to convert to, or None to keep the files' channels.

    Returns:
        ``(images, labels)``: uint8 ``[N, H, W, C]`` and int64 ``[N]``.
    """
    from PIL import Image

    root = Path(directory)
    if not root.is_dir():
        raise FileNotFoundError(f"No image folder at {directory}.")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    files = [(p, 0) for p in sorted(root.iterdir()) if p.suffix.lower() in IMAGE_EXTENSIONS]
    for label, cls in enumerate(classes):
        files += [
            (p, label)
            for p in sorted((root / cls).rglob("*"))
            if p.suffix.lower() in IMAGE_EXTENSIONS
        ]
    if not files:
        raise ValueError(f"No images ({', '.join(IMAGE_EXTENSIONS)}) under {directory}.")
    mode = {1: "L", 3: "RGB", None: None}[channels]
    images = []
    for path, _ in files:
        try:
            with Image.open(path) as img:
                img = img.convert(mode or ("L" if img.mode in ("L", "1", "P") else "RGB"))
                if image_size is not None:
                    img = img.resize((image_size[1], image_size[0]), Image.BILINEAR)
                array = np.asarray(img, np.uint8)
        except (OSError, SyntaxError) as error:
            raise ValueError(f"{path} is not a readable image: {error}") from None
        images.append(array[..., None] if array.ndim == 2 else array)
    shapes = {a.shape for a in images}
    if len(shapes) > 1:
        raise ValueError(f"Images in {directory} differ in size {shapes}; pass image_size.")
    return np.stack(images), np.array([label for _, label in files], np.int64)


def binarize(images, seed=None, num_values=256):
    """Dynamic binarization: each pixel is on with probability ``pixel / 255``.

    With a fixed ``seed`` (for a test set) the result is always the same; with
    ``seed=None`` every call draws afresh (for training, as in the usual
    binarized-MNIST setup).

    Args:
        images: uint8 ``[...]`` in [0, 255].
        seed: int for a fixed draw, None for a fresh one.
        num_values: the K of the model the images are for: an "on" pixel is
            ``K - 1``, so 1 for a two-valued model (``num_values=2``), 255 for
            an 8-bit one.

    Returns:
        uint8 array of the shape of ``images`` with values in {0, num_values - 1}.
    """
    images = np.asarray(images)
    rng = np.random.default_rng(seed)
    on = _binary_on(num_values)
    return np.where(rng.random(images.shape) < images / 255.0, on, 0).astype(np.uint8)


def _binary_on(num_values):
    if not 2 <= int(num_values) <= 256:
        raise ValueError(f"binarization needs num_values in [2, 256], got {num_values!r}.")
    return int(num_values) - 1


def make_dataset(
    images,
    labels=None,
    batch_size=32,
    shuffle=True,
    seed=None,
    repeat=False,
    binarize_dynamic=False,
    drop_remainder=False,
    num_values=256,
):
    """A ``tf.data`` pipeline over in-memory images.

    Shuffles over the whole set every epoch (before batching), batches,
    optionally binarizes each batch afresh, and prefetches.

    Args:
        images: uint8 ``[N, H, W, C]`` (any integer dtype for values above 255,
            e.g. VQ-VAE code maps).
        labels: optional int ``[N]``: the dataset then yields ``(images, labels)``.
        batch_size: images per batch.
        shuffle: reshuffle every epoch.
        seed: shuffle seed.
        repeat: repeat forever (use with ``steps_per_epoch``).
        binarize_dynamic: draw a fresh binarization of every batch, new in every
            epoch (the random state lives in a ``tf.random.Generator`` that
            outlasts the iterators ``fit`` opens per epoch).
        drop_remainder: drop the last, smaller batch.
        num_values: the model's K, for ``binarize_dynamic``: on pixels become
            ``K - 1`` (see :func:`binarize`).

    Returns:
        ``tf.data.Dataset`` of ``[batch, H, W, C]`` images (and labels).
    """
    images = np.asarray(images)
    if images.dtype == bool or not np.issubdtype(images.dtype, np.integer) or images.ndim != 4:
        raise ValueError(
            f"images must be a uint8 (or integer) array [N, H, W, C], got {images.dtype} "
            f"{images.shape}."
        )
    elements = images if labels is None else (images, np.asarray(labels, np.int64))
    ds = tf.data.Dataset.from_tensor_slices(elements)
    if shuffle:
        ds = ds.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    if binarize_dynamic:
        generator = (
            tf.random.Generator.from_non_deterministic_state()
            if seed is None
            else tf.random.Generator.from_seed(seed)
        )

        on = _binary_on(num_values)

        def _binarize(x, *rest):
            p = tf.cast(x, tf.float32) / 255.0
            x = tf.cast(generator.uniform(tf.shape(x)) < p, tf.uint8) * on
            return (x, *rest) if rest else x

        ds = ds.map(_binarize)
    return ds.prefetch(tf.data.AUTOTUNE)


_KERAS_CACHE = {"mnist": "mnist.npz", "cifar10": "cifar-10-batches-py"}


def _keras_datasets_dir():
    return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")).expanduser() / "datasets"


def _keras_cache_description(name):
    return str(_keras_datasets_dir() / _KERAS_CACHE[name])


def load_keras_cache(name, split="train"):
    """MNIST or CIFAR-10 from the files ``keras.datasets`` downloads and keeps
    (``$KERAS_HOME/datasets``, default ``~/.keras/datasets``): ``mnist.npz`` or
    ``cifar-10-batches-py/``. Nothing is downloaded.

    Args:
        name: ``"mnist"`` or ``"cifar10"``.
        split: ``"train"`` or ``"test"``.

    Returns:
        ``(images, labels)`` (uint8 ``[N, H, W, C]``, int64 ``[N]``), or None
        where the files are absent.
    """
    _check_split(split)
    if name not in _KERAS_CACHE:
        raise ValueError(f"Keras caches {sorted(_KERAS_CACHE)}, not {name!r}.")
    path = _keras_datasets_dir() / _KERAS_CACHE[name]
    if name == "mnist":
        if not path.is_file():
            return None
        with np.load(path) as f:
            return f[f"x_{split}"][..., None].astype(np.uint8), f[f"y_{split}"].astype(np.int64)
    names = [f"data_batch_{k}" for k in range(1, 6)] if split == "train" else ["test_batch"]
    if not all((path / n).is_file() for n in names):
        return None
    images, labels = [], []
    for n in names:
        with open(path / n, "rb") as f:
            batch = pickle.load(f, encoding="bytes")
        images.append(np.asarray(batch[b"data"], np.uint8).reshape(-1, 3, 32, 32))
        labels.append(np.asarray(batch[b"labels"], np.int64))
    return np.concatenate(images).transpose(0, 2, 3, 1), np.concatenate(labels)


DATASETS = ("digits", "mnist", "cifar10", "tfds:NAME", "idx:DIR", "folder:DIR", "npz:FILE")


def load(spec, split="train", data_dir=None):
    """Loads a dataset named by a short spec, as used by the CLI.

    Args:
        spec: ``"digits"`` (scikit-learn, offline); ``"mnist"`` (the idx files in
            ``data_dir`` or ``$KERAS_PIXEL_MNIST_DIR`` if set, else Keras's cached
            ``mnist.npz`` where present (:func:`load_keras_cache`), else
            tensorflow-datasets); ``"cifar10"`` (Keras's cached
            ``cifar-10-batches-py`` where present, else tensorflow-datasets);
            ``"tfds:NAME"`` (tensorflow-datasets, ``data_dir`` passed through);
            ``"idx:DIR"`` (MNIST idx files); ``"folder:DIR"`` (image folder,
            ``split`` sub-folder if present); ``"npz:FILE"`` (arrays
            ``{split}_images`` [and ``{split}_labels``], or ``images``).
        split: ``"train"`` or ``"test"``.
        data_dir: see ``spec``.

    Returns:
        ``(images, labels)``: uint8 ``[N, H, W, C]``, int64 ``[N]`` or None.
    """
    _check_split(split)
    images, labels = _load_spec(spec, split, data_dir)
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(
            f"Dataset {spec!r} must give uint8 images [N, H, W, 1 or 3], got "
            f"{images.dtype} {images.shape}."
        )
    return images, labels


def _load_spec(spec, split, data_dir):
    kind, _, arg = spec.partition(":")
    if kind == "digits":
        return load_digits(split)
    if kind == "mnist" and not arg:
        directory = data_dir or os.environ.get("KERAS_PIXEL_MNIST_DIR")
        if directory and any(Path(directory).glob("*idx3-ubyte*")):
            return load_mnist_idx(directory, split)
    if kind in _KERAS_CACHE and not arg:
        return load_keras_cache(kind, split) or load_tfds(kind, split, data_dir)
    if kind == "tfds" and arg:
        return load_tfds(arg, split, data_dir)
    if kind == "idx" and arg:
        return load_mnist_idx(arg, split)
    if kind == "folder" and arg:
        sub = Path(arg) / split
        return load_image_folder(sub if sub.is_dir() else arg)
    if kind == "npz" and arg:
        with np.load(arg) as f:
            key = f"{split}_images" if f"{split}_images" in f else "images"
            if key not in f:
                raise ValueError(f"{arg} has no '{split}_images' or 'images' array.")
            labels_key = key.replace("images", "labels")
            labels = f[labels_key].astype(np.int64) if labels_key in f else None
            return f[key], labels
    raise ValueError(f"Unknown dataset {spec!r}; use one of {', '.join(DATASETS)}.")
