"""benchmarks/bench_flops.py's live multiply-add count, against counts by hand."""

import os
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "benchmarks"))

from bench_flops import live_macs  # noqa: E402

from keras_pixel.layers import DiagonalBiLSTM, MaskedConv2D  # noqa: E402


@pytest.mark.parametrize(
    "kernel_size, mask_type, live_taps, computed_taps",
    [(3, "A", 4, 6), (3, "B", 5, 6), ((1, 5), "A", 2, 3), ((1, 5), "B", 3, 3)],
)
def test_masked_taps_are_not_counted(kernel_size, mask_type, live_taps, computed_taps):
    # 25 positions, each 8 filters over the live taps of one input channel. The
    # layer convolves with the kernel rows down to the centre only (the row below
    # a 3 x 3 centre is masked out whole: 6 taps are computed, not 9); a one-row
    # 1 x 5 kernel (the Row LSTM's input-to-state shape) with its 3 taps up to
    # the centre (those to the right are masked out).
    conv = MaskedConv2D(8, kernel_size, mask_type=mask_type)
    spec = tf.TensorSpec((2, 5, 5, 1), tf.float32)
    conv.build(spec.shape)
    counted = live_macs(lambda x: conv(x), spec)
    assert counted["live"] == 25 * 8 * live_taps
    assert counted["dense"] == 25 * 8 * computed_taps
    assert counted["uncounted"] == []


def test_dense_strided_transposed_and_loops_are_counted():
    dense = keras.layers.Dense(6)
    strided = keras.layers.Conv2D(4, 2, strides=2)
    transposed = keras.layers.Conv2DTranspose(3, 2, strides=2)
    kernel = tf.constant(np.ones((5, 5), np.float32))

    def fn(x):
        h = dense(x)  # [2, 4, 4, 6]: 16 positions x 5 x 6
        h = strided(h)  # [2, 2, 2, 4]: 4 positions x 2 x 2 x 6 x 4
        h = transposed(h)  # 4 input positions x 2 x 2 x 4 x 3
        rows = tf.scan(lambda c, r: tf.matmul(r, kernel), tf.transpose(x[..., 0, :], (1, 0, 2)))
        return h, rows  # 4 steps of [2, 5] x [5, 5]

    counted = live_macs(fn, tf.TensorSpec((2, 4, 4, 5), tf.float32))
    expected = 16 * 5 * 6 + 4 * 2 * 2 * 6 * 4 + 4 * 2 * 2 * 4 * 3 + 4 * 5 * 5
    assert counted["live"] == expected and counted["uncounted"] == []


def test_diagonal_bilstm_computes_its_two_state_taps_only():
    # Per image, each direction: a 1x1 input-to-state convolution (4 x 5
    # positions, 2 -> 4 * 3 channels) and, for each of the W + H - 1 = 8 columns
    # of the skewed map, the 2 x 1 state-to-state convolution (4 rows, 2 taps,
    # 3 -> 12 channels). No third, zero tap is computed.
    layer = DiagonalBiLSTM(3)
    spec = tf.TensorSpec((2, 4, 5, 2), tf.float32)
    layer.build(spec.shape)
    counted = live_macs(layer, spec)
    per_direction = 4 * 5 * 2 * 12 + 8 * 4 * 2 * 3 * 12
    assert counted["live"] == counted["dense"] == 2 * per_direction
    assert counted["uncounted"] == []
