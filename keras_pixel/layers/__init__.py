"""Keras layers of the package."""

from keras_pixel.layers.masked_conv2d import MaskedConv2D
from keras_pixel.layers.masking import causal_kernel_mask

__all__ = ["MaskedConv2D", "causal_kernel_mask"]
