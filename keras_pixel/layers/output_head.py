"""``CategoricalHead``: the output layers of PixelCNN, PixelRNN and Gated PixelCNN."""

import keras
from keras import ops

from keras_pixel.distributions import NUM_VALUES
from keras_pixel.layers.masked_conv2d import MaskedConv2D


@keras.saving.register_keras_serializable(package="keras_pixel")
class CategoricalHead(keras.layers.Layer):
    """ReLU, a 1x1 mask-B convolution to ``output_filters``, ReLU, and a 1x1 mask-B
    convolution to ``C * 256`` logits, reshaped per subpixel (PixelRNN paper, table 1).

    ``[B, H, W, F]`` -> ``[B, H, W, C, 256]``; with ``color_channels=3`` the
    logits of R, G and B come from the R, G and B groups of the features.

    Args:
        output_filters: width of the hidden 1x1 layer (divisible by 3 for RGB).
        color_channels: C, 1 or 3.
    """

    def __init__(self, output_filters, color_channels=1, **kwargs):
        super().__init__(**kwargs)
        self.output_filters = int(output_filters)
        self.color_channels = int(color_channels)
        masked = dict(mask_type="B", color_channels=self.color_channels, dtype=self.dtype_policy)
        self.hidden_conv = MaskedConv2D(self.output_filters, 1, name="hidden_conv", **masked)
        self.logits_conv = MaskedConv2D(
            self.color_channels * NUM_VALUES, 1, name="logits_conv", **masked
        )

    def build(self, input_shape):
        self.hidden_conv.build(input_shape)
        self.logits_conv.build((*input_shape[:-1], self.output_filters))

    def call(self, features):
        logits = self.logits_conv(ops.relu(self.hidden_conv(ops.relu(features))))
        _, height, width, _ = features.shape
        return ops.reshape(logits, (-1, height, width, self.color_channels, NUM_VALUES))

    def pointwise(self, features):
        """The head on one pixel's features ``[B, F]`` -> logits ``[B, C, 256]``."""
        hidden = self.hidden_conv.pointwise(ops.relu(features))
        logits = self.logits_conv.pointwise(ops.relu(hidden))
        return ops.reshape(logits, (-1, self.color_channels, NUM_VALUES))

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.color_channels, NUM_VALUES)

    def get_config(self):
        config = super().get_config()
        config.update(output_filters=self.output_filters, color_channels=self.color_channels)
        return config
