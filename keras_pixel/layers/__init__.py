"""Keras layers of the package."""

from keras_pixel.layers.gated_block import GatedBlock
from keras_pixel.layers.lstm import DiagonalBiLSTM, RowLSTM
from keras_pixel.layers.masked_conv2d import MaskedConv2D
from keras_pixel.layers.masking import causal_kernel_mask

__all__ = [
    "DiagonalBiLSTM",
    "GatedBlock",
    "MaskedConv2D",
    "RowLSTM",
    "causal_kernel_mask",
]
