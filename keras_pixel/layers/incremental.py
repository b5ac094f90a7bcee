"""The incremental protocol of cached sampling, and its primitives.

A causal convolution's output at pixel ``(i, j)`` depends on a window of its
input around (and before) ``(i, j)``. Cached sampling (Ramachandran et al. 2017)
keeps every layer's input map, writes the new values at ``(i, j)`` after each
drawn subpixel and evaluates each layer only there.

**The protocol.** Every layer that takes part in cached sampling has two
methods besides ``call``:

* ``init_cache(inputs, condition=None)``: the layer's cache, filled from its
  full inputs (as ``call`` gets them): a tensor or a tuple of tensors (``()``
  for a layer that needs none, a 1x1 convolution say);
* ``step(cache, inputs, position, condition=None)`` -> ``(outputs, cache)``:
  the layer's outputs at one :class:`Position` only, from its inputs there
  (``[B, C_in]`` for one pixel's features) and its cache, which comes back
  updated with what the step computed.

A model writes its layer stack once (``network``); the model base runs it three
ways: forward, filling the caches, and one sampling step (see
``keras_pixel.models.base``). The functions below are what the steps are
made of: read a window (``conv_at``), apply a 1x1 layer to one pixel's
features (``pointwise``), write one pixel into a map (``write_at``). They run
inside a compiled (XLA) loop, where ``write_at`` updates the map in place,
and compute in the dtype of the maps they read (the layers' compute dtype:
bfloat16 under a ``mixed_bfloat16`` policy, as the layers' calls do), the
kernels cast to it.
"""

import dataclasses
from typing import Any

import keras
from keras import ops


@dataclasses.dataclass(frozen=True)
class Position:
    """Where a sampling step is: the subpixel to draw next.

    Unpacks as ``row, column, channel = position``.

    Attributes:
        row: int scalar (a tensor inside the compiled loop).
        column: int scalar.
        channel: int scalar (0 for a family that steps once per pixel).
        first_of_row: bool scalar, true where the step opens its row (column 0,
            channel 0; computed when not given). Layers that work a whole row
            at a time (a vertical stack, a right-to-left LSTM) run there over
            the row above, complete by then.
    """

    row: Any
    column: Any
    channel: Any = 0
    first_of_row: Any = None

    def __post_init__(self):
        if self.first_of_row is None:
            first = ops.logical_and(ops.equal(self.column, 0), ops.equal(self.channel, 0))
            object.__setattr__(self, "first_of_row", first)

    def __iter__(self):
        return iter((self.row, self.column, self.channel))

    @classmethod
    def from_index(cls, t, width, channels):
        """The position of raster index ``t = (row * W + column) * C + channel``."""
        return cls(t // (width * channels), (t // channels) % width, t % channels)


def autocast(layer, structure):
    """The floating tensors of ``structure`` (None allowed) in ``layer``'s compute
    dtype: what ``Layer.__call__`` does to a call's inputs, done for
    ``init_cache`` and ``step``, so that a layer under a mixed-precision policy
    steps on float32 inputs as its call does."""

    def cast(x):
        if x is None or not keras.backend.is_float_dtype(keras.backend.standardize_dtype(x.dtype)):
            return x
        return ops.cast(x, layer.compute_dtype)

    return keras.tree.map_structure(cast, structure)


def effective_kernel(layer):
    """The kernel a layer convolves with: its ``effective_kernel`` property where
    it has one (masked by :class:`MaskedConv2D`, normalized by
    :class:`WeightNormalization`), else its ``kernel``."""
    kernel = getattr(layer, "effective_kernel", None)
    return layer.kernel if kernel is None else kernel


def kernel_and_bias(layer):
    """:func:`effective_kernel` and the layer's bias (None without one)."""
    return effective_kernel(layer), getattr(layer, "bias", None)


def write_at(cache, values, i, j):
    """Returns ``cache`` ``[B, H, W, C]`` with ``values`` ``[B, C]`` written at ``(i, j)``."""
    return write_window(cache, values[:, None, None, :], i, j)


def write_pixels(cache, pixels, i, j, offsets=(0, 0)):
    """Writes image pixel ``(i, j)`` and the pixel before it (raster order) from
    ``pixels`` ``[B, H, W, C]`` into ``cache``, whose pixel ``(0, 0)`` sits at
    ``offsets``.

    The cache of a layer that reads the image must see every drawn subpixel: the
    channels of ``(i, j)`` drawn so far, and the last channel of the previous
    pixel, drawn after that pixel's own step.
    """
    width = pixels.shape[2]
    previous = ops.maximum(i * width + j - 1, 0)
    for r, c in ((previous // width, previous % width), (i, j)):
        cache = write_at(cache, read_at(pixels, r, c), r + offsets[0], c + offsets[1])
    return cache


def read_at(cache, i, j):
    """``cache[:, i, j]`` of a ``[B, H, W, C]`` map -> ``[B, C]``."""
    return read_window(cache, i, j, 1, 1)[:, 0, 0]


def conv_at(padded, kernel, i, j, bias=None, dilation=(1, 1)):
    """The correlation of ``kernel`` with the window of ``padded`` whose top-left
    corner is ``(i, j)``: the output of a "valid" convolution of ``padded`` at ``(i, j)``.

    Args:
        padded: ``[B, H', W', C_in]``, the layer's input map padded so that the
            window of output ``(i, j)`` starts at ``(i, j)``.
        kernel: ``[kh, kw, C_in, F]`` (masked already, for a masked layer).
        i: row, an int scalar (a tensor inside a loop).
        j: column, an int scalar.
        bias: ``[F]`` or None.
        dilation: ``(dh, dw)``.

    Returns:
        ``[B, F]``.
    """
    kh, kw, c_in, _ = kernel.shape
    dh, dw = dilation
    patch = read_window(padded, i, j, (kh - 1) * dh + 1, (kw - 1) * dw + 1)
    if dh > 1 or dw > 1:
        patch = patch[:, ::dh, ::dw]
    return _add_bias(ops.einsum("bhwc,hwcf->bf", patch, ops.cast(kernel, patch.dtype)), bias)


def _add_bias(out, bias):
    return out if bias is None else out + ops.cast(bias, out.dtype)


def pointwise(x, kernel, bias=None):
    """A 1x1 convolution or dense layer on one pixel's features.

    Args:
        x: ``[B, C_in]``.
        kernel: ``[1, 1, C_in, F]`` or ``[C_in, F]``.
        bias: ``[F]`` or None.

    Returns:
        ``[B, F]``.
    """
    kernel = ops.reshape(kernel, kernel.shape[-2:])
    return _add_bias(ops.matmul(x, ops.cast(kernel, x.dtype)), bias)


def conv_window(kernel, bias, padded, row, col, width, strides=1, transform=None):
    """``width`` outputs of a convolution along one output row, from the window
    of its padded input map that they read.

    The window starts at ``(row * strides, col * strides)`` of ``padded`` and is
    ``kh`` rows high; it is convolved "valid" with ``kernel``. Used row by row
    (``width`` = the map's width) or pixel by pixel (``width`` = 1).

    Args:
        kernel: ``[kh, kw, C_in, F]`` (the layer's :func:`effective_kernel`).
        bias: ``[F]`` or None.
        padded: ``[B, H', W', C_in]``.
        row: the first output's row, an int scalar.
        col: the first output's column, an int scalar.
        width: static int, outputs along the row.
        strides: the layer's stride.
        transform: applied to the window before the convolution (for example the
            activation that precedes the layer, which must map 0 to 0).

    Returns:
        ``[B, 1, width, F]``.
    """
    kh, kw = kernel.shape[:2]
    window = read_window(padded, row * strides, col * strides, kh, (width - 1) * strides + kw)
    window = window if transform is None else transform(window)
    return correlate(window, kernel, bias, strides)


def call_with_kernel(layer, inputs, kernel, bias):
    """``layer(inputs)`` with ``kernel`` and ``bias`` in place of its variables
    (of the layer it wraps, for a ``WeightNormalization``): a layer whose
    output is not one window per position (a transposed convolution) applied
    with kernels prepared once, outside a sampling loop."""
    inner = getattr(layer, "layer", layer)
    # The layer's own __call__ (not stateless_call, which skips it) casts the
    # kernel to its compute dtype under a mixed-precision policy.
    with keras.StatelessScope(state_mapping=[(inner.kernel, kernel), (inner.bias, bias)]):
        return inner(inputs)


def correlate(window, kernel, bias=None, strides=1):
    """A "valid" convolution of ``window`` ``[B, kh, w, C_in]`` with ``kernel``
    ``[kh, kw, C_in, F]``: ``[B, 1, (w - kw) // strides + 1, F]``."""
    kernel = ops.cast(kernel, window.dtype)
    if window.shape[2] == kernel.shape[1]:
        out = ops.einsum("bhwc,hwcf->bf", window, kernel)[:, None, None]
    else:
        out = ops.conv(window, kernel, strides=strides, padding="valid")
    return _add_bias(out, bias)


def shifted_window(cache, fresh, row, col, kernel_width):
    """The window that a down- or down-right-shifted convolution (kernel height
    2) reads for ``w`` outputs on one row, with this step's values overlaid.

    ``cache`` is a map padded by one row on top and one column either side; the
    outputs sit at padded row ``row + 1`` from padded column ``col + 1`` on, and
    ``fresh`` ``[B, 1, w, C]`` holds the map's values there, computed in this
    step and not yet written (cached sampling writes after the fact, so that
    its steps can run in branches that only read the maps).

    Returns:
        ``[B, 2, w + kernel_width - 1, C]``: rows ``row, row + 1`` from column
        ``col`` on, whose bottom row holds ``fresh`` from its column 1 on.
    """
    width = fresh.shape[2]
    window = read_window(cache, row, col, 2, width + kernel_width - 1)
    bottom = window[:, 1:]
    fresh = ops.cast(fresh, window.dtype)
    bottom = ops.concatenate([bottom[:, :, :1], fresh, bottom[:, :, 1 + width :]], axis=2)
    return ops.concatenate([window[:, :1], bottom], axis=1)


def write_window(cache, values, row, col):
    """Returns ``cache`` with ``values`` ``[B, h, w, C]`` written from ``(row, col)`` on."""
    return ops.slice_update(cache, (0, row, col, 0), ops.cast(values, cache.dtype))


def read_window(cache, row, col, height, width):
    """``cache[:, row : row + height, col : col + width]`` with dynamic ``row, col``.

    The slice's size is spelled out, batch included (not -1): XLA then reads the
    window in place, where a -1 makes it pad a copy of the whole map first.
    """
    size = (ops.shape(cache)[0], height, width, cache.shape[-1])
    return ops.slice(cache, (0, row, col, 0), size)
