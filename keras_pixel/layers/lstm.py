"""The PixelRNN layers (van den Oord, Kalchbrenner, Kavukcuoglu 2016, section 3):
``RowLSTM`` and ``DiagonalBiLSTM``.

Both compute their input-to-state part for the whole image at once with a masked
convolution and run only the state-to-state recurrence in a compiled loop
(``tf.scan``, XLA-compatible) that handles a whole row (Row LSTM) or a
whole column of the skewed map (Diagonal BiLSTM) per step.
"""

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from keras_pixel.layers.incremental import autocast, conv_at, pointwise, read_at, write_at
from keras_pixel.layers.masked_conv2d import MaskedConv2D
from keras_pixel.layers.masking import channel_groups, split_groups, validate_color_channels
from keras_pixel.layers.shifts import crop, down_shift


def lstm_update(gates, cell, color_channels):
    """One LSTM update from pre-activations ``[..., 4 * units]`` and the previous cell.

    The gates o, f, i (sigmoid) and g (tanh) are read colour group by colour
    group (:func:`~keras_pixel.layers.masking.split_groups`), so hidden unit
    ``k`` stays in the colour group of its pre-activations.

    Returns:
        ``(hidden, cell)``, each ``[..., units]``.
    """
    o, f, i, g = split_groups(gates, 4, color_channels)
    cell = ops.sigmoid(f) * cell + ops.sigmoid(i) * ops.tanh(g)
    return ops.sigmoid(o) * ops.tanh(cell), cell


def skew(x):
    """Shifts row ``i`` of ``[B, H, W, C]`` right by ``i`` -> ``[B, H, W + H - 1, C]``.

    Pads, reshapes and plain slices only (no strided slice: see
    :mod:`keras_pixel.layers.shifts`), as :func:`unskew`."""
    _, height, width, channels = x.shape
    batch = ops.shape(x)[0]
    x = ops.pad(x, ((0, 0), (0, 0), (0, height), (0, 0)))
    x = ops.reshape(x, (batch, height * (width + height), channels))
    x = ops.slice(x, (0, 0, 0), (-1, height * (width + height - 1), -1))
    return ops.reshape(x, (batch, height, width + height - 1, channels))


def unskew(x, width):
    """Inverse of :func:`skew`: ``[B, H, W + H - 1, C]`` -> ``[B, H, W, C]``."""
    _, height, skewed, channels = x.shape
    batch = ops.shape(x)[0]
    x = ops.reshape(x, (batch, height * skewed, channels))
    x = ops.pad(x, ((0, 0), (0, height), (0, 0)))
    x = ops.reshape(x, (batch, height, skewed + 1, channels))
    return crop(x, (0, 0), (height, width))


def _check_known(shape, name, layout, unknown_axis):
    """Raises ``ValueError`` unless ``shape`` has rank 4 and every size but
    ``unknown_axis`` (the batch) is known."""
    sizes = tuple(shape)
    if len(sizes) != 4 or None in sizes[:unknown_axis] + sizes[unknown_axis + 1 :]:
        raise ValueError(f"{name} takes {layout} of known size (but the batch), got {shape}.")


def _skewed_pixel(height, width, mirrored):
    """``[W + H - 1, H]``: the pixel ``i * W + j`` at each column and slot (bottom
    row first) of the skewed map, ``H * W`` where the slot is padding; with
    ``mirrored``, of the map mirrored left to right."""
    column = np.arange(width + height - 1)[:, None]
    row = height - 1 - np.arange(height)[None, :]
    col = column - row
    inside = (col >= 0) & (col < width)
    col = width - 1 - col if mirrored else col
    return np.where(inside, row * width + col, height * width).astype("int32")


def skewed_columns(x, mirrored=False):
    """The columns of :func:`skew` ``(x)``, each bottom row first, as the steps of a
    scan: ``[B, H, W, C]`` -> ``[W + H - 1, B, H, C]``; with ``mirrored``, those of
    the map mirrored left to right (the right-to-left direction's).

    That is ``flip(transpose(skew(x), (2, 0, 1, 3)), axis=2)``, as one gather
    (and a zero pixel appended for the padding): the pad, slice, transpose and
    flip it replaces each copied the whole map, forward and backward. Every
    pixel lands in exactly one slot, so the gradient is :func:`unskewed_columns`
    of the incoming one: a gather too, not the scatter-add (``UnsortedSegmentSum``)
    of a gather's generic gradient (a tenth of a Diagonal BiLSTM training step's
    op time on CPU, though off its critical path)."""
    _check_known(x.shape, "skewed_columns", "[batch, height, width, channels]", 0)
    width = x.shape[2]

    @tf.custom_gradient
    def columns(x):
        y = _gather_columns(x, mirrored)
        # The incoming gradient can arrive without a static shape (a slice's
        # gradient is a pad by traced amounts); the gathers need it, so both
        # maps' gradients reshape it to the forward output's.
        return y, lambda dy: _gather_pixels(
            ops.reshape(dy, (y.shape[0], -1, *y.shape[2:])), width, mirrored
        )

    return columns(ops.convert_to_tensor(x))


def unskewed_columns(columns, width, mirrored=False):
    """Inverse of :func:`skewed_columns`: ``[W + H - 1, B, H, C]`` -> ``[B, H, W, C]``,
    as one gather. Its gradient is :func:`skewed_columns` of the incoming one
    (zero in the padding slots, which no pixel reads)."""
    _check_known(columns.shape, "unskewed_columns", "[W + H - 1, batch, height, channels]", 1)
    steps, _, height, _ = columns.shape
    width = int(width)
    if steps != width + height - 1:
        raise ValueError(
            f"unskewed_columns: {steps} columns cannot come from a map {height} high and "
            f"{width} wide, which skews to {width + height - 1} columns."
        )

    @tf.custom_gradient
    def pixels(columns):
        y = _gather_pixels(columns, width, mirrored)
        return y, lambda dy: _gather_columns(ops.reshape(dy, (-1, *y.shape[1:])), mirrored)

    return pixels(ops.convert_to_tensor(columns))


def _gather_columns(x, mirrored):
    """:func:`skewed_columns` without its gradient: the gather itself."""
    _, height, width, channels = x.shape
    batch = ops.shape(x)[0]
    pixels = ops.reshape(x, (batch, height * width, channels))
    pixels = ops.reshape(ops.pad(pixels, ((0, 0), (0, 1), (0, 0))), (-1, channels))
    source = ops.convert_to_tensor(_skewed_pixel(height, width, mirrored))[:, None, :]
    images = ops.arange(batch, dtype="int32")[None, :, None] * (height * width + 1)
    return ops.take(pixels, images + source, axis=0)


def _gather_pixels(columns, width, mirrored):
    """:func:`unskewed_columns` without its gradient: the gather itself."""
    _, _, height, channels = columns.shape
    batch = ops.shape(columns)[1]
    row = np.arange(height)[:, None]
    col = np.arange(width)[None, :]
    column = row + (width - 1 - col if mirrored else col)
    slot = np.broadcast_to(height - 1 - row, column.shape)
    column, slot = (ops.convert_to_tensor(a.astype("int32"))[None] for a in (column, slot))
    images = ops.arange(batch, dtype="int32")[:, None, None]
    return ops.take(
        ops.reshape(columns, (-1, channels)), (column * batch + images) * height + slot, axis=0
    )


class _CausalLSTMBase(keras.layers.Layer):
    def __init__(self, units, color_channels=1, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)
        self.color_channels = validate_color_channels(color_channels)
        if self.units < 1:
            raise ValueError(f"units must be a positive integer, got {units}.")
        channel_groups(self.units, self.color_channels)

    def _check_input(self, input_shape):
        if len(input_shape) != 4 or None in tuple(input_shape)[1:]:
            raise ValueError(
                f"{type(self).__name__} takes [batch, height, width, channels] maps of known "
                f"size, got {input_shape}."
            )
        channel_groups(input_shape[-1], self.color_channels)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)

    def get_config(self):
        config = super().get_config()
        config.update(units=self.units, color_channels=self.color_channels)
        return config


@keras.saving.register_keras_serializable(package="keras_pixel")
class RowLSTM(_CausalLSTMBase):
    """Row LSTM: an LSTM that processes the image one row at a time, top to bottom.

    The input-to-state part is a mask-B ``1 x k`` :class:`MaskedConv2D` over the
    whole image (R -> G -> B groups); the state-to-state part is a ``1 x k``
    convolution of the previous row's hidden state. Gates i, f, o use a sigmoid
    and the cell input g a tanh. The output at ``(i, j)`` sees a triangle above
    it (row ``i - r`` up to ``r + k//2 - 1`` columns either side) and the
    current row up to ``k//2`` columns left: it misses part of the context.

    Input ``[B, H, W, C_in]`` -> hidden states ``[B, H, W, units]``.

    Args:
        units: hidden units (divisible by 3 for RGB).
        kernel_size: odd k of both 1 x k convolutions.
        color_channels: 1 or 3.
    """

    def __init__(self, units, kernel_size=3, color_channels=1, **kwargs):
        super().__init__(units, color_channels, **kwargs)
        self.kernel_size = int(kernel_size)
        if self.kernel_size % 2 == 0:
            raise ValueError(f"RowLSTM needs an odd kernel_size, got {kernel_size}.")
        self.input_to_state = MaskedConv2D(
            4 * self.units,
            (1, self.kernel_size),
            mask_type="B",
            color_channels=self.color_channels,
            name="input_to_state",
            dtype=self.dtype_policy,
        )

    def build(self, input_shape):
        self._check_input(input_shape)
        self.input_to_state.build(input_shape)
        self.state_kernel = self.add_weight(
            name="state_kernel",
            shape=(self.kernel_size, self.units, 4 * self.units),
            initializer="glorot_uniform",
        )

    def call(self, inputs):
        return self._scan(inputs)[0]

    def _scan(self, inputs):
        """-> hidden and cell states of every pixel, ``[B, H, W, units]`` each."""
        gates_in = ops.transpose(self.input_to_state(inputs), (1, 0, 2, 3))
        batch, width = ops.shape(inputs)[0], inputs.shape[2]
        zeros = ops.zeros((batch, width, self.units), dtype=gates_in.dtype)
        kernel = ops.cast(self.state_kernel, gates_in.dtype)

        def step(carry, row_gates):
            hidden, cell = carry
            gates = row_gates + ops.conv(hidden, kernel, padding="same")
            return lstm_update(gates, cell, self.color_channels)

        hidden, cells = tf.scan(step, gates_in, initializer=(zeros, zeros))
        return ops.transpose(hidden, (1, 0, 2, 3)), ops.transpose(cells, (1, 0, 2, 3))

    def init_cache(self, inputs, condition=None):
        """The cache of :meth:`step` for inputs ``[B, H, W, C_in]``: the input map
        padded for the ``1 x k`` input-to-state convolution, and the hidden and
        cell states of every pixel with a zero row above (and zero columns either
        side of the hidden map, for the state-to-state convolution)."""
        del condition
        inputs = autocast(self, inputs)
        side = self.kernel_size // 2
        hidden, cells = self._scan(inputs)
        return (
            self.input_to_state.cache_padding(inputs),
            ops.pad(hidden, ((0, 0), (1, 0), (side, side), (0, 0))),
            ops.pad(cells, ((0, 0), (1, 0), (0, 0), (0, 0))),
        )

    def step(self, cache, inputs, position, condition=None):
        """The layer at one pixel only: its input there ``[B, C_in]``, the row
        above from the cache -> ``(hidden [B, units], cache)``."""
        del condition
        x, i, j = autocast(self, inputs), position.row, position.column
        inputs, hidden, cells = cache
        side = self.input_to_state.cache_offsets[1]
        gates, inputs = self.input_to_state.step(inputs, x, position)
        kernel = ops.cast(self.state_kernel, hidden.dtype)[None]
        gates = gates + conv_at(hidden, kernel, i, j)
        h, c = lstm_update(gates, read_at(cells, i, j), self.color_channels)
        hidden = write_at(hidden, h, i + 1, j + side)
        cells = write_at(cells, c, i + 1, j)
        return h, (inputs, hidden, cells)

    def get_config(self):
        config = super().get_config()
        config["kernel_size"] = self.kernel_size
        return config


@keras.saving.register_keras_serializable(package="keras_pixel")
class DiagonalBiLSTM(_CausalLSTMBase):
    """Diagonal BiLSTM: two LSTMs that scan the image along its diagonals.

    Each direction skews its input map (row ``i`` shifted right by ``i``), takes
    a mask-B 1x1 input-to-state convolution, runs an LSTM column by column over
    the skewed map whose state-to-state part is a 2 x 1 convolution over
    ``(i - 1, j)`` and ``(i, j)`` of the previous column (padded on top, not
    "same"), and unskews. The right-to-left direction runs on the mirrored map;
    its output is shifted down one row before the two are added, so no pixel sees
    the future, and together they see the entire past: the output at ``(i, j)``
    depends on every earlier pixel.

    Input ``[B, H, W, C_in]`` -> ``[B, H, W, units]``.

    Args:
        units: hidden units of each direction (divisible by 3 for RGB).
        color_channels: 1 or 3.
    """

    def __init__(self, units, color_channels=1, **kwargs):
        super().__init__(units, color_channels, **kwargs)
        conv = dict(mask_type="B", color_channels=self.color_channels, dtype=self.dtype_policy)
        self.forward_input = MaskedConv2D(4 * self.units, 1, name="forward_input", **conv)
        self.backward_input = MaskedConv2D(4 * self.units, 1, name="backward_input", **conv)

    def build(self, input_shape):
        self._check_input(input_shape)
        self.forward_input.build(input_shape)
        self.backward_input.build(input_shape)
        shape = (2, self.units, 4 * self.units)
        self.forward_state_kernel = self.add_weight(
            name="forward_state_kernel", shape=shape, initializer="glorot_uniform"
        )
        self.backward_state_kernel = self.add_weight(
            name="backward_state_kernel", shape=shape, initializer="glorot_uniform"
        )

    def _direction(self, inputs, input_conv, state_kernel, mirrored):
        """One direction's ``(hidden, cells)``, each ``[B, H, W, units]`` in image
        coordinates; ``mirrored``: the right-to-left direction (not yet shifted
        down). Its input-to-state convolution is 1x1, so it is taken on the map
        itself and :func:`skewed_columns` mirrors the result."""
        height, width = inputs.shape[1], inputs.shape[2]
        # Each column of the skewed map is stored bottom row first. Then the 2 x 1
        # state-to-state convolution over (i - 1, j) and (i, j) is a "same"
        # convolution of width 2 (TensorFlow pads an even kernel after, which is
        # above once the rows are reversed): no zero tap, and no slice, pad or
        # reshape inside the loop, whose gradient would need the batch size as an
        # XLA compile-time constant.
        gates_in = skewed_columns(input_conv(inputs), mirrored)
        zeros = ops.zeros((ops.shape(inputs)[0], height, self.units), dtype=gates_in.dtype)
        kernel = ops.flip(ops.cast(state_kernel, gates_in.dtype), axis=0)

        def step(carry, column_gates):
            hidden, cell = carry
            gates = column_gates + ops.conv(hidden, kernel, padding="same")
            return lstm_update(gates, cell, self.color_channels)

        hidden, cells = tf.scan(step, gates_in, initializer=(zeros, zeros))
        return tuple(unskewed_columns(x, width, mirrored) for x in (hidden, cells))

    def _both_directions(self, inputs):
        """-> ``((hidden, cells) left-to-right, (hidden, cells) right-to-left)``, each
        ``[B, H, W, units]`` in image coordinates (the second not yet shifted down)."""
        left = self._direction(inputs, self.forward_input, self.forward_state_kernel, False)
        right = self._direction(inputs, self.backward_input, self.backward_state_kernel, True)
        return left, right

    def call(self, inputs):
        (left, _), (right, _) = self._both_directions(inputs)
        return left + down_shift(right)

    # Cached sampling. Left-to-right, the state at (i, j) comes from (i - 1, j)
    # and (i, j - 1): one step per pixel. Right-to-left it comes from (i - 1, j)
    # and (i, j + 1), so row i - 1 can only be run once it is complete: at the
    # first subpixel of row i, right to left over the row, and that row is all
    # the output at row i reads of it (it is shifted down one row).

    def init_cache(self, inputs, condition=None):
        """The cache of :meth:`step` for inputs ``[B, H, W, C_in]``: the input map
        and the hidden and cell states of both directions, with zero rows and
        columns where the recurrences start:
        ``(inputs, left_hidden [B, H+1, W+1, U], left_cells [B, H, W+1, U],
        right_hidden [B, H+1, W+1, U], right_cells [B, H, W+1, U])``."""
        del condition
        inputs = autocast(self, inputs)
        (lh, lc), (rh, rc) = self._both_directions(inputs)
        return (
            inputs,
            ops.pad(lh, ((0, 0), (1, 0), (1, 0), (0, 0))),
            ops.pad(lc, ((0, 0), (0, 0), (1, 0), (0, 0))),
            ops.pad(rh, ((0, 0), (1, 0), (0, 1), (0, 0))),
            ops.pad(rc, ((0, 0), (0, 0), (0, 1), (0, 0))),
        )

    def _right_to_left_row(self, cache, r):
        """Runs the right-to-left LSTM over the completed row ``r``."""
        inputs, lh, lc, rh, rc = cache
        kernel = ops.cast(self.backward_state_kernel, rh.dtype)

        def body(j, rh, rc):
            gates = (
                self.backward_input.pointwise(read_at(inputs, r, j))
                + pointwise(read_at(rh, r, j), kernel[0])
                + pointwise(read_at(rh, r + 1, j + 1), kernel[1])
            )
            h, c = lstm_update(gates, read_at(rc, r, j + 1), self.color_channels)
            return j - 1, write_at(rh, h, r + 1, j), write_at(rc, c, r, j)

        width = inputs.shape[2]
        _, rh, rc = ops.while_loop(lambda j, *_: j >= 0, body, (width - 1, rh, rc))
        return inputs, lh, lc, rh, rc

    def step(self, cache, inputs, position, condition=None):
        """The layer at one pixel only.

        Args:
            cache: from :meth:`init_cache`.
            inputs: the layer's input at the pixel, ``[B, C_in]``.
            position: a :class:`~keras_pixel.layers.Position`; where it opens
                row ``i``, the right-to-left pass first runs over row ``i - 1``.
            condition: unused.

        Returns:
            ``(output [B, units], cache)``.
        """
        del condition
        x, i, j = autocast(self, inputs), position.row, position.column
        cache = ops.cond(
            ops.logical_and(position.first_of_row, i > 0),
            lambda: self._right_to_left_row(cache, i - 1),
            lambda: tuple(cache),
        )
        inputs, lh, lc, rh, rc = cache
        inputs = write_at(inputs, x, i, j)
        kernel = ops.cast(self.forward_state_kernel, lh.dtype)
        gates = (
            self.forward_input.pointwise(x)
            + pointwise(read_at(lh, i, j + 1), kernel[0])
            + pointwise(read_at(lh, i + 1, j), kernel[1])
        )
        h, c = lstm_update(gates, read_at(lc, i, j), self.color_channels)
        lh = write_at(lh, h, i + 1, j + 1)
        lc = write_at(lc, c, i, j + 1)
        return h + read_at(rh, i, j), (inputs, lh, lc, rh, rc)
