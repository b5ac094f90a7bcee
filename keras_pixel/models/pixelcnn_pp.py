"""PixelCNN++ (Salimans, Karpathy, Chen, Kingma 2017)."""

import keras
from keras import ops

from keras_pixel.distributions.logistic_mixture import mixture_from_params, num_mixture_params
from keras_pixel.layers.shifted_conv import (
    DownRightShiftedConv2D,
    DownRightShiftedConv2DTranspose,
    DownShiftedConv2D,
    DownShiftedConv2DTranspose,
    GatedResnet,
)
from keras_pixel.layers.shifts import down_shift, right_shift
from keras_pixel.layers.weight_norm import WeightNormalization, data_dependent_init
from keras_pixel.models.base import AutoregressiveModel


def _wn(layer, weight_norm):
    return WeightNormalization(layer, name=layer.name) if weight_norm else layer


@keras.saving.register_keras_serializable(package="keras_pixel")
class PixelCNNPlusPlus(AutoregressiveModel):
    """PixelCNN++: a U-Net of gated resnets over two shifted streams, with a
    discretized logistic mixture likelihood.

    The u stream (down-shifted convolutions) sees the rows above; the ul stream
    (down-right-shifted) also the pixels to the left. ``num_hierarchies`` levels of
    ``num_resnet`` gated resnet blocks (concat_elu, dropout, gates) go down in
    resolution by strided convolutions and back up by transposed ones, with the
    paper's skip connections from every block of the way down to the way up. The
    input gets an extra channel of ones (so zero padding is visible); convolutions
    are weight-normalized (:class:`~keras_pixel.layers.WeightNormalization`, with
    :meth:`data_dependent_init`). The outputs condition on whole earlier pixels;
    the channels of a pixel are coupled inside the likelihood
    (:class:`~keras_pixel.distributions.DiscretizedLogisticMixture`).

    ``model(images)``: integer ``[B, H, W, C]`` -> mixture parameters
    ``[B, H, W, K * (1 + 2C)]`` (C = 1) or ``[B, H, W, 10K]`` (C = 3). H and W must
    be divisible by ``2**(num_hierarchies - 1)``.

    Args:
        num_resnet: gated resnet blocks per level.
        num_hierarchies: resolution levels of the U-Net.
        num_filters: channels of both streams.
        num_logistic_mix: mixture components K.
        dropout: dropout rate in the blocks (training only).
        image_shape: ``(H, W, C)``, C = 1 or 3.
        num_classes: for class conditioning (labels ``[B]`` or one-hot).
        condition_dim: for conditioning on vectors ``[B, D]``.
        conditional: shorthand: an int number of classes (same as ``num_classes``).
        num_bits: bits per subpixel; images hold values in ``[0, 2**num_bits - 1]``.
        weight_norm: weight-normalize the convolutions.
        **kwargs: passed to ``keras.Model``.
    """

    xla_faster = False  # measured 0.5-0.65x on CPU: benchmarks/README.md

    def __init__(
        self,
        num_resnet=5,
        num_hierarchies=3,
        num_filters=160,
        num_logistic_mix=10,
        dropout=0.5,
        image_shape=(32, 32, 3),
        num_classes=None,
        condition_dim=None,
        conditional=None,
        num_bits=8,
        weight_norm=True,
        **kwargs,
    ):
        if conditional not in (None, False):
            if isinstance(conditional, bool) or not isinstance(conditional, int):
                raise ValueError(
                    "conditional takes the number of classes (an int); for vectors pass "
                    "condition_dim."
                )
            num_classes = num_classes or conditional
        super().__init__(
            image_shape, num_classes=num_classes, condition_dim=condition_dim, **kwargs
        )
        self.num_resnet = int(num_resnet)
        self.num_hierarchies = int(num_hierarchies)
        self.num_filters = int(num_filters)
        self.num_logistic_mix = int(num_logistic_mix)
        self.dropout = float(dropout)
        self.num_bits = int(num_bits)
        self.weight_norm = bool(weight_norm)
        if self.num_resnet < 1 or self.num_hierarchies < 1:
            raise ValueError("num_resnet and num_hierarchies must be >= 1.")
        if not 1 <= self.num_bits <= 8:
            raise ValueError(f"num_bits must be in [1, 8] for uint8 images, got {num_bits}.")
        self._num_values = 2**self.num_bits
        height, width, channels = self.image_shape
        factor = 2 ** (self.num_hierarchies - 1)
        if height % factor or width % factor:
            raise ValueError(
                f"image height and width must be divisible by 2**(num_hierarchies - 1) = "
                f"{factor}, got {height}x{width}."
            )
        nf, wn = self.num_filters, self.weight_norm
        dtype = dict(dtype=self.dtype_policy)
        self.u_init = _wn(DownShiftedConv2D(nf, (2, 3), name="u_init", **dtype), wn)
        self.ul_init_down = _wn(DownShiftedConv2D(nf, (1, 3), name="ul_init_down", **dtype), wn)
        self.ul_init_right = _wn(
            DownRightShiftedConv2D(nf, (2, 1), name="ul_init_right", **dtype), wn
        )

        def block(name, shift):
            return GatedResnet(nf, shift, dropout=self.dropout, weight_norm=wn, name=name, **dtype)

        levels = range(self.num_hierarchies)
        self.up_u = [
            [block(f"up_u_{h}_{r}", "down") for r in range(self.num_resnet)] for h in levels
        ]
        self.up_ul = [
            [block(f"up_ul_{h}_{r}", "down_right") for r in range(self.num_resnet)] for h in levels
        ]
        self.down_u = [
            [block(f"down_u_{h}_{r}", "down") for r in range(self.num_resnet + (h > 0))]
            for h in levels
        ]
        self.down_ul = [
            [block(f"down_ul_{h}_{r}", "down_right") for r in range(self.num_resnet + (h > 0))]
            for h in levels
        ]
        last = self.num_hierarchies - 1
        self.u_downsample = [
            _wn(DownShiftedConv2D(nf, (2, 3), strides=2, name=f"u_down_{h}", **dtype), wn)
            for h in range(last)
        ]
        self.ul_downsample = [
            _wn(DownRightShiftedConv2D(nf, (2, 2), strides=2, name=f"ul_down_{h}", **dtype), wn)
            for h in range(last)
        ]
        self.u_upsample = [
            _wn(DownShiftedConv2DTranspose(nf, (2, 3), name=f"u_up_{h}", **dtype), wn)
            for h in range(last)
        ]
        self.ul_upsample = [
            _wn(DownRightShiftedConv2DTranspose(nf, (2, 2), name=f"ul_up_{h}", **dtype), wn)
            for h in range(last)
        ]
        self.output_layer = _wn(
            keras.layers.Dense(
                num_mixture_params(self.num_logistic_mix, channels), name="output", **dtype
            ),
            wn,
        )
        self._build_from_images()

    def forward(self, x, condition=None, training=False):
        ones = ops.ones_like(x[..., :1])
        x = ops.concatenate([x, ones], axis=-1)
        u_list = [down_shift(self.u_init(x))]
        ul_list = [down_shift(self.ul_init_down(x)) + right_shift(self.ul_init_right(x))]
        for h in range(self.num_hierarchies):
            for u_block, ul_block in zip(self.up_u[h], self.up_ul[h], strict=True):
                u_list.append(u_block(u_list[-1], condition=condition, training=training))
                ul_list.append(
                    ul_block(ul_list[-1], a=u_list[-1], condition=condition, training=training)
                )
            if h < self.num_hierarchies - 1:
                u_list.append(self.u_downsample[h](u_list[-1]))
                ul_list.append(self.ul_downsample[h](ul_list[-1]))
        u, ul = u_list.pop(), ul_list.pop()
        for h in range(self.num_hierarchies):
            for u_block, ul_block in zip(self.down_u[h], self.down_ul[h], strict=True):
                u = u_block(u, a=u_list.pop(), condition=condition, training=training)
                ul = ul_block(
                    ul,
                    a=ops.concatenate([u, ul_list.pop()], axis=-1),
                    condition=condition,
                    training=training,
                )
            if h < self.num_hierarchies - 1:
                u = self.u_upsample[h](u)
                ul = self.ul_upsample[h](ul)
        return self.output_layer(ops.elu(ul))

    def output_distribution(self, outputs, temperature=1.0):
        """The :class:`DiscretizedLogisticMixture` given the network outputs."""
        del temperature
        return mixture_from_params(
            outputs, self.num_logistic_mix, self.image_shape[-1], self.num_bits
        )

    def subpixel_log_prob(self, outputs, images):
        return self.output_distribution(outputs).subpixel_log_prob(images)

    noise_per_subpixel = 2

    def sample_subpixel(self, outputs, canvas, i, j, c, noise, temperature):
        pixel = outputs[:, i : i + 1, j : j + 1]
        previous = canvas[:, i : i + 1, j : j + 1]
        drawn = self.output_distribution(pixel).sample_channel(
            previous, c, temperature=temperature, uniform=noise[:, None, None, :]
        )
        return ops.reshape(drawn, (-1,))

    def data_dependent_init(self, images, labels=None):
        """Data-dependent initialization of the weight normalization on a batch.

        Call once before training, with a batch of training images (and labels
        for a conditional model). Returns the number of layers initialized.
        """
        images = self._check(images)
        condition = self._check_labels(labels, len(images))
        inputs = images if condition is None else (images, condition)
        return data_dependent_init(self, inputs)

    def get_config(self):
        config = super().get_config()
        config.update(
            num_resnet=self.num_resnet,
            num_hierarchies=self.num_hierarchies,
            num_filters=self.num_filters,
            num_logistic_mix=self.num_logistic_mix,
            dropout=self.dropout,
            num_bits=self.num_bits,
            weight_norm=self.weight_norm,
        )
        return config
