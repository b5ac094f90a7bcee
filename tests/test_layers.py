"""Every public layer keeps the layer contract (:func:`assert_layer_contract`):
output shapes, serialization, causality, cached steps, mixed precision."""

import keras
import numpy as np
import pytest

from keras_pixel.layers import (
    ByteDropout,
    CategoricalHead,
    DiagonalBiLSTM,
    DownRightShiftedConv2D,
    DownRightShiftedConv2DTranspose,
    DownShiftedConv2D,
    DownShiftedConv2DTranspose,
    GatedBlock,
    GatedResnet,
    MaskedConv2D,
    RowLSTM,
    WeightNormalization,
)
from keras_pixel.layers.residual_block import MaskedResidualBlock
from keras_pixel.testing import assert_layer_contract


def _maps(channels, seed=0, shape=(2, 5, 6)):
    return np.random.default_rng(seed).normal(size=(*shape, channels)).astype("float32")


X3, X6 = _maps(3), _maps(6, seed=1)
CONDITION = np.random.default_rng(2).normal(size=(2, 4)).astype("float32")


def _gated_compare(full, outputs, i, j):
    """Where a row opens, the step also returns the vertical stack of the row
    above; at every pixel, the horizontal stack (and the skip, when returned)."""
    (v_full, *h_full), (v_row, *h) = full, outputs
    pairs = [(a[:, i, j], b) for a, b in zip(h_full, h, strict=True)]
    if j == 0 and i > 0:
        pairs.append((v_full[:, i - 1], v_row))
    return pairs


def _head_logits(y):
    return keras.ops.reshape(y, (*y.shape[:3], -1))


CASES = {
    "masked_conv2d_A_on_rgb": dict(
        layer=lambda: MaskedConv2D(6, 5, mask_type="A", color_channels=3),
        inputs=X3,
        causal=("A", 3),
        steps=dict(step_inputs=lambda i, j: X3),
    ),
    "masked_conv2d_B_dilated": dict(
        layer=lambda: MaskedConv2D(6, 3, mask_type="B", color_channels=3, dilation_rate=2),
        inputs=X6,
        causal=("B", 3),
        steps=True,
    ),
    "masked_conv2d_B_1x3_gray": dict(
        layer=lambda: MaskedConv2D(4, (1, 3), mask_type="B"),
        inputs=X6,
        causal=("B", 1),
        steps=True,
    ),
    "masked_conv2d_1x1": dict(
        layer=lambda: MaskedConv2D(3, 1, mask_type="B", color_channels=3, activation="relu"),
        inputs=X6,
        causal=dict(mask_type="B", color_channels=3, pointwise=True),
        steps=True,
    ),
    "masked_residual_block": dict(
        layer=lambda: MaskedResidualBlock(3, kernel_size=3, color_channels=3),
        inputs=X6,
        causal=("B", 3),
        steps=True,
    ),
    "categorical_head": dict(
        layer=lambda: CategoricalHead(12, color_channels=3, num_values=5),
        inputs=X6,
        causal=dict(mask_type="B", color_channels=3, output_fn=_head_logits, pointwise=True),
        steps=True,
    ),
    "gated_block_first": dict(
        layer=lambda: GatedBlock(6, 5, color_channels=3, first=True),
        inputs=X3,
        condition=CONDITION,
        causal=dict(mask_type="A", color_channels=3, output_fn=lambda y: y[1]),
        steps=dict(step_inputs=lambda i, j: X3, compare=_gated_compare),
    ),
    "gated_block_with_skip": dict(
        layer=lambda: GatedBlock(6, 3, color_channels=3, return_skip=True),
        inputs=(X6, X6),
        condition=CONDITION,
        causal=dict(
            mask_type="B", color_channels=3, output_fn=lambda y: y[1], as_inputs=lambda x: (x, x)
        ),
        steps=dict(
            step_inputs=lambda i, j: (X6[:, max(i - 1, 0)], X6[:, i, j]), compare=_gated_compare
        ),
    ),
    "row_lstm": dict(
        layer=lambda: RowLSTM(3, kernel_size=3, color_channels=3),
        inputs=X6,
        causal=("B", 3),
        steps=True,
    ),
    "diagonal_bilstm": dict(
        layer=lambda: DiagonalBiLSTM(4),
        inputs=_maps(4, seed=4),
        causal=("B", 1),
        steps=True,
    ),
    "down_shifted_conv2d": dict(layer=lambda: DownShiftedConv2D(5, strides=2), inputs=X3),
    "down_right_shifted_conv2d": dict(layer=lambda: DownRightShiftedConv2D(5), inputs=X3),
    "down_shifted_conv2d_transpose": dict(
        layer=lambda: DownShiftedConv2DTranspose(4, strides=2), inputs=X3
    ),
    "down_right_shifted_conv2d_transpose": dict(
        layer=lambda: DownRightShiftedConv2DTranspose(4, strides=2), inputs=X3
    ),
    "gated_resnet": dict(
        layer=lambda: GatedResnet(6, "down_right"),
        inputs=X6,
        call_kwargs=dict(a=_maps(6, seed=5)),
        condition=CONDITION,
    ),
    "weight_normalization": dict(
        layer=lambda: WeightNormalization(keras.layers.Conv2D(4, 3, padding="same")),
        inputs=X3,
    ),
    "byte_dropout": dict(layer=lambda: ByteDropout(0.25, seed=3), inputs=X6),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_layer_contract(name):
    case = dict(CASES[name])
    assert_layer_contract(case.pop("layer")(), **case)


def test_the_contract_catches_a_layer_that_sees_the_future():
    with pytest.raises(AssertionError, match="Not causal"):
        assert_layer_contract(
            keras.layers.Conv2D(3, 3, padding="same"), X3, causal=("B", 3), mixed_precision=()
        )


def test_the_contract_catches_steps_that_differ_from_the_call():
    @keras.saving.register_keras_serializable(package="tests")
    class Leaky(MaskedConv2D):
        def step(self, cache, inputs, position, condition=None):
            outputs, cache = super().step(cache, inputs, position, condition)
            return outputs + 1.0, cache

    with pytest.raises(AssertionError, match="differs from the call"):
        assert_layer_contract(Leaky(3, 3, mask_type="B"), X6, steps=True, mixed_precision=())
