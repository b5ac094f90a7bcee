"""PixelCNN (van den Oord, Kalchbrenner, Kavukcuoglu 2016, *Pixel Recurrent Neural Networks*)."""

import keras

from keras_pixel.layers import MaskedConv2D
from keras_pixel.layers.output_head import CategoricalHead
from keras_pixel.layers.residual_block import MaskedResidualBlock
from keras_pixel.models.base import AutoregressiveModel


@keras.saving.register_keras_serializable(package="keras_pixel")
class PixelCNN(AutoregressiveModel):
    """PixelCNN with a K-way softmax per subpixel (K = ``num_values``, 256 for 8 bits).

    The paper's architecture (PixelRNN paper, table 1 and figure 5): a 7x7 mask-A
    convolution to 2h channels, ``num_layers`` residual blocks of mask-B
    convolutions, then ReLU, a 1x1 mask-B convolution to ``output_filters``,
    ReLU and a 1x1 mask-B convolution to ``C * K`` logits. With RGB images every
    layer uses the R -> G -> B channel-group masking.

    ``model(images)``: integer ``[B, H, W, C]`` in ``[0, K)`` -> logits
    ``[B, H, W, C, K]``.

    Args:
        image_shape: ``(H, W, C)``, C = 1 or 3.
        num_layers: number of residual blocks.
        filters: h; the residual stream has 2h channels. Divisible by 3 for RGB.
        output_filters: width of the 1x1 output layer. Divisible by 3 for RGB.
        kernel_size: odd size of the convolutions inside the residual blocks.
        first_kernel_size: odd size of the mask-A input convolution.
        num_values: K, the values a subpixel takes (2 for binarized images, a
            codebook size for a prior over VQ-VAE codes).
        **kwargs: passed to ``keras.Model``.
    """

    #: Off since its masked convolutions drop the masked-out rows and take the
    #: gradients timed fastest on the CPU: 1.5-1.7x XLA's training rate on CPU
    #: (benchmarks/README.md, "MaskedConv2D: the rows below the centre").
    xla_faster = False

    conditionable = False

    def __init__(
        self,
        image_shape=(28, 28, 1),
        num_layers=15,
        filters=128,
        output_filters=1024,
        kernel_size=3,
        first_kernel_size=7,
        num_values=256,
        **kwargs,
    ):
        super().__init__(image_shape, num_values=num_values, **kwargs)
        color_channels = self.image_shape[-1]
        self.num_layers = int(num_layers)
        self.filters = int(filters)
        self.output_filters = int(output_filters)
        self.kernel_size = kernel_size
        self.first_kernel_size = first_kernel_size
        if self.num_layers < 0:
            raise ValueError(f"num_layers must be >= 0, got {num_layers}.")
        conv = dict(color_channels=color_channels, dtype=self.dtype_policy)
        self.input_conv = MaskedConv2D(
            2 * self.filters, first_kernel_size, mask_type="A", name="input_conv", **conv
        )
        self.blocks = [
            MaskedResidualBlock(self.filters, kernel_size, name=f"block_{k}", **conv)
            for k in range(self.num_layers)
        ]
        self.head = CategoricalHead(
            self.output_filters, num_values=self.num_values, name="head", **conv
        )
        self._build_from_images()

    def network(self, x, condition, layer_call):
        del condition
        h = layer_call(self.input_conv, x)
        for block in self.blocks:
            h = layer_call(block, h)
        return layer_call(self.head, h)

    def get_config(self):
        config = super().get_config()
        config.update(
            num_layers=self.num_layers,
            filters=self.filters,
            output_filters=self.output_filters,
            kernel_size=self.kernel_size,
            first_kernel_size=self.first_kernel_size,
            num_values=self.num_values,
        )
        return config
