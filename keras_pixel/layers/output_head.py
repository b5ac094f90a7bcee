"""``CategoricalHead``: the output layers of PixelCNN, PixelRNN and Gated PixelCNN."""

import keras
from keras import ops

from keras_pixel.distributions import NUM_VALUES
from keras_pixel.layers.incremental import autocast
from keras_pixel.layers.masked_conv2d import MaskedConv2D
from keras_pixel.validation import check_num_values


@keras.saving.register_keras_serializable(package="keras_pixel")
class CategoricalHead(keras.layers.Layer):
    """ReLU, a 1x1 mask-B convolution to ``output_filters``, ReLU, and a 1x1 mask-B
    convolution to ``C * K`` logits, reshaped per subpixel (PixelRNN paper, table 1;
    K = 256 for 8-bit images).

    ``[B, H, W, F]`` -> ``[B, H, W, C, K]``; with ``color_channels=3`` the
    logits of R, G and B come from the R, G and B groups of the features.

    Args:
        output_filters: width of the hidden 1x1 layer (divisible by 3 for RGB).
        color_channels: C, 1 or 3.
        num_values: K, the values a subpixel takes (>= 2).
    """

    def __init__(self, output_filters, color_channels=1, num_values=NUM_VALUES, **kwargs):
        super().__init__(**kwargs)
        self.output_filters = int(output_filters)
        self.color_channels = int(color_channels)
        self.num_values = check_num_values(num_values)
        masked = dict(mask_type="B", color_channels=self.color_channels, dtype=self.dtype_policy)
        self.hidden_conv = MaskedConv2D(self.output_filters, 1, name="hidden_conv", **masked)
        self.logits_conv = MaskedConv2D(
            self.color_channels * self.num_values, 1, name="logits_conv", **masked
        )

    def build(self, input_shape):
        self.hidden_conv.build(input_shape)
        self.logits_conv.build((*input_shape[:-1], self.output_filters))

    def call(self, features):
        logits = self.logits_conv(ops.relu(self.hidden_conv(ops.relu(features))))
        _, height, width, _ = features.shape
        return ops.reshape(logits, (-1, height, width, self.color_channels, self.num_values))

    def init_cache(self, inputs, condition=None):
        """The head reads one pixel: no cache."""
        del inputs, condition
        return ()

    def step(self, cache, inputs, position, condition=None):
        """The head at one pixel: features ``[B, F]`` -> ``(logits [B, C, K], cache)``."""
        del position, condition
        return self.pointwise(autocast(self, inputs)), cache

    def pointwise(self, features):
        """The head on one pixel's features ``[B, F]`` -> logits ``[B, C, K]``."""
        hidden = self.hidden_conv.pointwise(ops.relu(features))
        logits = self.logits_conv.pointwise(ops.relu(hidden))
        return ops.reshape(logits, (-1, self.color_channels, self.num_values))

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.color_channels, self.num_values)

    def get_config(self):
        config = super().get_config()
        config.update(
            output_filters=self.output_filters,
            color_channels=self.color_channels,
            num_values=self.num_values,
        )
        return config
