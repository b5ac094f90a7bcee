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


@pytest.mark.parametrize("mask_type, live_taps", [("A", 4), ("B", 5)])
def test_masked_taps_are_not_counted(mask_type, live_taps):
    conv = MaskedConv2D(8, 3, mask_type=mask_type)
    spec = tf.TensorSpec((2, 5, 5, 1), tf.float32)
    conv.build(spec.shape)
    counted = live_macs(lambda x: conv(x), spec)
    # 25 positions, each 8 filters over the live taps of one input channel; the
    # layer convolves with the 2 x 3 kernel rows down to the centre (the row
    # below is masked out whole), so 6 taps are computed, not 9.
    assert counted["live"] == 25 * 8 * live_taps
    assert counted["dense"] == 25 * 8 * 6
    assert counted["uncounted"] == []


@pytest.mark.parametrize("mask_type, live_taps", [("A", 2), ("B", 3)])
def test_a_one_row_layer_computes_the_taps_up_to_its_centre_only(mask_type, live_taps):
    # A 1 x 5 kernel (the Row LSTM's input-to-state and the horizontal stack's
    # shape): the two taps right of the centre are masked out, so 3 are computed.
    conv = MaskedConv2D(8, (1, 5), mask_type=mask_type)
    spec = tf.TensorSpec((2, 4, 5, 1), tf.float32)
    conv.build(spec.shape)
    counted = live_macs(lambda x: conv(x), spec)
    assert counted["live"] == 20 * 8 * live_taps
    assert counted["dense"] == 20 * 8 * 3
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
