"""``num_values=K``: every categorical family models integers in ``[0, K)``, from
binarized images (K=2) to VQ-VAE code maps (K=512)."""

import itertools

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_pixel import data
from keras_pixel.export import export_saved_model
from keras_pixel.images import image_grid
from keras_pixel.layers.output_head import CategoricalHead
from keras_pixel.models import GatedPixelCNN, PixelCNN, PixelCNNPlusPlus, PixelRNN
from keras_pixel.testing import assert_autoregressive

SHAPE = (4, 4, 1)


def _family(name, num_values, image_shape=SHAPE):
    if name == "pixelcnn":
        return PixelCNN(
            image_shape, num_layers=1, filters=8, output_filters=16, num_values=num_values
        )
    if name == "gated_conditional":
        return GatedPixelCNN(
            num_layers=2,
            filters=8,
            image_shape=image_shape,
            output_filters=16,
            num_classes=3,
            num_values=num_values,
        )
    return PixelRNN(
        name, num_layers=1, units=4, image_shape=image_shape, output_filters=8,
        num_values=num_values,
    )  # fmt: skip


FAMILIES = ("pixelcnn", "gated_conditional", "row_lstm", "diagonal_bilstm")
CASES = list(itertools.product(FAMILIES, (2, 512)))


def _labels(model, n):
    return np.arange(n) % model.num_classes if model.conditional else None


def _images(model, n, seed=0):
    return np.random.default_rng(seed).integers(0, model.num_values, (n, *model.image_shape))


@pytest.mark.parametrize("name,num_values", CASES)
def test_causal_normalized_over_k_and_refuses_values_from_k(name, num_values):
    model = _family(name, num_values)
    assert model.num_values == num_values
    assert model.image_dtype == ("uint8" if num_values <= 256 else "int32")
    image = _images(model, 1)
    logits = model((image, np.eye(3, dtype="float32")[:1]) if model.conditional else image)
    assert logits.shape[-1] == num_values
    labels = _labels(model, 2)
    assert_autoregressive(
        model, num_positions=5, log_prob_fn=lambda x: model.log_prob(x, reduce=False, labels=labels)
    )
    # Subpixel t set to each of the K values, everything before it fixed: the
    # conditionals of t sum to one over K.
    image = _images(model, 1, seed=1)
    total = int(np.prod(model.image_shape))
    for t in (0, 5, total - 1):
        batch = np.repeat(image.reshape(1, total), num_values, axis=0)
        batch[:, t] = np.arange(num_values)
        log_probs = model.log_prob(
            batch.reshape(num_values, *model.image_shape),
            reduce=False,
            labels=None if labels is None else np.zeros(num_values, int),
        ).reshape(num_values, total)
        np.testing.assert_allclose(np.exp(log_probs[:, t].astype(np.float64)).sum(), 1.0, atol=1e-5)
    too_big = np.full((1, *model.image_shape), num_values)
    with pytest.raises(ValueError, match=f"num_values={num_values}"):
        model.log_prob(too_big, labels=None if labels is None else labels[:1])
    with pytest.raises(ValueError, match=f"num_values={num_values}"):
        model.complete(too_big, 1, labels=None if labels is None else labels[:1])


@pytest.mark.parametrize("name", FAMILIES)
def test_two_values_sum_to_one_over_every_image(name):
    """The joint, not only each conditional: all 2**9 binary 3x3 images."""
    model = _family(name, 2, image_shape=(3, 3, 1))
    images = np.array(list(itertools.product((0, 1), repeat=9)), np.uint8).reshape(-1, 3, 3, 1)
    labels = None if not model.conditional else np.full(len(images), 2)
    log_probs = model.log_prob(images, labels=labels).astype(np.float64)
    np.testing.assert_allclose(np.exp(log_probs).sum(), 1.0, atol=1e-5)


@pytest.mark.parametrize("name,num_values", CASES)
def test_keras_round_trip_and_cached_sampling_equal_naive(name, num_values, tmp_path):
    model = _family(name, num_values)
    labels = _labels(model, 3)
    images = _images(model, 3)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.num_values == num_values
    np.testing.assert_array_equal(
        loaded.log_prob(images, labels=labels), model.log_prob(images, labels=labels)
    )
    cached = model.sample(3, seed=4, method="cached", labels=labels)
    naive = model.sample(3, seed=4, method="naive", labels=labels)
    np.testing.assert_array_equal(cached, naive)
    assert cached.dtype == model.image_dtype and cached.max() < num_values
    completed = model.complete(images, 2, seed=4, labels=labels)
    np.testing.assert_array_equal(completed[:, :2], images[:, :2])


@pytest.mark.parametrize("name,num_values", [("pixelcnn", 2), ("gated_conditional", 512)])
def test_saved_model_takes_and_returns_k_valued_images(name, num_values, tmp_path):
    model = _family(name, num_values)
    labels = _labels(model, 2)
    images = _images(model, 2)
    path = export_saved_model(model, str(tmp_path), "m", 1, False)
    served = tf.saved_model.load(path)
    extra = {} if labels is None else {"labels": tf.constant(labels, tf.int32)}
    feeds = {"images": tf.constant(images.astype(model.image_dtype)), **extra}
    log_prob = served.signatures["serving_default"](**feeds)["log_prob"].numpy()
    np.testing.assert_allclose(log_prob, model.log_prob(images, labels=labels), rtol=1e-5)
    sampled = served.signatures["sample"](
        num_images=tf.constant(2), seed=tf.constant(7, tf.int64), temperature=tf.constant(1.0),
        **extra,
    )["images"].numpy()  # fmt: skip
    assert sampled.dtype == model.image_dtype
    np.testing.assert_array_equal(sampled, model.sample(2, seed=7, labels=labels))


def _code_maps(n, seed=0):
    """Structured 8x8 maps over a codebook of 512, of which 16 codes are in use (as
    in a VQ-VAE whose codebook is partly dead): each row continues the one above
    with a small random change, so a causal prior has something to learn."""
    rng = np.random.default_rng(seed)
    maps = np.zeros((n, 8, 8, 1), np.int32)
    maps[:, 0, :, 0] = rng.integers(0, 16, (n, 1)) + np.arange(8)
    for i in range(1, 8):
        maps[:, i, :, 0] = maps[:, i - 1, :, 0] + rng.integers(0, 2, (n, 1))
    return (maps % 16) * 32 + 7


def test_a_prior_over_512_codes_fits_with_model_fit():
    model = PixelCNN((8, 8, 1), num_layers=2, filters=16, output_filters=32, num_values=512)
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    train, test = _code_maps(512), _code_maps(64, seed=1)
    before = model.bits_per_dim(test)
    model.fit(data.make_dataset(train, batch_size=32, seed=0), epochs=6, verbose=0)
    after = model.bits_per_dim(test)
    assert before > 8.5 and after < before - 3.0, (before, after)
    assert_autoregressive(model, num_positions=6)
    batch = np.repeat(test[:1].reshape(1, 64), 512, axis=0)
    batch[:, 9] = np.arange(512)
    conditionals = model.log_prob(batch.reshape(512, 8, 8, 1), reduce=False).reshape(512, 64)
    np.testing.assert_allclose(np.exp(conditionals[:, 9].astype(np.float64)).sum(), 1.0, atol=1e-5)


def test_binarization_gives_zero_and_k_minus_one():
    images = np.arange(256, dtype=np.uint8).reshape(1, 16, 16, 1)
    assert set(np.unique(data.binarize(images, seed=0, num_values=2))) == {0, 1}
    assert set(np.unique(data.binarize(images, seed=0))) == {0, 255}
    ds = data.make_dataset(images, batch_size=1, binarize_dynamic=True, num_values=2, seed=0)
    assert set(np.unique(next(iter(ds)).numpy())) <= {0, 1}
    grid = image_grid(np.array([[[[0], [1]]]], np.uint8), scale=1, padding=0, num_values=2)
    assert grid.ravel().tolist() == [0, 255]


@pytest.mark.parametrize("bad", [1, 0, 2.5, True, "256"])
def test_bad_num_values_are_refused(bad):
    with pytest.raises(ValueError, match="num_values"):
        PixelCNN((4, 4, 1), num_layers=1, filters=4, num_values=bad)
    with pytest.raises(ValueError, match="num_values"):
        CategoricalHead(8, num_values=bad)


def test_pixelcnn_pp_num_values_is_two_to_the_num_bits():
    model = PixelCNNPlusPlus(
        num_resnet=1, num_hierarchies=1, num_filters=4, num_logistic_mix=1,
        image_shape=(2, 2, 1), num_bits=5,
    )  # fmt: skip
    assert model.num_values == 32


def test_narrowing_a_256_way_binarized_model_keeps_its_network(monkeypatch):
    """``zoo/narrow_to_binary.py``: the K=2 twin of a 256-way model sees the same
    inputs (binary {0, 1} vs {0, 255}) and its logits are the 256-way ones of 0
    and 255, so its conditionals are those renormalized over the two values."""
    import pathlib

    monkeypatch.syspath_prepend(str(pathlib.Path(__file__).resolve().parents[1] / "zoo"))
    from narrow_to_binary import narrow

    source = PixelCNN((5, 5, 1), num_layers=1, filters=8, output_filters=16)
    binary = np.random.default_rng(0).integers(0, 2, (3, 5, 5, 1)).astype(np.uint8)
    target = narrow(source)
    assert target.num_values == 2
    np.testing.assert_allclose(
        target(binary).numpy(), source(binary * 255).numpy()[..., [0, 255]], rtol=1e-5, atol=1e-5
    )
    assert np.all(
        target.log_prob(binary, reduce=False) >= source.log_prob(binary * 255, reduce=False) - 1e-5
    )
