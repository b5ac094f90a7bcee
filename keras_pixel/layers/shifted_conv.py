"""The building blocks of PixelCNN++ (Salimans et al. 2017): down- and down-right-shifted
convolutions (causal by padding, no masks), concat_elu and the gated resnet block."""

import keras
from keras import ops

from keras_pixel.layers.incremental import conv_valid, kernel_and_bias, shifted_window
from keras_pixel.layers.shifts import crop
from keras_pixel.layers.weight_norm import WeightNormalization


def concat_elu(x):
    """ELU of ``[x, -x]`` concatenated on the channels: ``[..., C]`` -> ``[..., 2C]``."""
    return ops.elu(ops.concatenate([x, -x], axis=-1))


class _ShiftedConv2D(keras.layers.Conv2D):
    """A VALID convolution after padding on top and on the sides given by ``_side_pads``."""

    def __init__(self, filters, kernel_size, strides=1, **kwargs):
        kwargs.pop("padding", None)
        super().__init__(filters, kernel_size, strides=strides, padding="valid", **kwargs)

    def _side_pads(self):
        raise NotImplementedError

    def call(self, inputs):
        pads = ((0, 0), (self.kernel_size[0] - 1, 0), self._side_pads(), (0, 0))
        return super().call(ops.pad(inputs, pads))

    def compute_output_shape(self, input_shape):
        b, h, w, _ = input_shape
        s = self.strides[0]
        return (b, -(-h // s) if h else None, -(-w // s) if w else None, self.filters)

    def get_config(self):
        config = super().get_config()
        config.pop("padding", None)
        return config


@keras.saving.register_keras_serializable(package="keras_pixel")
class DownShiftedConv2D(_ShiftedConv2D):
    """A ``kh x kw`` convolution that sees the current row and the ``kh - 1`` rows above,
    ``kw // 2`` columns either side: padded on top and on both sides, not "same".

    ``[B, H, W, C]`` -> ``[B, ceil(H / s), ceil(W / s), filters]`` for stride ``s``.
    """

    def __init__(self, filters, kernel_size=(2, 3), strides=1, **kwargs):
        super().__init__(filters, kernel_size, strides=strides, **kwargs)
        if self.kernel_size[1] % 2 == 0:
            raise ValueError(f"A down-shifted kernel needs an odd width, got {kernel_size}.")

    def _side_pads(self):
        half = (self.kernel_size[1] - 1) // 2
        return (half, half)


@keras.saving.register_keras_serializable(package="keras_pixel")
class DownRightShiftedConv2D(_ShiftedConv2D):
    """A ``kh x kw`` convolution that sees the current row and the ``kh - 1`` rows above,
    from the current column and the ``kw - 1`` columns to its left.

    ``[B, H, W, C]`` -> ``[B, ceil(H / s), ceil(W / s), filters]`` for stride ``s``.
    """

    def __init__(self, filters, kernel_size=(2, 2), strides=1, **kwargs):
        super().__init__(filters, kernel_size, strides=strides, **kwargs)

    def _side_pads(self):
        return (self.kernel_size[1] - 1, 0)


class _ShiftedConv2DTranspose(keras.layers.Conv2DTranspose):
    """A stride-2 VALID transposed convolution cropped to ``[2H, 2W]`` from column
    ``_left_crop()``, so no output sees an input row below it."""

    def __init__(self, filters, kernel_size, strides=2, **kwargs):
        for key in ("padding", "output_padding"):
            kwargs.pop(key, None)
        super().__init__(filters, kernel_size, strides=strides, padding="valid", **kwargs)

    def _output_padding(self):
        """Extra output rows/columns the crop needs: none for kernels at least as big
        as the stride (the paper's 2 x 3 and 2 x 2), which export to ONNX without
        the negative pads that ``output_padding`` turns into."""
        (k_h, k_w), (s_h, s_w) = self.kernel_size, self.strides
        return max(0, s_h - k_h), max(0, self._left_crop() + s_w - k_w)

    def build(self, input_shape):
        if any(self._output_padding()):
            self.output_padding = self._output_padding()
        super().build(input_shape)

    def _left_crop(self):
        raise NotImplementedError

    def call(self, inputs):
        h, w = inputs.shape[1], inputs.shape[2]
        s = self.strides[0]
        left = self._left_crop()
        return crop(super().call(inputs), (0, left), (h * s, w * s))

    def compute_output_shape(self, input_shape):
        b, h, w, _ = input_shape
        return (b, h * self.strides[0], w * self.strides[1], self.filters)

    def get_config(self):
        config = super().get_config()
        config.pop("padding", None)
        config.pop("output_padding", None)
        return config


@keras.saving.register_keras_serializable(package="keras_pixel")
class DownShiftedConv2DTranspose(_ShiftedConv2DTranspose):
    """The transposed (upsampling) twin of :class:`DownShiftedConv2D`, stride 2:
    ``[B, H, W, C]`` -> ``[B, 2H, 2W, filters]``."""

    def __init__(self, filters, kernel_size=(2, 3), strides=2, **kwargs):
        super().__init__(filters, kernel_size, strides=strides, **kwargs)
        if self.kernel_size[1] % 2 == 0:
            raise ValueError(f"A down-shifted kernel needs an odd width, got {kernel_size}.")

    def _left_crop(self):
        return (self.kernel_size[1] - 1) // 2


@keras.saving.register_keras_serializable(package="keras_pixel")
class DownRightShiftedConv2DTranspose(_ShiftedConv2DTranspose):
    """The transposed (upsampling) twin of :class:`DownRightShiftedConv2D`, stride 2:
    ``[B, H, W, C]`` -> ``[B, 2H, 2W, filters]``."""

    def __init__(self, filters, kernel_size=(2, 2), strides=2, **kwargs):
        super().__init__(filters, kernel_size, strides=strides, **kwargs)

    def _left_crop(self):
        return 0


def _maybe_normalized(layer, weight_norm):
    return WeightNormalization(layer, name=layer.name) if weight_norm else layer


@keras.saving.register_keras_serializable(package="keras_pixel")
class GatedResnet(keras.layers.Layer):
    """The gated resnet block of PixelCNN++ (figure 2 and the reference code).

    ``c1 = conv(concat_elu(x)) [+ nin(concat_elu(a))]``; ``c2 =
    conv(dropout(concat_elu(c1))) [+ dense(condition)]`` with ``2 * filters``
    channels split into ``p, q``; returns ``x + p * sigmoid(q)``. ``conv`` is a
    down-shifted (``shift="down"``, the u stream) or down-right-shifted
    (``shift="down_right"``, the ul stream) convolution, so the block keeps the
    causal structure of its inputs.

    Call: ``block(x, a=None, condition=None)`` with ``x`` ``[B, H, W, filters]``,
    ``a`` an extra input of the same height and width (skip connection or the
    other stream), ``condition`` a vector ``[B, D]`` -> ``[B, H, W, filters]``.

    Args:
        filters: channels of ``x`` and of the output.
        shift: ``"down"`` (2 x 3 kernels) or ``"down_right"`` (2 x 2 kernels).
        dropout: dropout rate between the two convolutions (training only).
        weight_norm: wrap the convolutions in :class:`WeightNormalization`.
    """

    def __init__(self, filters, shift="down", dropout=0.5, weight_norm=True, **kwargs):
        super().__init__(**kwargs)
        if shift not in ("down", "down_right"):
            raise ValueError(f"shift must be 'down' or 'down_right', got {shift!r}.")
        self.filters = int(filters)
        self.shift = shift
        self.dropout_rate = float(dropout)
        self.weight_norm = bool(weight_norm)
        conv = DownShiftedConv2D if shift == "down" else DownRightShiftedConv2D
        dtype = dict(dtype=self.dtype_policy)
        self.conv1 = _maybe_normalized(conv(self.filters, name="conv1", **dtype), weight_norm)
        self.conv2 = _maybe_normalized(conv(2 * self.filters, name="conv2", **dtype), weight_norm)
        self.dropout = keras.layers.Dropout(self.dropout_rate)
        self.nin = None
        self.condition_proj = None

    def build(self, x_shape, a_shape=None, condition_shape=None):
        if x_shape[-1] != self.filters:
            raise ValueError(
                f"GatedResnet(filters={self.filters}) takes {self.filters} channels, "
                f"got {x_shape[-1]}."
            )
        self.conv1.build((*x_shape[:-1], 2 * self.filters))
        self.conv2.build((*x_shape[:-1], 2 * self.filters))
        if a_shape is not None:
            self.nin = _maybe_normalized(
                keras.layers.Dense(self.filters, name="nin", dtype=self.dtype_policy),
                self.weight_norm,
            )
            self.nin.build((*a_shape[:-1], 2 * a_shape[-1]))
        if condition_shape is not None:
            self.condition_proj = keras.layers.Dense(
                2 * self.filters, use_bias=False, name="condition", dtype=self.dtype_policy
            )
            self.condition_proj.build(condition_shape)

    def call(self, x, a=None, condition=None, training=None):
        return self.gate(x, self.first_conv(x, a), condition, training)

    def first_conv(self, x, a=None):
        """``c1 = conv(concat_elu(x)) [+ nin(concat_elu(a))]``, ``[B, H, W, filters]``."""
        c1 = self.conv1(concat_elu(x))
        return c1 if a is None else c1 + self.nin(concat_elu(a))

    def gate(self, x, c1, condition=None, training=None):
        """The rest of the block given ``c1``: ``x + p * sigmoid(q)``."""
        c2 = self.conv2(self.dropout(concat_elu(c1), training=training))
        return self._gate(x, c2, condition)

    def _gate(self, x, c2, condition):
        if condition is not None:
            c2 = c2 + self.condition_proj(ops.cast(condition, c2.dtype))[:, None, None, :]
        p, q = ops.split(c2, 2, axis=-1)
        return x + p * ops.sigmoid(q)

    def step(self, x_map, c1_map, row, col, x, a=None, condition=None):
        """The block at ``width`` positions of row ``row`` from ``col`` on, from
        cached maps (cached sampling: a whole row of the u stream, one pixel of
        the ul stream): :meth:`first_step`, then :meth:`gate_step`. Nothing is
        written: the caller stores ``x``, ``c1`` and the output in its maps.

        Args:
            x_map: the block's input, padded by one row on top and one column
                either side ``[B, H + 1, W + 2, filters]``, holding every position
                the step reads, except that the ``width`` positions of ``x`` may
                be stale.
            c1_map: the cache of ``c1``, padded the same way, holding the
                positions before the outputs.
            row: output row, an int scalar.
            col: first output column, an int scalar.
            x: the block's input at the output positions ``[B, 1, width, filters]``.
            a: the extra input at those positions ``[B, 1, width, C_a]``, or None.
            condition: ``[B, D]`` or None.

        Returns:
            ``(out, c1)``, both ``[B, 1, width, filters]``.
        """
        c1 = self.first_step(x_map, row, col, x, a)
        return self.gate_step(c1_map, row, col, x, c1, condition), c1

    def first_step(self, x_map, row, col, x, a=None):
        """:meth:`first_conv` at the positions of ``x`` (see :meth:`step`) -> ``c1``."""
        kw = kernel_and_bias(self.conv1)[0].shape[1]
        c1 = conv_valid(self.conv1, concat_elu(shifted_window(x_map, x, row, col, kw)))
        return c1 if a is None else c1 + self.nin(concat_elu(a))

    def gate_step(self, c1_map, row, col, x, c1, condition=None):
        """:meth:`gate` at the positions of ``x`` given their ``c1`` (see
        :meth:`step`; ``c1_map`` may or may not hold ``c1`` already)."""
        kw = kernel_and_bias(self.conv2)[0].shape[1]
        c2 = conv_valid(self.conv2, concat_elu(shifted_window(c1_map, c1, row, col, kw)))
        return self._gate(x, c2, condition)

    def compute_output_shape(self, x_shape, a_shape=None, condition_shape=None):
        return x_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            filters=self.filters,
            shift=self.shift,
            dropout=self.dropout_rate,
            weight_norm=self.weight_norm,
        )
        return config
