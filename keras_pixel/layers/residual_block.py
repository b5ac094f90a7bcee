"""The residual block of PixelCNN (PixelRNN paper, figure 5)."""

import keras
from keras import ops

from keras_pixel.layers.incremental import autocast
from keras_pixel.layers.masked_conv2d import MaskedConv2D


@keras.saving.register_keras_serializable(package="keras_pixel")
class MaskedResidualBlock(keras.layers.Layer):
    """ReLU, 1x1 (2h -> h), ReLU, k x k (h -> h), ReLU, 1x1 (h -> 2h), plus the input.

    Every convolution is a mask-B :class:`MaskedConv2D`, so the block keeps the
    causal structure of its input.

    Input and output ``[B, H, W, 2h]``.

    Args:
        filters: h, the width inside the block (the stream is 2h wide).
        kernel_size: odd size of the middle convolution.
        color_channels: 1 or 3.
    """

    def __init__(self, filters, kernel_size=3, color_channels=1, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.kernel_size = kernel_size
        self.color_channels = color_channels
        conv = dict(mask_type="B", color_channels=color_channels, dtype=self.dtype_policy)
        self.reduce = MaskedConv2D(filters, 1, name="reduce", **conv)
        self.conv = MaskedConv2D(filters, kernel_size, name="conv", **conv)
        self.expand = MaskedConv2D(2 * filters, 1, name="expand", **conv)

    def build(self, input_shape):
        if input_shape[-1] != 2 * self.filters:
            raise ValueError(
                f"MaskedResidualBlock(filters={self.filters}) takes {2 * self.filters} input "
                f"channels, got {input_shape[-1]}."
            )
        self.reduce.build(input_shape)
        self.conv.build((*input_shape[:-1], self.filters))
        self.expand.build((*input_shape[:-1], self.filters))

    def call(self, inputs):
        h = self.reduce(ops.relu(inputs))
        h = self.conv(ops.relu(h))
        h = self.expand(ops.relu(h))
        return inputs + h

    def init_cache(self, inputs, condition=None):
        """The cache of :meth:`step` for inputs ``[B, H, W, 2h]``: the middle
        convolution's (see :meth:`MaskedConv2D.init_cache`)."""
        del condition
        return self.conv.init_cache(ops.relu(self.reduce(ops.relu(autocast(self, inputs)))))

    def step(self, cache, inputs, position, condition=None):
        """The block at one pixel only: its input there ``[B, 2h]`` -> ``(output
        [B, 2h], cache)``, the cache updated at the pixel."""
        del condition
        inputs = autocast(self, inputs)
        h = ops.relu(self.reduce.pointwise(ops.relu(inputs)))
        h, cache = self.conv.step(cache, h, position)
        return inputs + self.expand.pointwise(ops.relu(h)), cache

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            filters=self.filters, kernel_size=self.kernel_size, color_channels=self.color_channels
        )
        return config
