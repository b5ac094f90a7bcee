"""Keras layers of the package."""

from keras_pixel.layers.dropout import ByteDropout
from keras_pixel.layers.gated_block import GatedBlock
from keras_pixel.layers.incremental import Position
from keras_pixel.layers.lstm import DiagonalBiLSTM, RowLSTM
from keras_pixel.layers.masked_conv2d import MaskedConv2D
from keras_pixel.layers.masking import causal_kernel_mask
from keras_pixel.layers.output_head import CategoricalHead
from keras_pixel.layers.shifted_conv import (
    DownRightShiftedConv2D,
    DownRightShiftedConv2DTranspose,
    DownShiftedConv2D,
    DownShiftedConv2DTranspose,
    GatedResnet,
    concat_elu,
)
from keras_pixel.layers.weight_norm import WeightNormalization

__all__ = [
    "ByteDropout",
    "CategoricalHead",
    "DiagonalBiLSTM",
    "DownRightShiftedConv2D",
    "DownRightShiftedConv2DTranspose",
    "DownShiftedConv2D",
    "DownShiftedConv2DTranspose",
    "GatedResnet",
    "WeightNormalization",
    "concat_elu",
    "GatedBlock",
    "MaskedConv2D",
    "Position",
    "RowLSTM",
    "causal_kernel_mask",
]
