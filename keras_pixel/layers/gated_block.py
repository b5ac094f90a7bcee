"""``GatedBlock``: one layer of the Gated PixelCNN (van den Oord et al. 2016,
*Conditional Image Generation with PixelCNN Decoders*, figure 2)."""

import keras
from keras import ops

from keras_pixel.layers.incremental import autocast, read_at, read_window, write_at, write_pixels
from keras_pixel.layers.masked_conv2d import MaskedConv2D
from keras_pixel.layers.masking import channel_groups, split_groups, validate_color_channels
from keras_pixel.layers.shifts import down_shift


def gated_activation(x, color_channels=1):
    """tanh(a) * sigmoid(b) over the two halves of every colour group of ``x``.

    ``x`` ``[..., 2F]`` holds ``color_channels`` contiguous groups; each group's
    first half feeds the tanh and its second half the sigmoid
    (:func:`~keras_pixel.layers.masking.split_groups`), so output channel ``k``
    of ``[..., F]`` stays in the colour group of its inputs.
    """
    a, b = split_groups(x, 2, color_channels)
    return ops.tanh(a) * ops.sigmoid(b)


@keras.saving.register_keras_serializable(package="keras_pixel")
class GatedBlock(keras.layers.Layer):
    """A Gated PixelCNN layer: a vertical and a horizontal stack with no blind spot.

    * Vertical stack: a ``(k//2 + 1) x k`` convolution over the current row and
      the ``k//2`` rows above (padded on top, not "same"): output row ``i`` sees
      input rows ``<= i``. Its pre-activations reach the horizontal stack only
      after a shift down by one row, through a 1x1 convolution, so the
      horizontal stack at row ``i`` sees rows ``< i`` of it.
    * Horizontal stack: a ``1 x (k//2 + 1)`` convolution over the current pixel
      and those to its left (a ``1 x k`` :class:`MaskedConv2D`, mask A in the
      first block and B after, with the R -> G -> B channel groups), a residual
      connection (not in the first block, whose input is the image) and, with
      ``return_skip=True``, a skip output (a 1x1 mask-B convolution of the gate).
    * Both stacks use the gate ``tanh(W_f * x + V_f h) * sigmoid(W_g * x + V_g h)``
      where ``h`` is the optional conditioning, projected per block: a vector
      ``[B, D]`` (a one-hot class label or any embedding) through a dense layer,
      or a spatial map ``[B, H, W, D]`` through a 1x1 convolution.

    Call: ``block((v, h), condition=None)``, or ``block(image)`` for the first
    block, with ``v``, ``h`` ``[B, H, W, F]`` (the image ``[B, H, W, C]`` in the
    first block) -> ``(v, h)`` ``[B, H, W, F]`` each, plus ``skip`` ``[B, H, W, F]``
    with ``return_skip=True``.

    Args:
        filters: F, the feature maps of each stack (divisible by 3 for RGB).
        kernel_size: odd k.
        color_channels: 1 or 3.
        first: the first block (mask A on the horizontal stack, no residual).
        return_skip: also return the skip output.
    """

    def __init__(
        self, filters, kernel_size=3, color_channels=1, first=False, return_skip=False, **kwargs
    ):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.kernel_size = int(kernel_size)
        self.color_channels = validate_color_channels(color_channels)
        self.first = bool(first)
        self.return_skip = bool(return_skip)
        if self.kernel_size % 2 == 0 or self.kernel_size < 1:
            raise ValueError(f"GatedBlock needs an odd kernel_size, got {kernel_size}.")
        channel_groups(self.filters, self.color_channels)
        k, f = self.kernel_size, self.filters
        conv = dict(dtype=self.dtype_policy)
        masked = dict(color_channels=self.color_channels, dtype=self.dtype_policy)
        self.vertical_conv = keras.layers.Conv2D(2 * f, (k // 2 + 1, k), name="vertical", **conv)
        self.vertical_to_horizontal = keras.layers.Conv2D(2 * f, 1, name="v_to_h", **conv)
        self.horizontal_conv = MaskedConv2D(
            2 * f, (1, k), mask_type="A" if self.first else "B", name="horizontal", **masked
        )
        self.horizontal_out = MaskedConv2D(f, 1, mask_type="B", name="h_out", **masked)
        self.skip_out = (
            MaskedConv2D(f, 1, mask_type="B", name="skip", **masked) if self.return_skip else None
        )
        self.vertical_condition = None
        self.horizontal_condition = None

    def build(self, inputs_shape, condition_shape=None):
        v_shape, h_shape = self._pair_shapes(inputs_shape)
        if not self.first and h_shape[-1] != self.filters:
            raise ValueError(
                f"GatedBlock(filters={self.filters}) takes stacks of {self.filters} channels "
                f"(or the image, with first=True), got {h_shape[-1]}."
            )
        self.vertical_conv.build((v_shape[0], None, None, v_shape[-1]))
        self.vertical_to_horizontal.build((*v_shape[:-1], 2 * self.filters))
        self.horizontal_conv.build(h_shape)
        self.horizontal_out.build((*h_shape[:-1], self.filters))
        if self.skip_out is not None:
            self.skip_out.build((*h_shape[:-1], self.filters))
        if condition_shape is not None:
            self._build_condition(tuple(condition_shape))

    def _pair_shapes(self, inputs_shape):
        if (
            isinstance(inputs_shape, (list, tuple))
            and inputs_shape
            and isinstance(inputs_shape[0], (list, tuple))
        ):
            return tuple(inputs_shape[0]), tuple(inputs_shape[1])
        return tuple(inputs_shape), tuple(inputs_shape)

    def _build_condition(self, shape):
        if len(shape) not in (2, 4):
            raise ValueError(
                "The conditioning must be a vector [B, D] or a spatial map [B, H, W, D], got "
                f"shape {shape}."
            )
        if len(shape) == 2:
            make = lambda name: keras.layers.Dense(  # noqa: E731
                2 * self.filters, use_bias=False, name=name, dtype=self.dtype_policy
            )
        else:
            make = lambda name: keras.layers.Conv2D(  # noqa: E731
                2 * self.filters, 1, use_bias=False, name=name, dtype=self.dtype_policy
            )
        self.vertical_condition = make("v_condition")
        self.horizontal_condition = make("h_condition")
        self.vertical_condition.build(shape)
        self.horizontal_condition.build(shape)

    def _project(self, layer, condition):
        out = layer(condition)
        return out[:, None, None, :] if len(condition.shape) == 2 else out

    def call(self, inputs, condition=None):
        if isinstance(inputs, (list, tuple)):
            v, h = inputs
        else:
            v = h = inputs
        k = self.kernel_size
        padded = ops.pad(v, ((0, 0), (k // 2, 0), (k // 2, k // 2), (0, 0)))
        v_pre = self.vertical_conv(padded)
        h_pre = self.horizontal_conv(h)
        if condition is not None:
            if self.vertical_condition is None:
                raise ValueError(
                    "This GatedBlock was built without conditioning; call it with the "
                    "condition from its first call on."
                )
            condition = ops.cast(condition, v_pre.dtype)
            v_pre = v_pre + self._project(self.vertical_condition, condition)
            h_pre = h_pre + self._project(self.horizontal_condition, condition)
        h_pre = h_pre + self.vertical_to_horizontal(down_shift(v_pre))
        v_out = gated_activation(v_pre)
        gated = gated_activation(h_pre, self.color_channels)
        h_out = self.horizontal_out(gated)
        if not self.first:
            h_out = h_out + h
        if self.return_skip:
            return v_out, h_out, self.skip_out(gated)
        return v_out, h_out

    # Cached sampling: the vertical stack once per image row, the horizontal stack
    # once per pixel, from a cache ``(v_map, h_map, v_to_h_row, condition_terms)``.

    def init_cache(self, inputs, condition=None):
        """The cache of :meth:`step`, filled from this block's full inputs (as in
        :meth:`call`).

        Returns:
            ``(v_map, h_map, v_to_h_row, condition_terms)``: the vertical stack's
            input padded for its convolution ``[B, H + k//2, W + 2(k//2), C_v]``,
            the horizontal stack's input padded for its ``1 x k`` convolution
            ``[B, H, W + 2(k//2), C_h]``, the vertical stack's contribution to the
            current row of the horizontal one ``[B, W, 2F]`` (filled when a row
            opens), and the condition's projections onto the two stacks
            ``([B, 2F], [B, 2F])``, computed here once for the whole loop (``()``
            without a condition).
        """
        if condition is not None and len(condition.shape) != 2:
            raise NotImplementedError("Cached sampling supports vector conditions [B, D] only.")
        inputs = autocast(self, inputs)
        v, h = inputs if isinstance(inputs, (list, tuple)) else (inputs, inputs)
        k = self.kernel_size
        v_map = ops.pad(v, ((0, 0), (k // 2, 0), (k // 2, k // 2), (0, 0)))
        h_map = self.horizontal_conv.cache_padding(h)
        v_to_h_row = ops.zeros((ops.shape(v)[0], v.shape[2], 2 * self.filters), v.dtype)
        terms = ()
        if condition is not None:
            condition = ops.cast(condition, v.dtype)
            terms = (self.vertical_condition(condition), self.horizontal_condition(condition))
        return v_map, h_map, v_to_h_row, terms

    def step(self, cache, inputs, position, condition=None):
        """The block at one pixel: where ``position`` opens row ``i``, first the
        vertical stack on row ``i - 1`` (complete by then), then the horizontal
        stack at the pixel.

        Args:
            cache: from :meth:`init_cache`.
            inputs: ``(v_row, h)``: the vertical input on row ``i - 1``
                ``[B, W, C_v]`` (read only where the row opens) and the horizontal
                input at the pixel ``[B, C_h]``; for the first block the whole
                (preprocessed) image ``[B, H, W, C]``.
            position: a :class:`~keras_pixel.layers.Position`.
            condition: ``[B, D]`` or None: its projections were computed by
                :meth:`init_cache`, which must have had it too.

        Returns:
            ``((v_row_out [B, W, F], h_out [B, F]), cache)``, plus ``skip [B, F]``
            with ``return_skip``; ``v_row_out`` is the vertical output on row
            ``i - 1`` where the row opens, zeros elsewhere.
        """
        inputs = autocast(self, inputs)
        if (condition is not None) != bool(cache[3]):
            raise ValueError(
                "GatedBlock.step takes a condition exactly when init_cache had one "
                "(its projections are computed there)."
            )
        i, j = position.row, position.column
        if self.first:
            width = inputs.shape[2]
            v_row = read_window(inputs, ops.maximum(i - 1, 0), 0, 1, width)[:, 0]
            h = inputs
        else:
            v_row, h = inputs
        v_out, cache = ops.cond(
            position.first_of_row,
            lambda: self._vertical_row(cache, v_row, i - 1),
            lambda: (self._blank_row(v_row), tuple(cache)),
        )
        v_map, h_map, v_to_h_row, terms = cache
        offsets = self.horizontal_conv.cache_offsets
        if self.first:
            h_map = write_pixels(h_map, h, i, j, offsets)
        else:
            h_map = write_at(h_map, h, i + offsets[0], j + offsets[1])
        h_pre = self.horizontal_conv.output_at(h_map, i, j) + read_at(v_to_h_row[:, None], 0, j)
        if terms:
            h_pre = h_pre + terms[1]
        gated = gated_activation(h_pre, self.color_channels)
        h_out = self.horizontal_out.pointwise(gated)
        if not self.first:
            h_out = h_out + h
        outputs = (v_out, h_out)
        if self.return_skip:
            outputs += (self.skip_out.pointwise(gated),)
        return outputs, (v_map, h_map, v_to_h_row, terms)

    def _blank_row(self, v_row):
        return ops.zeros((ops.shape(v_row)[0], v_row.shape[1], self.filters), self.compute_dtype)

    def _vertical_row(self, cache, v_row, r):
        """The vertical stack on image row ``r`` (``-1`` before the first row,
        where the shifted stack is zero) from its input there ``[B, W, C_v]`` ->
        ``(v_out_row [B, W, F], cache)`` with ``v_row`` stored and the row's
        contribution to the horizontal stack of row ``r + 1`` ready."""
        v_map, h_map, _, terms = cache
        k = self.kernel_size
        row = ops.maximum(r, 0)
        v_map = ops.slice_update(v_map, (0, row + k // 2, k // 2, 0), v_row[:, None])
        window = read_window(v_map, row, 0, k // 2 + 1, v_map.shape[2])
        v_pre = self.vertical_conv(window)[:, 0]
        if terms:
            v_pre = v_pre + terms[0][:, None]
        shifted = v_pre * ops.cast(r >= 0, v_pre.dtype)
        v_to_h_row = self.vertical_to_horizontal(shifted[:, None])[:, 0]
        return gated_activation(v_pre), (v_map, h_map, v_to_h_row, terms)

    def compute_output_shape(self, inputs_shape, condition_shape=None):
        _, h_shape = self._pair_shapes(inputs_shape)
        out = (*h_shape[:-1], self.filters)
        return (out, out, out) if self.return_skip else (out, out)

    def get_config(self):
        config = super().get_config()
        config.update(
            filters=self.filters,
            kernel_size=self.kernel_size,
            color_channels=self.color_channels,
            first=self.first,
            return_skip=self.return_skip,
        )
        return config
