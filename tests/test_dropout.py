"""ByteDropout: exact Bernoulli masks from random bytes, Keras's Dropout elsewhere."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_pixel.layers import ByteDropout


@pytest.mark.parametrize("rate", [0.5, 0.25, 0.125, 0.75])
def test_keep_probability_and_scale(rate):
    x = tf.fill((64, 28, 28, 64), 3.0)
    y = ByteDropout(rate, seed=7)(x, training=True).numpy()
    dropped = y == 0
    assert np.all(np.isclose(y[~dropped], 3.0 / (1 - rate), rtol=0, atol=1e-6))
    n = dropped.size
    sigma = np.sqrt(rate * (1 - rate) / n)
    assert abs(dropped.mean() - rate) < 5 * sigma
    # Every channel (each byte position of a 32-bit draw) has the same rate, and
    # the four bytes of one draw are independent.
    per_channel = dropped.reshape(-1, 64).mean(axis=0)
    assert np.all(np.abs(per_channel - rate) < 5 * np.sqrt(rate * (1 - rate) / (n / 64)))
    pairs = dropped.reshape(-1, 16, 4)
    both = (pairs[..., 0] & pairs[..., 1]).mean()
    assert abs(both - rate**2) < 5 * np.sqrt(rate**2 * (1 - rate**2) / (n / 4))


def test_gradient_is_diagonal_and_the_mask_times_scale():
    """The elementwise form of the causality check: each output depends on its own
    input only, through the kept mask times 1 / (1 - rate)."""
    x = tf.random.normal((2, 3, 3, 6), seed=6)
    layer = ByteDropout(0.5, seed=8)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x, training=True)
    jacobian = tape.jacobian(y, x).numpy().reshape(x.shape.num_elements(), -1)
    np.testing.assert_array_equal(jacobian, np.diag(np.diag(jacobian)))
    np.testing.assert_array_equal(np.diag(jacobian), np.where(y.numpy() != 0, 2.0, 0.0).ravel())


def test_identity_outside_training_and_seeded_draws():
    x = tf.random.normal((4, 6, 6, 8), seed=2)
    layer = ByteDropout(0.5, seed=11)
    np.testing.assert_array_equal(layer(x).numpy(), x.numpy())
    first, second = layer(x, training=True).numpy(), layer(x, training=True).numpy()
    assert not np.array_equal(first == 0, second == 0)
    again = ByteDropout(0.5, seed=11)(x, training=True).numpy()
    np.testing.assert_array_equal(first, again)


@pytest.mark.parametrize("kwargs", [dict(rate=0.3), dict(rate=0.5, noise_shape=(None, 1, 1, 8))])
def test_other_rates_and_noise_shapes_are_keras_dropout(kwargs):
    x = tf.random.normal((4, 6, 6, 8), seed=4)
    ours = ByteDropout(seed=5, **kwargs)(x, training=True)
    theirs = keras.layers.Dropout(seed=5, **kwargs)(x, training=True)
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


@pytest.mark.parametrize("channels", [1, 6, 7])
def test_channels_not_a_multiple_of_four(channels):
    x = tf.ones((256, 9, channels))
    y = ByteDropout(0.5, seed=1)(x, training=True).numpy()
    assert y.shape == x.shape
    assert set(np.unique(y)) == {0.0, 2.0}


def test_graph_xla_dynamic_batch_and_float16():
    layer = ByteDropout(0.5, seed=9, dtype="mixed_float16")

    @tf.function(jit_compile=True, input_signature=[tf.TensorSpec((None, 4, 4, 8), tf.float16)])
    def run(x):
        return layer(x, training=True)

    y = run(tf.ones((3, 4, 4, 8), tf.float16))
    assert y.dtype == tf.float16 and y.shape == (3, 4, 4, 8)
    assert set(np.unique(y.numpy())) == {0.0, 2.0}
