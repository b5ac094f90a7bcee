"""Gated PixelCNN (van den Oord et al. 2016, *Conditional Image Generation with PixelCNN
Decoders*)."""

import keras

from keras_pixel.layers import GatedBlock
from keras_pixel.layers.output_head import CategoricalHead
from keras_pixel.models.base import AutoregressiveModel


@keras.saving.register_keras_serializable(package="keras_pixel")
class GatedPixelCNN(AutoregressiveModel):
    """Gated PixelCNN with a K-way softmax per subpixel (K = ``num_values``, 256 for
    8 bits), optionally conditional.

    A first :class:`~keras_pixel.layers.GatedBlock` with a ``first_kernel_size``
    kernel (mask A on the horizontal stack) takes the image on both stacks, then
    ``num_layers - 1`` gated blocks with ``kernel_size`` kernels (figure 2 of the
    paper). The last horizontal stack goes through ReLU, a 1x1 mask-B convolution
    to ``output_filters``, ReLU and a 1x1 mask-B convolution to ``C * K``
    logits.
    With ``num_classes`` (or ``condition_dim``) every block adds a projection of
    the one-hot label (or condition vector) before its gates.

    ``model(images)`` or ``model((images, labels))``: integer ``[B, H, W, C]`` in
    ``[0, K)`` -> logits ``[B, H, W, C, K]``.

    Args:
        num_layers: number of gated blocks (>= 1).
        filters: feature maps of each stack (divisible by 3 for RGB).
        num_classes: number of classes for a class-conditional model, or None.
        image_shape: ``(H, W, C)``, C = 1 or 3.
        kernel_size: odd size of the later blocks' kernels.
        first_kernel_size: odd size of the first block's kernel.
        output_filters: width of the 1x1 output layer (divisible by 3 for RGB).
        condition_dim: size of arbitrary condition vectors (instead of classes).
        num_values: K, the values a subpixel takes (2 for binarized images, a
            codebook size for a prior over VQ-VAE codes).
        **kwargs: passed to ``keras.Model``.
    """

    def __init__(
        self,
        num_layers=15,
        filters=128,
        num_classes=None,
        image_shape=(28, 28, 1),
        kernel_size=3,
        first_kernel_size=7,
        output_filters=1024,
        condition_dim=None,
        num_values=256,
        **kwargs,
    ):
        super().__init__(
            image_shape,
            num_classes=num_classes,
            condition_dim=condition_dim,
            num_values=num_values,
            **kwargs,
        )
        if int(num_layers) < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}.")
        self.num_layers = int(num_layers)
        self.filters = int(filters)
        self.kernel_size = int(kernel_size)
        self.first_kernel_size = int(first_kernel_size)
        self.output_filters = int(output_filters)
        color_channels = self.image_shape[-1]
        common = dict(color_channels=color_channels, dtype=self.dtype_policy)
        self.blocks = [
            GatedBlock(self.filters, self.first_kernel_size, first=True, name="block_0", **common)
        ] + [
            GatedBlock(self.filters, self.kernel_size, name=f"block_{k}", **common)
            for k in range(1, self.num_layers)
        ]
        self.head = CategoricalHead(
            self.output_filters, num_values=self.num_values, name="head", **common
        )
        self._build_from_images()

    def network(self, x, condition, layer_call):
        stacks = x
        for block in self.blocks:
            stacks = layer_call(block, stacks, condition=condition)
        return layer_call(self.head, stacks[1])

    def get_config(self):
        config = super().get_config()
        config.update(
            num_layers=self.num_layers,
            filters=self.filters,
            kernel_size=self.kernel_size,
            first_kernel_size=self.first_kernel_size,
            output_filters=self.output_filters,
            num_values=self.num_values,
        )
        return config
