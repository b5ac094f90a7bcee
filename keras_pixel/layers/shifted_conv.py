"""The building blocks of PixelCNN++ (Salimans et al. 2017): down- and down-right-shifted
convolutions (causal by padding, no masks), concat_elu and the gated resnet block."""

import keras
from keras import ops

from keras_pixel.layers.conv_backward import padded_conv2d
from keras_pixel.layers.dropout import ByteDropout
from keras_pixel.layers.incremental import (
    correlate,
    kernel_and_bias,
    pointwise,
    read_window,
    shifted_window,
)
from keras_pixel.layers.shifts import crop
from keras_pixel.layers.weight_norm import weight_normalized


def concat_elu(x):
    """ELU of ``[x, -x]`` concatenated on the channels: ``[..., C]`` -> ``[..., 2C]``."""
    return ops.elu(ops.concatenate([x, -x], axis=-1))


class _ShiftedConv2D(keras.layers.Conv2D):
    """A VALID convolution after padding on top and on the sides given by ``_side_pads``.

    A stride-1 one runs through
    :func:`~keras_pixel.layers.conv_backward.padded_conv2d`: the same forward
    pass, and the backward pass timed fastest on this CPU for its shape (on CPU,
    TensorFlow's ``Conv2DBackpropFilter`` is slow for small kernels).
    """

    def __init__(self, filters, kernel_size, strides=1, **kwargs):
        kwargs.pop("padding", None)
        super().__init__(filters, kernel_size, strides=strides, padding="valid", **kwargs)

    def _side_pads(self):
        raise NotImplementedError

    def call(self, inputs):
        pads = ((self.kernel_size[0] - 1, 0), self._side_pads())
        if self._through_padded_conv2d():
            outputs = padded_conv2d(inputs, self.kernel, pads, self.bias if self.use_bias else None)
            return outputs if self.activation is None else self.activation(outputs)
        return super().call(ops.pad(inputs, ((0, 0), *pads, (0, 0))))

    def _through_padded_conv2d(self):
        """Whether to run through :func:`~keras_pixel.layers.conv_backward.padded_conv2d`
        (every plain stride-1 convolution, channels last)."""
        plain = tuple(self.strides) == (1, 1) and tuple(self.dilation_rate) == (1, 1)
        return plain and self.groups == 1 and self.data_format == "channels_last"

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
        dropout: dropout rate between the two convolutions (training only;
            :class:`~keras_pixel.layers.ByteDropout`).
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
        self.conv1 = weight_normalized(conv(self.filters, name="conv1", **dtype), weight_norm)
        self.conv2 = weight_normalized(conv(2 * self.filters, name="conv2", **dtype), weight_norm)
        self.dropout = ByteDropout(self.dropout_rate)
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
            self.nin = weight_normalized(
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

    # Cached sampling (PixelCNN++'s scheduler runs these): a whole row of the u
    # stream (first_step, gate_step), or one pixel of the ul stream with its row
    # terms computed once per row (row_terms, pixel_first_step, pixel_gate_step).
    # Nothing is written: the caller stores x, c1 and the output in its maps.
    # Every method reads its kernels from ``kernels``, what sampling_kernels()
    # prepared where the compiled loop starts.

    def sampling_kernels(self, row_channels=None):
        """The kernels the cached steps use, computed once where a compiled
        sampling loop starts: XLA hoists loop-invariant work out of a loop but
        not out of a branch inside it, and no kernel slice at all, so each step
        would otherwise recompute them, reading and writing the kernels (tens of
        MB per step at the paper's size).

        Args:
            row_channels: for a down-right block with an extra input, how many of
                its first channels :meth:`row_terms` reads (the rest: the pixel
                steps); None for all.

        Returns:
            A dict: ``"conv1"``, ``"conv2"`` and (with an extra input) ``"nin"``:
            ``(kernel, bias)`` pairs, the weight-normalized kernels; for a
            down-right block also the kernel rows ``"conv1_top"``,
            ``"conv1_bottom"``, ``"conv2_top"``, ``"conv2_bottom"`` and
            ``"nin_row"`` / ``"nin_pixel"``: the rows of ``nin``'s kernel that
            ``concat_elu`` of the row's and the pixel's extra channels meet.
        """
        kernels = {name: kernel_and_bias(getattr(self, name)) for name in ("conv1", "conv2")}
        if self.nin is not None:
            kernels["nin"] = kernel_and_bias(self.nin)
        if self.shift != "down_right":
            return kernels
        for name in ("conv1", "conv2"):
            kernel = kernels[name][0]
            kernels[f"{name}_top"], kernels[f"{name}_bottom"] = kernel[:1], kernel[1:]
        if self.nin is not None:
            kernel, total = kernels["nin"][0], self.nin_input_channels
            n = total if row_channels is None else row_channels

            def rows(start, count):
                return ops.concatenate(
                    [kernel[start : start + count], kernel[total + start : total + start + count]],
                    axis=0,
                )

            kernels["nin_row"] = rows(0, n)
            if n < total:
                kernels["nin_pixel"] = rows(n, total - n)
        return kernels

    def first_step(self, x_map, row, col, x, a=None, kernels=None):
        """:meth:`first_conv` at ``width`` positions of row ``row`` from ``col``
        on -> ``c1`` ``[B, 1, width, filters]``.

        Args:
            x_map: the block's input, padded by one row on top and one column
                either side ``[B, H + 1, W + 2, filters]``, holding every position
                the step reads, except that the ``width`` positions of ``x`` may
                be stale.
            row: output row, an int scalar.
            col: first output column, an int scalar.
            x: the block's input at the output positions ``[B, 1, width, filters]``.
            a: the extra input at those positions ``[B, 1, width, C_a]``, or None.
            kernels: from :meth:`sampling_kernels` (computed here if None).
        """
        kernels = kernels or self.sampling_kernels()
        kernel, bias = kernels["conv1"]
        window = shifted_window(x_map, x, row, col, kernel.shape[1])
        c1 = correlate(concat_elu(window), kernel, bias)
        return c1 if a is None else c1 + pointwise(concat_elu(a), *kernels["nin"])

    def gate_step(self, c1_map, row, col, x, c1, condition=None, kernels=None):
        """:meth:`gate` at the positions of ``x`` given their ``c1`` (see
        :meth:`first_step`; ``c1_map``, the cache of ``c1`` padded the same way,
        holds the positions before them and may or may not hold ``c1``)."""
        kernels = kernels or self.sampling_kernels()
        kernel, bias = kernels["conv2"]
        window = shifted_window(c1_map, c1, row, col, kernel.shape[1])
        return self._gate(x, correlate(concat_elu(window), kernel, bias), condition)

    def row_terms(self, x_map, c1_map, row, a=None, condition=None, kernels=None):
        """What the pixel steps add along row ``row`` without reading the row
        itself, for the whole row at once: both convolutions' top kernel row on
        the row above, their biases, ``nin`` of the extra input channels known
        for the whole row, and the condition.

        Per-pixel cached sampling (ul stream) then multiplies only the bottom
        kernel row per pixel: half the weights it streams from memory at every
        step, where one small batch reuses each weight only ``B`` times; the
        top half runs here as one product over the row's ``B * W`` positions.

        Args:
            x_map: the block's input, padded by one row on top and one column
                either side ``[B, H + 1, W + 2, filters]``, complete up to row
                ``row - 1``.
            c1_map: the cache of ``c1``, padded the same way, complete up to row
                ``row - 1``.
            row: an int scalar.
            a: ``[B, 1, W, C_r]``, the first ``C_r`` channels of the extra input
                along the row, or None.
            condition: ``[B, D]`` or None.
            kernels: from :meth:`sampling_kernels` (computed here if None).

        Returns:
            ``(pre1, pre2)``: ``[B, 1, W, filters]`` and ``[B, 1, W, 2 * filters]``.
        """
        kernels = kernels or self._down_right_kernels(a)
        width = x_map.shape[2] - 2
        pre = []
        for name, cache in (("conv1", x_map), ("conv2", c1_map)):
            kernel, bias = kernels[f"{name}_top"], kernels[name][1]
            window = read_window(cache, row, 0, 1, width + kernel.shape[1] - 1)
            pre.append(correlate(concat_elu(window), kernel, bias))
        if a is not None:
            pre[0] = pre[0] + pointwise(concat_elu(a), kernels["nin_row"], kernels["nin"][1])
        elif self.nin is not None:
            pre[0] = pre[0] + ops.cast(kernels["nin"][1], pre[0].dtype)
        if condition is not None:
            projected = self.condition_proj(ops.cast(condition, pre[1].dtype))
            pre[1] = pre[1] + projected[:, None, None, :]
        return tuple(pre)

    def pixel_first_step(self, x_map, row, col, x, pre1, a=None, kernels=None):
        """``c1`` at pixel ``(row, col)`` from :meth:`row_terms`' ``pre1`` there
        ``[B, 1, 1, filters]``: only what the bottom kernel row reads is computed
        (the pixels to the left in ``x_map``, ``x`` ``[B, 1, 1, filters]``), and
        ``nin`` of the last channels of the extra input ``a`` ``[B, 1, 1, C_p]``
        (or None). Down-right shift only (a down-shifted block reads pixels to
        the right)."""
        kernels = kernels or self._down_right_kernels(a, pixel=True)
        kernel = kernels["conv1_bottom"]
        c1 = pre1 + correlate(concat_elu(self._bottom_row(x_map, row, col, x, kernel)), kernel)
        return c1 if a is None else c1 + pointwise(concat_elu(a), kernels["nin_pixel"])

    def pixel_gate_step(self, c1_map, row, col, x, c1, pre2, kernels=None):
        """The block's output at pixel ``(row, col)`` given its ``c1`` and
        :meth:`row_terms`' ``pre2`` there (``c1_map`` may or may not hold ``c1``
        already: only the pixels to its left are read)."""
        kernels = kernels or self._down_right_kernels()
        kernel = kernels["conv2_bottom"]
        c2 = pre2 + correlate(concat_elu(self._bottom_row(c1_map, row, col, c1, kernel)), kernel)
        return self._gate(x, c2, None)

    def _down_right_kernels(self, a=None, pixel=False):
        """:meth:`sampling_kernels` for a call without them (tests, one-off use):
        the row's share of ``nin`` is everything but the pixel's ``a``."""
        if self.shift != "down_right":
            raise ValueError("Pixel steps need a down-right-shifted block (shift='down_right').")
        if a is None or self.nin is None:
            return self.sampling_kernels()
        total = self.nin_input_channels
        return self.sampling_kernels(row_channels=total - a.shape[-1] if pixel else a.shape[-1])

    @staticmethod
    def _bottom_row(cache, row, col, fresh, kernel):
        """The window of the bottom kernel row ``kernel`` ``[1, kw, C, F]`` at
        ``(row, col)``: the ``kw - 1`` pixels to the left from ``cache``, then
        ``fresh`` ``[B, 1, 1, C]``."""
        left = read_window(cache, row + 1, col, 1, kernel.shape[1] - 1)
        return ops.concatenate([left, ops.cast(fresh, left.dtype)], axis=2)

    @property
    def nin_input_channels(self):
        """Channels of the extra input ``a`` (None without one)."""
        return None if self.nin is None else kernel_and_bias(self.nin)[0].shape[0] // 2

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
