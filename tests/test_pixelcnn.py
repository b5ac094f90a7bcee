import keras
import numpy as np
import pytest

from keras_pixel.models import PixelCNN
from keras_pixel.testing import assert_autoregressive, assert_model_contract


def small(shape=(6, 6, 1), **kwargs):
    config = dict(num_layers=2, filters=6, output_filters=12, first_kernel_size=5)
    config.update(kwargs)
    return PixelCNN(image_shape=shape, **config)


@pytest.fixture(scope="module")
def gray():
    return small()


@pytest.fixture(scope="module")
def rgb():
    return small((5, 5, 3))


@pytest.mark.parametrize("shape", [(6, 6, 1), (5, 5, 3)])
def test_model_contract(shape):
    """Causal, normalized, exact .keras round trip, cached == naive."""
    assert_model_contract(small(shape), num_positions=10)


def test_checker_fails_for_a_model_that_sees_the_future():
    model = small()

    def leaky(images):
        lp = model.log_prob(images, reduce=False)
        return lp + images[:, ::-1, ::-1].astype("float32") * 1e-3

    with pytest.raises(AssertionError, match="Not causal"):
        assert_autoregressive(model, log_prob_fn=leaky)


def test_rgb_channels_see_earlier_channels_of_the_same_pixel():
    rgb = small((5, 5, 3), filters=24, output_filters=48)
    x = np.random.default_rng(0).integers(0, 256, (1, 5, 5, 3), dtype=np.uint8)
    base = rgb.log_prob(x, reduce=False)
    y = x.copy()
    y[0, 2, 2, 0] ^= 0x80
    diff = np.abs(rgb.log_prob(y, reduce=False) - base)[0, 2, 2]
    assert diff[1] > 0 and diff[2] > 0, "G and B must depend on R of their own pixel"
    z = x.copy()
    z[0, 2, 2, 1] ^= 0x80
    diff = np.abs(rgb.log_prob(z, reduce=False) - base)[0, 2, 2]
    assert diff[0] == 0 and diff[2] > 0


def test_log_prob_shapes_and_reduction(gray):
    x = np.random.default_rng(2).integers(0, 256, (5, 6, 6, 1), dtype=np.uint8)
    reduced = gray.log_prob(x)
    full = gray.log_prob(x, reduce=False, batch_size=2)
    assert reduced.shape == (5,) and reduced.dtype == np.float32
    assert full.shape == (5, 6, 6, 1) and full.dtype == np.float32
    np.testing.assert_allclose(full.sum(axis=(1, 2, 3)), reduced, rtol=1e-5)
    assert np.all(full < 0)
    assert gray.image_shape == (6, 6, 1)


def test_untrained_model_is_near_uniform(gray):
    x = np.random.default_rng(3).integers(0, 256, (4, 6, 6, 1), dtype=np.uint8)
    assert abs(gray.bits_per_dim(x) - 8.0) < 0.5


def test_seeded_sampling_is_deterministic(rgb):
    a = rgb.sample(3, seed=11)
    b = rgb.sample(3, seed=11)
    c = rgb.sample(3, seed=12)
    assert a.dtype == np.uint8 and a.shape == (3, 5, 5, 3)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_temperature_changes_samples(gray):
    hot = gray.sample(4, seed=1, temperature=2.0)
    cold = gray.sample(4, seed=1, temperature=0.05)
    assert not np.array_equal(hot, cold)


def test_completion_keeps_known_rows(rgb):
    x = np.random.default_rng(5).integers(0, 256, (2, 5, 5, 3), dtype=np.uint8)
    out = rgb.complete(x, num_known_rows=3, seed=0)
    assert out.dtype == np.uint8 and out.shape == x.shape
    np.testing.assert_array_equal(out[:, :3], x[:, :3])
    assert not np.array_equal(out[:, 3:], x[:, 3:])
    np.testing.assert_array_equal(rgb.complete(x, num_known_rows=5), x)
    np.testing.assert_array_equal(rgb.complete(x, 3, seed=9), rgb.complete(x, 3, seed=9))


def test_completion_ignores_the_unknown_rows(gray):
    x = np.random.default_rng(6).integers(0, 256, (2, 6, 6, 1), dtype=np.uint8)
    y = x.copy()
    y[:, 2:] = 255 - y[:, 2:]
    np.testing.assert_array_equal(gray.complete(x, 2, seed=4), gray.complete(y, 2, seed=4))


@pytest.mark.parametrize(
    "images, message",
    [
        (np.zeros((2, 6, 6, 1), np.float32), "dtype float32"),
        (np.full((2, 6, 6, 1), 300, np.int32), r"\[0, 255\]"),
        (np.full((2, 6, 6, 1), -1, np.int32), r"\[0, 255\]"),
        (np.zeros((6, 6, 1), np.uint8), "rank 4"),
        (np.zeros((2, 6, 5, 1), np.uint8), "6x5"),
        (np.zeros((2, 6, 6, 3), np.uint8), "3 channels"),
        (np.zeros((2, 6, 6, 1), bool), "dtype bool"),
    ],
)
def test_bad_images_are_rejected(gray, images, message):
    with pytest.raises(ValueError, match=message):
        gray.log_prob(images)
    with pytest.raises(ValueError, match=message):
        gray.complete(images, 2)


def test_bad_sampling_arguments(gray):
    x = np.zeros((1, 6, 6, 1), np.uint8)
    with pytest.raises(ValueError, match="num_known_rows"):
        gray.complete(x, 7)
    with pytest.raises(ValueError, match="num_known_rows"):
        gray.complete(x, -1)
    with pytest.raises(ValueError, match="temperature"):
        gray.sample(2, temperature=0)
    with pytest.raises(ValueError, match="num"):
        gray.sample(0)
    with pytest.raises(ValueError, match="method"):
        gray.sample(1, method="magic")
    with pytest.raises(ValueError, match="seed"):
        gray.sample(1, seed="abc")
    with pytest.raises(ValueError, match="dtype float32"):
        gray(np.zeros((1, 6, 6, 1), np.float32))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(image_shape=(8, 8, 2)), "channels"),
        (dict(image_shape=(8, 8)), "image_shape"),
        (dict(image_shape=(8, 8, 3), filters=8), "divisible"),
        (dict(kernel_size=4), "odd kernel"),
    ],
)
def test_bad_hyperparameters(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PixelCNN(**{**dict(num_layers=1, filters=6, output_filters=12), **kwargs})


def test_fit_reports_bits_per_dim_and_lowers_it_on_real_digits(digits):
    train, test = digits
    model = PixelCNN((8, 8, 1), num_layers=2, filters=16, output_filters=64, first_kernel_size=5)
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    before = model.evaluate(test, batch_size=64, verbose=0, return_dict=True)
    history = model.fit(train, batch_size=32, epochs=4, verbose=0, shuffle=True)
    after = model.evaluate(test, batch_size=64, verbose=0, return_dict=True)
    assert "bits_per_dim" in history.history
    assert before["bits_per_dim"] > 7.5
    assert after["bits_per_dim"] < 0.4 * before["bits_per_dim"]
    np.testing.assert_allclose(after["bits_per_dim"], model.bits_per_dim(test), rtol=1e-4)
    np.testing.assert_allclose(after["loss"], -model.log_prob(test).mean(), rtol=1e-4)
