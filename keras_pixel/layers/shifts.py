"""Shifting feature maps by one row or column, the causal offsets shared by every family.

Built from ``ops.slice`` and ``ops.pad`` only: the gradient of a slice is a pad
and of a pad a slice, both plain copies, where a strided slice (``x[:, :-1]``)
back-propagates through the far slower ``StridedSliceGrad``.
"""

from keras import ops


def crop(x, begin, size):
    """``x[:, b1 : b1 + s1, b2 : b2 + s2]`` of a ``[B, H, W, C]`` map, as one slice.

    Args:
        x: ``[B, H, W, C]``.
        begin: ``(row, column)`` of the first kept element.
        size: ``(rows, columns)`` kept.
    """
    return ops.slice(x, (0, begin[0], begin[1], 0), (-1, size[0], size[1], -1))


def down_shift(x):
    """Moves ``[B, H, W, C]`` down one row: zeros on top, the last row dropped."""
    h, w = x.shape[1], x.shape[2]
    return ops.pad(crop(x, (0, 0), (h - 1, w)), ((0, 0), (1, 0), (0, 0), (0, 0)))


def right_shift(x):
    """Moves ``[B, H, W, C]`` right one column: zeros on the left, the last column
    dropped."""
    h, w = x.shape[1], x.shape[2]
    return ops.pad(crop(x, (0, 0), (h, w - 1)), ((0, 0), (0, 0), (1, 0), (0, 0)))
