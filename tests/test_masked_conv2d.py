import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_pixel.layers import MaskedConv2D, causal_kernel_mask
from keras_pixel.layers.masking import split_groups
from keras_pixel.testing import assert_layer_causal


@pytest.mark.parametrize("mask_type", ["A", "B"])
@pytest.mark.parametrize("color_channels", [1, 3])
@pytest.mark.parametrize("kernel_size", [3, 5, (1, 3)])
def test_gradients_respect_raster_and_color_order(mask_type, color_channels, kernel_size):
    layer = MaskedConv2D(6, kernel_size, mask_type=mask_type, color_channels=color_channels)
    assert_layer_causal(layer, (5, 5, 6 if color_channels == 3 else 2), mask_type, color_channels)


@pytest.mark.parametrize("mask_type", ["A", "B"])
def test_rgb_image_input(mask_type):
    layer = MaskedConv2D(9, 3, mask_type=mask_type, color_channels=3)
    assert_layer_causal(layer, (4, 4, 3), mask_type, 3)


def test_checker_catches_an_unmasked_convolution():
    with pytest.raises(AssertionError, match="Not causal"):
        assert_layer_causal(keras.layers.Conv2D(3, 3, padding="same"), (4, 4, 3), "B", 3)


def test_checker_catches_mask_b_where_a_is_required():
    layer = MaskedConv2D(3, 3, mask_type="B", color_channels=3)
    with pytest.raises(AssertionError, match="Not causal"):
        assert_layer_causal(layer, (4, 4, 3), "A", 3)


def test_mask_values():
    mask = causal_kernel_mask((3, 3), 3, 6, "A", 3)
    np.testing.assert_array_equal(mask[0], 1)
    np.testing.assert_array_equal(mask[1, 0], 1)
    np.testing.assert_array_equal(mask[1, 2], 0)
    np.testing.assert_array_equal(mask[2], 0)
    # R (input 0) feeds G and B outputs (2..5), G feeds B, B feeds nothing.
    np.testing.assert_array_equal(
        mask[1, 1], [[0, 0, 1, 1, 1, 1], [0, 0, 0, 0, 1, 1], [0, 0, 0, 0, 0, 0]]
    )
    mask_b = causal_kernel_mask((3, 3), 3, 3, "B", 3)
    np.testing.assert_array_equal(mask_b[1, 1], np.triu(np.ones((3, 3))))
    assert causal_kernel_mask((3, 3), 1, 1, "A", 1)[1, 1, 0, 0] == 0
    assert causal_kernel_mask((3, 3), 1, 1, "B", 1)[1, 1, 0, 0] == 1


def test_masked_before_any_training_step_and_after_updates():
    layer = MaskedConv2D(4, 3, mask_type="A")
    x = tf.random.normal((1, 5, 5, 1))
    layer(x)
    kernel = layer.kernel.numpy()
    assert np.abs(kernel[2]).sum() > 0, "the kernel itself is not zeroed: the mask is applied"
    layer.kernel.assign(kernel + 1.0)
    assert_layer_causal(layer, (5, 5, 1), "A", 1)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(filters=4, kernel_size=4), "odd kernel"),
        (dict(filters=4, kernel_size=(3, 2)), "odd kernel"),
        (dict(filters=4, kernel_size=3, color_channels=3), "divisible by color_channels"),
        (dict(filters=3, kernel_size=3, mask_type="C"), "mask_type"),
        (dict(filters=3, kernel_size=3, color_channels=2), "color_channels"),
        (dict(filters=3, kernel_size=3, padding="valid"), "padding"),
        (dict(filters=3, kernel_size=3, strides=2), "strides"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MaskedConv2D(**kwargs)


def test_input_channels_must_split_into_groups():
    layer = MaskedConv2D(3, 3, color_channels=3)
    with pytest.raises(ValueError, match="divisible by color_channels"):
        layer(tf.zeros((1, 4, 4, 4)))


@pytest.mark.parametrize("backward", ["stock", "gemm", "forward"])
@pytest.mark.parametrize(
    "kernel_size, mask_type, color_channels",
    [(7, "A", 1), (3, "B", 1), ((1, 5), "A", 3), ((1, 3), "B", 1), ((5, 3), "B", 3), (1, "B", 3)],
)
def test_equals_the_same_padded_convolution_of_the_masked_kernel(
    kernel_size, mask_type, color_channels, backward, monkeypatch
):
    """The layer convolves with the kernel's rows down to the centre only (a
    one-row kernel with its columns up to the centre only); in float64 its
    outputs and gradients equal the full "same" convolution of the whole masked
    kernel, whichever way the gradients are computed."""
    from keras_pixel.layers import conv_backward

    monkeypatch.setenv(conv_backward.ENV, backward)
    layer = MaskedConv2D(
        6, kernel_size, mask_type=mask_type, color_channels=color_channels, dtype="float64"
    )
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(2, 7, 6, 3)))
    layer.build(x.shape)
    layer.bias.assign(rng.normal(size=6))
    weights = [layer.kernel, layer.bias]
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        ours = layer(x)
        reference = tf.nn.bias_add(
            tf.nn.conv2d(x, layer.kernel * layer.mask, 1, "SAME"), layer.bias
        )
        cotangent = tf.constant(rng.normal(size=ours.shape))
        losses = [tf.reduce_sum(y * cotangent) for y in (ours, reference)]
    np.testing.assert_allclose(ours, reference, rtol=1e-12, atol=1e-12)
    for a, b in zip(*(tape.gradient(loss, [x, *weights]) for loss in losses), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    kernel_gradient = tape.gradient(losses[0], layer.kernel).numpy()
    np.testing.assert_array_equal(kernel_gradient[layer.mask == 0], 0)


def test_a_dilated_layer_equals_the_same_padded_convolution():
    layer = MaskedConv2D(4, 3, mask_type="B", dilation_rate=2, dtype="float64")
    x = tf.constant(np.random.default_rng(1).normal(size=(1, 8, 8, 2)))
    ours = layer(x)
    reference = tf.nn.bias_add(
        tf.nn.conv2d(x, layer.kernel * layer.mask, 1, "SAME", dilations=2), layer.bias
    )
    np.testing.assert_allclose(ours, reference, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("color_channels", [1, 3])
def test_split_groups_gathers_each_part_group_by_group(color_channels):
    num_parts, size = 4, 2
    channels = color_channels * num_parts * size
    x = np.arange(2 * 5 * channels, dtype="float64").reshape(2, 5, channels)
    parts = split_groups(tf.constant(x), num_parts, color_channels)
    group = channels // color_channels
    for p, part in enumerate(parts):
        expected = np.concatenate(
            [
                x[..., g * group + p * size : g * group + (p + 1) * size]
                for g in range(color_channels)
            ],
            axis=-1,
        )
        np.testing.assert_array_equal(part, expected)
    weights = tf.constant(np.random.default_rng(0).normal(size=(num_parts, channels // num_parts)))
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        loss = sum(
            tf.reduce_sum(part * w)
            for part, w in zip(split_groups(xt, num_parts, color_channels), weights, strict=True)
        )
    gradient = tape.gradient(loss, xt).numpy()
    for p in range(num_parts):
        for g in range(color_channels):
            block = gradient[..., g * group + p * size : g * group + (p + 1) * size]
            np.testing.assert_array_equal(
                block, np.broadcast_to(weights[p][g * size : (g + 1) * size], block.shape)
            )
