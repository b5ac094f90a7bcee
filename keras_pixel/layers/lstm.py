"""The PixelRNN layers (van den Oord, Kalchbrenner, Kavukcuoglu 2016, section 3):
``RowLSTM`` and ``DiagonalBiLSTM``.

Both compute their input-to-state part for the whole image at once with a masked
convolution and run only the state-to-state recurrence in a compiled loop
(``tf.scan``, XLA-compatible) that handles a whole row (Row LSTM) or a
whole column of the skewed map (Diagonal BiLSTM) per step.
"""

import keras
import tensorflow as tf
from keras import ops

from keras_pixel.layers.masked_conv2d import MaskedConv2D
from keras_pixel.layers.masking import channel_groups, split_groups, validate_color_channels


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
    """Shifts row ``i`` of ``[B, H, W, C]`` right by ``i`` -> ``[B, H, W + H - 1, C]``."""
    _, height, width, channels = x.shape
    batch = ops.shape(x)[0]
    x = ops.pad(x, ((0, 0), (0, 0), (0, height), (0, 0)))
    x = ops.reshape(x, (batch, height * (width + height), channels))
    x = x[:, : height * (width + height - 1)]
    return ops.reshape(x, (batch, height, width + height - 1, channels))


def unskew(x, width):
    """Inverse of :func:`skew`: ``[B, H, W + H - 1, C]`` -> ``[B, H, W, C]``."""
    _, height, skewed, channels = x.shape
    batch = ops.shape(x)[0]
    x = ops.reshape(x, (batch, height * skewed, channels))
    x = ops.pad(x, ((0, 0), (0, height), (0, 0)))
    x = ops.reshape(x, (batch, height, skewed + 1, channels))
    return x[:, :, :width]


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
        gates_in = ops.transpose(self.input_to_state(inputs), (1, 0, 2, 3))
        batch, width = ops.shape(inputs)[0], inputs.shape[2]
        zeros = ops.zeros((batch, width, self.units), dtype=gates_in.dtype)
        kernel = ops.cast(self.state_kernel, gates_in.dtype)

        def step(carry, row_gates):
            hidden, cell = carry
            gates = row_gates + ops.conv(hidden, kernel, padding="same")
            return lstm_update(gates, cell, self.color_channels)

        rows, _ = tf.scan(step, gates_in, initializer=(zeros, zeros))
        return ops.transpose(rows, (1, 0, 2, 3))

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

    def _direction(self, inputs, input_conv, state_kernel):
        width = inputs.shape[2]
        gates_in = skew(input_conv(inputs))
        gates_in = ops.transpose(gates_in, (2, 0, 1, 3))
        batch, height = ops.shape(inputs)[0], inputs.shape[1]
        zeros = ops.zeros((batch, height, self.units), dtype=gates_in.dtype)
        kernel = ops.cast(state_kernel, gates_in.dtype)
        # The 2 x 1 state-to-state convolution over (i - 1, j) and (i, j) as a
        # "same" convolution of width 3 whose tap on row i + 1 is zero: slices,
        # pads or reshapes inside the loop would need the batch size as an XLA
        # compile-time constant in the loop's gradient.
        kernel = ops.concatenate([kernel, ops.zeros_like(kernel[:1])], axis=0)

        def step(carry, column_gates):
            hidden, cell = carry
            gates = column_gates + ops.conv(hidden, kernel, padding="same")
            return lstm_update(gates, cell, self.color_channels)

        columns, _ = tf.scan(step, gates_in, initializer=(zeros, zeros))
        return unskew(ops.transpose(columns, (1, 2, 0, 3)), width)

    def call(self, inputs):
        left = self._direction(inputs, self.forward_input, self.forward_state_kernel)
        right = self._direction(
            ops.flip(inputs, axis=2), self.backward_input, self.backward_state_kernel
        )
        right = ops.flip(right, axis=2)
        right = ops.pad(right, ((0, 0), (1, 0), (0, 0), (0, 0)))[:, :-1]
        return left + right
