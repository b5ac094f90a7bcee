"""``MaskedConv2D``: the PixelCNN convolution (van den Oord et al. 2016, section 3.4)."""

import keras
from keras import ops

from keras_pixel.layers.conv_backward import padded_conv2d
from keras_pixel.layers.incremental import autocast, conv_at, pointwise, write_at, write_pixels
from keras_pixel.layers.masking import (
    causal_kernel_mask,
    channel_groups,
    validate_color_channels,
    validate_mask_type,
)


@keras.saving.register_keras_serializable(package="keras_pixel")
class MaskedConv2D(keras.layers.Conv2D):
    """A 2-D convolution that only sees pixels before the current one.

    The kernel is multiplied by a causal mask inside the convolution (not through
    a ``kernel_constraint``, which Keras applies only after an optimizer step), so
    the layer is autoregressive from its first call. Mask ``"A"`` excludes the
    current subpixel (use it on the image itself), mask ``"B"`` includes it (use it
    on the features of an earlier masked layer). With ``color_channels=3`` the
    input and output channels are split into contiguous R, G, B groups and the
    centre tap connects group ``g`` to group ``g'`` only where ``g < g'`` (A) or
    ``g <= g'`` (B). See :mod:`keras_pixel.layers.masking`.

    The rows of the kernel below its centre are masked out whole, so (without
    dilation) the layer convolves with the ``kh // 2 + 1`` rows down to the
    centre only, its input padded on top and on the sides: the same outputs as
    the full ``"same"`` convolution up to float rounding, with ``(kh // 2) / kh``
    fewer multiply-adds (3/7 for the 7 x 7 first layer, 1/3 for 3 x 3), forward
    and backward. A one-row ``1 x k`` kernel (the Row LSTM's input-to-state
    convolution, the Gated PixelCNN's horizontal stack) has only its centre row,
    whose taps right of the centre are masked out: it convolves with the
    ``k // 2 + 1`` taps up to the centre, its input padded on the left. That
    convolution runs through
    :func:`~keras_pixel.layers.conv_backward.padded_conv2d`, whose two gradients
    are computed the way timed fastest on this CPU.

    Input ``[B, H, W, C_in]`` -> output ``[B, H, W, filters]`` (``"same"`` padding,
    stride 1); ``C_in`` and ``filters`` must be divisible by ``color_channels``.

    Args:
        filters: number of output channels.
        kernel_size: odd int or pair of odd ints.
        mask_type: ``"A"`` or ``"B"``.
        color_channels: 1 (grayscale) or 3 (RGB channel-group masking).
        **kwargs: the other arguments of ``keras.layers.Conv2D`` (initializers,
            regularizers, ``activation``, ``use_bias``, ``dilation_rate``, ...).
    """

    def __init__(self, filters, kernel_size, mask_type="B", color_channels=1, **kwargs):
        padding = kwargs.pop("padding", "same")
        strides = kwargs.pop("strides", 1)
        if padding != "same":
            raise ValueError(f"MaskedConv2D uses padding='same', got padding={padding!r}.")
        if strides not in (1, (1, 1), [1, 1]):
            raise ValueError(f"MaskedConv2D uses strides=1, got strides={strides!r}.")
        if kwargs.get("data_format", "channels_last") != "channels_last":
            raise ValueError("MaskedConv2D supports data_format='channels_last' only.")
        super().__init__(filters, kernel_size, padding="same", strides=1, **kwargs)
        self.mask_type = validate_mask_type(mask_type)
        self.color_channels = validate_color_channels(color_channels)
        causal_kernel_mask(self.kernel_size, 1, 1, self.mask_type, 1)
        channel_groups(filters, self.color_channels)
        self._mask = None

    def build(self, input_shape):
        in_channels = input_shape[-1]
        if in_channels is None:
            raise ValueError("MaskedConv2D needs a known number of input channels.")
        channel_groups(in_channels, self.color_channels)
        super().build(input_shape)
        self._mask = causal_kernel_mask(
            self.kernel_size, in_channels, self.filters, self.mask_type, self.color_channels
        )

    @property
    def mask(self):
        """The 0/1 kernel mask, ``[kh, kw, C_in, filters]`` (after ``build``)."""
        return self._mask

    @property
    def masked_kernel(self):
        """The kernel times its mask, ``[kh, kw, C_in, filters]``."""
        return self.kernel * ops.convert_to_tensor(self._mask, dtype=self.kernel.dtype)

    @property
    def effective_kernel(self):
        """The kernel the layer convolves with: :attr:`masked_kernel`."""
        return self.masked_kernel

    @property
    def pointwise_only(self):
        """Whether the kernel is 1x1: a step then reads one pixel and needs no cache."""
        return tuple(self.kernel_size) == (1, 1)

    def init_cache(self, inputs, condition=None):
        """The cache of :meth:`step`: the input map through :meth:`cache_padding`
        (``()`` for a 1x1 kernel)."""
        del condition
        return () if self.pointwise_only else self.cache_padding(autocast(self, inputs))

    def step(self, cache, inputs, position, condition=None):
        """The layer's output at ``position`` only, ``[B, filters]``.

        Args:
            cache: from :meth:`init_cache`.
            inputs: the input at the pixel, ``[B, C_in]``; or the whole input map
                ``[B, H, W, C_in]`` (the image, for a first layer), of which the
                pixel and the one before it are written (the channels drawn
                since the last step).
            position: a :class:`~keras_pixel.layers.Position`.
            condition: unused.

        Returns:
            ``(outputs [B, filters], cache)``.
        """
        del condition
        inputs = autocast(self, inputs)
        if self.pointwise_only:
            return self.pointwise(inputs), cache
        i, j = position.row, position.column
        top, side = self.cache_offsets
        if len(inputs.shape) == 4:
            cache = write_pixels(cache, inputs, i, j, (top, side))
        else:
            cache = write_at(cache, inputs, i + top, j + side)
        return self.output_at(cache, i, j), cache

    @property
    def cache_offsets(self):
        """``(top, side)``: where pixel ``(0, 0)`` sits in a :meth:`cache_padding` map."""
        (kh, kw), (dh, dw) = self.kernel_size, self.dilation_rate
        return dh * (kh // 2), dw * (kw // 2)

    def cache_padding(self, inputs):
        """Pads ``[B, H, W, C_in]`` on top and on both sides for :meth:`output_at`:
        -> ``[B, H + dh * (kh // 2), W + 2 * dw * (kw // 2), C_in]`` (nothing below:
        the rows under the centre are masked out)."""
        top, side = self.cache_offsets
        return ops.pad(inputs, ((0, 0), (top, 0), (side, side), (0, 0)))

    def output_at(self, padded_inputs, i, j):
        """The layer's output at pixel ``(i, j)`` only, ``[B, filters]``.

        ``padded_inputs`` is the input map through :meth:`cache_padding`; only the
        kernel rows down to the centre are evaluated (the rest are masked). Equal
        to ``self(inputs)[:, i, j]`` up to float rounding.
        """
        live_rows = self.kernel_size[0] // 2 + 1
        out = conv_at(
            padded_inputs,
            self.masked_kernel[:live_rows],
            i,
            j,
            self.bias if self.use_bias else None,
            self.dilation_rate,
        )
        return self.activation(out)

    def pointwise(self, x):
        """A 1x1 layer applied to one pixel's features ``[B, C_in]`` -> ``[B, filters]``."""
        if tuple(self.kernel_size) != (1, 1):
            raise ValueError(f"pointwise needs a 1x1 kernel, {self.name} has {self.kernel_size}.")
        return self.activation(
            pointwise(x, self.masked_kernel, self.bias if self.use_bias else None)
        )

    def convolution_op(self, inputs, kernel):
        masked = kernel * ops.convert_to_tensor(self._mask, dtype=kernel.dtype)
        if tuple(self.dilation_rate) != (1, 1) or self.groups != 1:
            return super().convolution_op(inputs, masked)
        kh, kw = self.kernel_size
        if kh == 1:
            return padded_conv2d(inputs, masked[:, : kw // 2 + 1], ((0, 0), (kw // 2, 0)))
        pads = ((kh // 2, 0), (kw // 2, kw // 2))
        return padded_conv2d(inputs, masked[: kh // 2 + 1], pads)

    def get_config(self):
        config = super().get_config()
        config.update({"mask_type": self.mask_type, "color_channels": self.color_channels})
        return config
