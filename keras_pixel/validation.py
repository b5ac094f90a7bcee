"""Checks on what users pass in, with errors that name the problem."""

import numbers
import sys

import numpy as np


def _is_tensor(value):
    """``tf.is_tensor(value)``, without importing TensorFlow: a process that has
    not imported it holds no tensor (``keras-pixel sample`` with a compiled
    sampler never does, :mod:`keras_pixel.sampler_aot`)."""
    tf = sys.modules.get("tensorflow")
    return tf is not None and tf.is_tensor(value)


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
    """Validates a batch of images and returns it as a numpy array of
    :func:`image_dtype` (uint8 up to 256 values, int32 above).

    Args:
        images: array-like ``[B, H, W, C]`` of integers in ``[0, max_value]``.
        image_shape: the expected ``(H, W, C)``.
        name: what to call the argument in error messages.
        max_value: the largest valid value, ``num_values - 1`` (255 for 8 bits).

    Raises:
        ValueError: for a float or bool dtype, a wrong rank, height, width or
            channel count, or values outside ``[0, max_value]``.
    """
    if _is_tensor(images):
        images = images.numpy()
    array = np.asarray(images)
    if array.dtype == bool or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(
            f"{name} must be uint8 (or integer) pixel values in [0, {max_value}], got dtype "
            f"{array.dtype}. Convert floats in [0, 1] with (x * {max_value}).round()"
            f".astype('{image_dtype(max_value + 1)}')."
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
            f"{name} must lie in [0, {max_value}] (num_values={max_value + 1}), got values "
            f"in [{array.min()}, {array.max()}]."
        )
    return array.astype(image_dtype(max_value + 1))


def image_dtype(num_values):
    """The dtype that holds ``num_values`` subpixel values: uint8 up to 256, else int32."""
    return "uint8" if num_values <= 256 else "int32"


def check_num_values(num_values):
    """Returns ``num_values`` as an int if it is an integer in [2, 2**31 - 1], else raises."""
    if (
        isinstance(num_values, bool)
        or not isinstance(num_values, numbers.Integral)
        or not 2 <= num_values < 2**31
    ):
        raise ValueError(f"num_values must be an integer >= 2, got {num_values!r}.")
    return int(num_values)


def check_positive_int(value, name):
    """Returns ``value`` as an int if it is a positive integer, else raises."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    return int(value)


MAX_IMAGES = 1024
"""The default cap on the images one ``sample`` or ``complete`` request of an
exported model may ask for."""

MIN_TEMPERATURE = 1e-4
"""The smallest sampling temperature accepted. Below it the logits divided by the
temperature overflow float32 (all-zero images near 1e-38), and already at it
every draw is the most likely value unless two logits are within about 1e-3."""


def check_temperature(temperature):
    """Returns ``temperature`` as a float if it is a finite number >=
    :data:`MIN_TEMPERATURE`, else raises."""
    try:
        value = float(temperature)
    except (TypeError, ValueError):
        raise ValueError(f"temperature must be a number > 0, got {temperature!r}.") from None
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}.")
    if value < MIN_TEMPERATURE:
        raise ValueError(
            f"temperature must be at least {MIN_TEMPERATURE} (below it the scaled logits "
            f"overflow float32), got {temperature!r}."
        )
    return value


def check_class_ids(labels, num_classes):
    """Raises ``ValueError`` if integer ``labels`` (an array, list or tensor) hold
    a class id outside ``[0, num_classes)``; anything else (None, floats, no
    ``num_classes``) passes."""
    if num_classes is None or labels is None:
        return
    if not (isinstance(labels, (np.ndarray, list)) or _is_tensor(labels)):
        return
    values = np.asarray(labels)
    if np.issubdtype(values.dtype, np.integer) and values.size:
        if values.min() < 0 or values.max() >= num_classes:
            raise ValueError(
                f"labels must be class ids in [0, {num_classes}), got values in "
                f"[{values.min()}, {values.max()}]."
            )


def check_labels(labels, batch, num_classes=None, condition_dim=None, name="model"):
    """A model's labels for ``batch`` images -> float32 numpy ``[batch, D]``, or
    None for an unconditional model (which refuses labels).

    Integer labels are class ids in ``[0, num_classes)`` (one per image, or one
    for all), returned one-hot; float labels are condition vectors ``[batch,
    condition_dim]`` (or one ``[condition_dim]`` for all).
    """
    if num_classes is None and condition_dim is None:
        if labels is not None:
            raise ValueError(f"{name} is unconditional: it takes no labels.")
        return None
    if labels is None:
        what = (
            f"class ids in [0, {num_classes})"
            if num_classes
            else f"vectors of size {condition_dim}"
        )
        raise ValueError(f"{name} is conditional: pass labels= ({what}).")
    array = np.asarray(labels.numpy() if _is_tensor(labels) else labels)
    if array.dtype == bool:
        raise ValueError(f"labels must be integer class ids or float vectors, got {array}.")
    if np.issubdtype(array.dtype, np.integer):
        if num_classes is None:
            raise ValueError(
                f"{name} is conditioned on float vectors of size {condition_dim}, "
                "not on integer labels."
            )
        if array.ndim == 0:
            array = np.full((batch,), array)
        if array.shape != (batch,):
            raise ValueError(
                f"labels must have shape ({batch},), one per image, got {array.shape}."
            )
        check_class_ids(array, num_classes)
        return np.eye(num_classes, dtype=np.float32)[array]
    if not np.issubdtype(array.dtype, np.floating):
        raise ValueError(f"labels must be integers or floats, got dtype {array.dtype}.")
    size = num_classes if num_classes is not None else condition_dim
    if array.ndim == 1 and array.shape[0] == size:
        array = np.broadcast_to(array, (batch, size))
    if array.shape != (batch, size):
        raise ValueError(f"condition vectors must have shape ({batch}, {size}), got {array.shape}.")
    if not np.all(np.isfinite(array)):
        raise ValueError("condition vectors must be finite.")
    return array.astype(np.float32)


class MissingDependencyError(ImportError):
    """An optional dependency is not installed; the message names the extra to install."""


def require(modules, purpose, extra):
    """Raises :class:`MissingDependencyError` naming ``pip install
    "keras-pixel[extra]"`` when any of ``modules`` cannot be imported."""
    import importlib.util

    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise MissingDependencyError(
            f"{purpose} needs {', '.join(missing)}, which is not installed: "
            f'pip install "keras-pixel[{extra}]"'
        )
