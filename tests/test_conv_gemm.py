"""The matrix-product backward pass of the narrowing shifted convolutions."""

import numpy as np
import pytest
import tensorflow as tf

from keras_pixel.layers import conv_gemm
from keras_pixel.layers.conv_gemm import padded_conv2d, use_gemm_backward
from keras_pixel.layers.shifted_conv import DownRightShiftedConv2D, DownShiftedConv2D


def _reference(x, kernel, pads, bias):
    y = tf.nn.conv2d(tf.pad(x, ((0, 0), *pads, (0, 0))), kernel, 1, "VALID")
    return y if bias is None else y + bias


@pytest.mark.parametrize(
    "kernel_size, pads",
    [
        ((2, 3), ((1, 0), (1, 1))),
        ((2, 2), ((1, 0), (1, 0))),
        ((1, 3), ((0, 0), (1, 1))),
        ((3, 2), ((2, 1), (0, 1))),
    ],
)
@pytest.mark.parametrize("with_bias", [True, False])
def test_values_and_gradients_match_autodiff_in_float64(kernel_size, pads, with_bias):
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(3, 5, 7, 6)))
    kernel = tf.constant(rng.normal(size=(*kernel_size, 6, 4)))
    bias = tf.constant(rng.normal(size=(4,))) if with_bias else None
    upstream = None
    results = []
    for fn in (padded_conv2d, _reference):
        args = [x, kernel] + ([bias] if with_bias else [])
        with tf.GradientTape() as tape:
            tape.watch(args)
            y = fn(x, kernel, pads, bias)
            if upstream is None:
                upstream = tf.constant(rng.normal(size=y.shape))
            loss = tf.reduce_sum(y * upstream)
        results.append([y, *tape.gradient(loss, args)])
    assert results[0][0].shape == results[1][0].shape
    for ours, reference in zip(*results, strict=True):
        np.testing.assert_allclose(ours.numpy(), reference.numpy(), rtol=1e-10, atol=1e-10)


def test_unknown_batch_inside_a_graph():
    kernel = tf.random.normal((2, 3, 8, 4))

    @tf.function(input_signature=[tf.TensorSpec((None, 6, 5, 8))])
    def grads(x):
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(x)
            ours = tf.reduce_sum(tf.sin(padded_conv2d(x, kernel, ((1, 0), (1, 1)))))
            reference = tf.reduce_sum(tf.sin(_reference(x, kernel, ((1, 0), (1, 1)), None)))
        return tape.gradient(ours, x), tape.gradient(reference, x)

    ours, reference = grads(tf.random.normal((2, 6, 5, 8)))
    assert ours.shape == (2, 6, 5, 8)
    np.testing.assert_allclose(ours.numpy(), reference.numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    "x_shape, kernel_shape, pads, message",
    [
        ((2, None, 5, 8), (2, 3, 8, 4), ((1, 0), (1, 1)), "H and W known"),
        ((2, 5, 8), (2, 3, 8, 4), ((1, 0), (1, 1)), "H and W known"),
        ((2, 6, 5, 8), (2, 3, 6, 4), ((1, 0), (1, 1)), "kernel"),
        ((2, 6, 5, 8), (2, 3, 8, 4), ((1, 0), (-1, 1)), "negative"),
        ((2, 1, 1, 8), (2, 3, 8, 4), ((0, 0), (0, 0)), "larger"),
    ],
)
def test_bad_shapes_are_refused(x_shape, kernel_shape, pads, message):
    with pytest.raises(ValueError, match=message):
        if None in x_shape:
            tf.function(
                lambda x: padded_conv2d(x, tf.zeros(kernel_shape), pads),
                input_signature=[tf.TensorSpec(x_shape)],
            ).get_concrete_function()
        else:
            padded_conv2d(tf.zeros(x_shape), tf.zeros(kernel_shape), pads)


@pytest.fixture
def avx2_cpu(monkeypatch):
    """Takes the CPU for one without AVX-512, where the matrix-product path pays."""
    monkeypatch.setattr(conv_gemm, "cpu_has_avx512", lambda: False)


def test_only_narrowing_convolutions_with_known_size_take_it(avx2_cpu):
    assert use_gemm_backward((None, 28, 28, 64), 32)
    assert not use_gemm_backward((None, 28, 28, 64), 64)
    assert not use_gemm_backward((None, None, None, 64), 32)


def test_avx512_cpus_keep_onednn_backward_pass(monkeypatch):
    monkeypatch.setattr(conv_gemm, "cpu_has_avx512", lambda: True)
    assert not use_gemm_backward((None, 28, 28, 64), 32)


def test_the_cpu_check_reads_this_machine():
    try:
        flags = next(line for line in open("/proc/cpuinfo") if line.startswith("flags"))
    except (OSError, StopIteration):
        pytest.skip("no /proc/cpuinfo flags here")
    assert conv_gemm.cpu_has_avx512() == ("avx512f" in flags.split())


@pytest.mark.parametrize("cls", [DownShiftedConv2D, DownRightShiftedConv2D])
def test_shifted_layers_train_the_same_through_either_backward_pass(cls, avx2_cpu):
    layer = cls(4)
    x = tf.random.normal((2, 6, 7, 8))
    layer.build(x.shape)
    assert layer._gemm_backward(x.shape)
    native = cls(4, strides=1)
    native.build(x.shape)
    native.set_weights(layer.get_weights())
    native._gemm_backward = lambda shape: False
    results = []
    for conv in (layer, native):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = conv(x)
            loss = tf.reduce_sum(tf.sin(y))
        results.append([y, *tape.gradient(loss, [x, *conv.trainable_weights])])
    for ours, reference in zip(*results, strict=True):
        np.testing.assert_allclose(ours.numpy(), reference.numpy(), rtol=1e-5, atol=1e-5)
