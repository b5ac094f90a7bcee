import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_pixel.layers import conv_backward
from keras_pixel.layers.shifted_conv import (
    DownRightShiftedConv2D,
    DownRightShiftedConv2DTranspose,
    DownShiftedConv2D,
    DownShiftedConv2DTranspose,
    concat_elu,
)
from keras_pixel.layers.weight_norm import WeightNormalization
from keras_pixel.models import PixelCNNPlusPlus
from keras_pixel.testing import assert_autoregressive, assert_model_contract


def small(shape=(8, 8, 1), **kwargs):
    config = dict(
        num_resnet=1, num_hierarchies=2, num_filters=8, num_logistic_mix=3, image_shape=shape
    )
    config.update(kwargs)
    return PixelCNNPlusPlus(**config)


def _dependence(layer, shape, position):
    x = tf.random.normal((1, *shape))
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x)
        target = tf.reduce_sum(y[0, position[0], position[1]])
    return (np.abs(tape.gradient(target, x)[0].numpy()).sum(-1) > 0).astype(int)


@pytest.mark.parametrize("backward", conv_backward.BACKWARDS)
def test_shifted_convolution_receptive_fields(monkeypatch, backward):
    # The receptive fields are read from input gradients: every backward pass.
    monkeypatch.setenv(conv_backward.ENV, backward)
    for channels in (1, 4):
        down = _dependence(DownShiftedConv2D(2), (5, 5, channels), (2, 2))
        np.testing.assert_array_equal(down[1:3, 1:4], 1)
        assert down.sum() == 6
        right = _dependence(DownRightShiftedConv2D(2), (5, 5, channels), (2, 2))
        np.testing.assert_array_equal(right[1:3, 1:3], 1)
        assert right.sum() == 4
    strided = _dependence(DownShiftedConv2D(2, strides=2), (6, 6, 1), (1, 1))
    assert strided[3:].sum() == 0, "a strided output sees no row below its block"
    for layer in (DownShiftedConv2DTranspose(2), DownRightShiftedConv2DTranspose(2)):
        up = layer(tf.zeros((1, 3, 4, 1)))
        assert up.shape == (1, 6, 8, 2)
        # Output rows 2i and 2i+1 come from input row i only.
        dep = _dependence(layer, (3, 4, 1), (3, 3))
        assert dep[2:].sum() == 0 and dep[1].sum() > 0


def test_shifted_convolution_errors_and_config():
    with pytest.raises(ValueError, match="odd width"):
        DownShiftedConv2D(2, (2, 2))
    with pytest.raises(ValueError, match="odd width"):
        DownShiftedConv2DTranspose(2, (2, 4))
    layer = DownRightShiftedConv2D(3, (2, 2), strides=2)
    clone = DownRightShiftedConv2D.from_config(layer.get_config())
    assert clone.strides == (2, 2) and clone.kernel_size == (2, 2)
    up = DownShiftedConv2DTranspose.from_config(DownShiftedConv2DTranspose(3).get_config())
    assert up(tf.zeros((1, 2, 3, 1))).shape == (1, 4, 6, 3)


def test_concat_elu():
    x = tf.constant([[-1.0, 2.0]])
    np.testing.assert_allclose(
        concat_elu(x), [[np.expm1(-1.0), 2.0, 1.0, np.expm1(-2.0)]], rtol=1e-6
    )


@pytest.mark.parametrize(
    "shape, bits, classes", [((8, 8, 1), 8, None), ((4, 4, 3), 8, 3), ((4, 4, 3), 5, None)]
)
def test_model_contract(shape, bits, classes):
    """Causal, normalized over 2**num_bits values, exact .keras round trip,
    cached == naive."""
    model = small(shape, num_bits=bits, num_classes=classes, dropout=0.0)
    assert_model_contract(model, labels=None if classes is None else 2, num_positions=12)


def test_whole_pixel_dependence():
    model = small((4, 4, 3), num_filters=12)
    x = np.random.default_rng(0).integers(0, 256, (1, 4, 4, 3), dtype=np.uint8)
    base = model.log_prob(x, reduce=False)[0, 2, 1]
    for channel, affected in [(0, [1, 2]), (1, [2]), (2, [])]:
        y = x.copy()
        y[0, 2, 1, channel] ^= 0x80
        diff = np.abs(model.log_prob(y, reduce=False)[0, 2, 1] - base)
        assert np.all(diff[:channel] == 0), "no channel depends on a later one"
        for c in affected:
            assert diff[c] > 0, f"channel {c} depends on channel {channel} of its pixel"


def test_fewer_bits_validate_their_range():
    model = small((4, 4, 1), num_bits=5)
    with pytest.raises(ValueError, match=r"\[0, 31\]"):
        model.log_prob(np.full((1, 4, 4, 1), 32, np.uint8))
    samples = model.sample(2, seed=0)
    assert samples.max() <= 31


def test_data_dependent_init_normalizes_activations(digits):
    train, _ = digits
    model = small((8, 8, 1))
    assert model.data_dependent_init(train[:64]) > 10
    layer = model.u_init
    assert isinstance(layer, WeightNormalization)
    x = model.preprocess(tf.constant(train[:64]))
    x = tf.concat([x, tf.ones_like(x[..., :1])], -1)
    out = layer(x).numpy()
    np.testing.assert_allclose(out.mean(axis=(0, 1, 2)), 0.0, atol=1e-4)
    np.testing.assert_allclose(out.std(axis=(0, 1, 2)), 1.0, rtol=1e-3)


def test_conditioning_changes_likelihood_and_is_causal():
    model = small((4, 4, 1), conditional=4)
    assert model.num_classes == 4
    x = np.random.default_rng(3).integers(0, 256, (2, 4, 4, 1), dtype=np.uint8)
    assert not np.allclose(model.log_prob(x, labels=[0, 0]), model.log_prob(x, labels=[3, 3]))
    assert_autoregressive(
        model, log_prob_fn=lambda v: model.log_prob(v, reduce=False, labels=[1, 2])
    )


def test_dropout_only_in_training():
    model = small((4, 4, 1), dropout=0.5)
    x = tf.constant(np.random.default_rng(4).integers(0, 256, (2, 4, 4, 1), dtype=np.uint8))
    np.testing.assert_array_equal(model(x, training=False), model(x, training=False))
    assert not np.allclose(model(x, training=True), model(x, training=True))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(image_shape=(6, 6, 1), num_hierarchies=3), "divisible"),
        (dict(num_bits=9), "num_bits"),
        (dict(conditional=True), "number of classes"),
        (dict(num_resnet=0), "num_resnet"),
    ],
)
def test_bad_hyperparameters(kwargs, message):
    with pytest.raises(ValueError, match=message):
        small(**kwargs)


def test_training_on_digits_lowers_bits_per_dim(digits):
    train, test = digits
    model = small((8, 8, 1), num_filters=16, num_logistic_mix=5, dropout=0.0)
    model.data_dependent_init(train[:128])
    model.compile(optimizer=keras.optimizers.Adam(2e-3))
    before = model.evaluate(test, verbose=0, return_dict=True)["bits_per_dim"]
    model.fit(train, batch_size=32, epochs=4, verbose=0)
    after = model.evaluate(test, verbose=0, return_dict=True)["bits_per_dim"]
    assert before > 4.5 and after < before - 1.0


def test_every_backward_pass_gives_the_models_gradients(digits, monkeypatch, tmp_path):
    """The whole network's gradients (every shifted convolution, the likelihood,
    RGB mixing) through each way of computing the convolutions' gradients, and
    through a timed choice (here timings that mix two ways), agree with
    TensorFlow's own ("stock")."""
    model = small((8, 8, 3), num_filters=8, dropout=0.0)
    x = tf.constant(np.random.default_rng(5).integers(0, 256, (4, 8, 8, 3), dtype=np.uint8))
    model(x)
    monkeypatch.setenv("KERAS_PIXEL_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(conv_backward, "_chosen", {})
    times = {
        "input": {"stock": 3, "gemm": 2, "forward": 1},
        "kernel": {"stock": 3, "gemm": 1, "forward": 2},
    }
    monkeypatch.setattr(conv_backward, "time_backwards", lambda *args, **kwargs: times)

    def gradients(mode):
        monkeypatch.setenv(conv_backward.ENV, mode)

        @tf.function
        def grads():
            with tf.GradientTape() as tape:
                loss = -tf.reduce_mean(model.likelihood.log_prob(model(x), x))
            return tape.gradient(loss, model.trainable_weights)

        return [g.numpy() for g in grads()]

    reference = gradients("stock")
    for mode in ("gemm", "forward", "auto"):
        for ours, expected in zip(gradients(mode), reference, strict=True):
            np.testing.assert_allclose(ours, expected, rtol=2e-3, atol=2e-5, err_msg=mode)
    assert set(conv_backward._chosen.values()) == {("forward", "gemm")}
    assert list((tmp_path / "conv_backward").glob("*.json"))
