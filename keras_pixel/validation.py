"""Checks on what users pass in, with errors that name the problem."""

import numbers

import numpy as np
import tensorflow as tf


def normalize_image_shape(image_shape):
    """Returns ``(H, W, C)`` as ints, or raises ``ValueError``."""
    try:
        shape = tuple(int(d) for d in image_shape)
    except (TypeError, ValueError):
        raise ValueError(
            f"image_shape must be (height, width, channels), got {image_shape!r}."
        ) from None
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"image_shape must be (height, width, channels), got {image_shape!r}.")
    if shape[2] not in (1, 3):
        raise ValueError(f"images must have 1 (grayscale) or 3 (RGB) channels, got {shape[2]}.")
    return shape


def check_images(images, image_shape, name="images", max_value=255):
    """Validates a batch of 8-bit images and returns it as a uint8 numpy array.

    Args:
        images: array-like ``[B, H, W, C]`` of integers in [0, 255].
        image_shape: the expected ``(H, W, C)``.
        name: what to call the argument in error messages.
        max_value: the largest valid value (``2**num_bits - 1``).

    Raises:
        ValueError: for a float or bool dtype, a wrong rank, height, width or
            channel count, or values outside [0, 255].
    """
    if isinstance(images, tf.Tensor):
        images = images.numpy()
    array = np.asarray(images)
    if array.dtype == bool or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(
            f"{name} must be uint8 (or integer) pixel values in [0, 255], got dtype "
            f"{array.dtype}. Convert floats in [0, 1] with (x * 255).round().astype('uint8')."
        )
    if array.ndim != 4:
        raise ValueError(
            f"{name} must have rank 4, [batch, height, width, channels], got shape "
            f"{array.shape} (rank {array.ndim})."
        )
    h, w, c = image_shape
    if array.shape[3] != c:
        raise ValueError(
            f"{name} have {array.shape[3]} channels but the model expects {c} "
            f"(image_shape={tuple(image_shape)})."
        )
    if array.shape[1:3] != (h, w):
        raise ValueError(
            f"{name} are {array.shape[1]}x{array.shape[2]} but the model expects {h}x{w} "
            f"(image_shape={tuple(image_shape)})."
        )
    if array.size and (array.min() < 0 or array.max() > max_value):
        raise ValueError(
            f"{name} must lie in [0, {max_value}], got values in [{array.min()}, {array.max()}]."
        )
    return array.astype(np.uint8)


def check_positive_int(value, name):
    """Returns ``value`` as an int if it is a positive integer, else raises."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    return int(value)


def check_temperature(temperature):
    """Returns ``temperature`` as a float if it is a finite number > 0, else raises."""
    try:
        value = float(temperature)
    except (TypeError, ValueError):
        raise ValueError(f"temperature must be a number > 0, got {temperature!r}.") from None
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}.")
    return value
