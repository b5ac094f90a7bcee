"""Keras layers of the package."""

from keras_pixel.layers.gated_block import GatedBlock
from keras_pixel.layers.masked_conv2d import MaskedConv2D
from keras_pixel.layers.masking import causal_kernel_mask

__all__ = ["GatedBlock", "MaskedConv2D", "causal_kernel_mask"]
