"""The sampler driver shared by every autoregressive model.

Sampling walks the subpixels in raster order (rows, then columns, then R, G, B).
The draw for subpixel ``t`` uses the stateless seed ``fold_in(seed, t)``, so a
seed fixes every draw whatever sampling method computes the conditionals (the
basis for exact cached sampling). The walk runs inside a compiled
``tf.while_loop``; the host is visited once per image row, to move the progress
bar, never once per pixel.
"""

import secrets

import numpy as np
import tensorflow as tf

METHODS = ("naive",)


def make_seed(seed):
    """Turns ``None`` or a Python int into a stateless seed, int32 ``[2]``."""
    if seed is None:
        seed = secrets.randbits(62)
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed must be an int or None, got {seed!r}.")
    seed = int(seed)
    if seed < 0:
        raise ValueError(f"seed must be non-negative, got {seed}.")
    return tf.constant([seed % 2**31, (seed >> 31) % 2**31], dtype=tf.int32)


def check_method(method):
    """Returns ``method`` if it is a known sampling method, else raises ``ValueError``."""
    if method not in METHODS:
        raise ValueError(f"Unknown sampling method {method!r}; choose one of {list(METHODS)}.")
    return method


def _naive_sampler(model):
    """A compiled loop that fills subpixels ``[t0, t1)`` by full forward passes.

    Every step runs the whole network on the current canvas and draws one
    subpixel from its conditional: ``H * W * C`` forward passes per image, the
    reference against which faster samplers are checked.
    """
    height, width, channels = model.image_shape

    @tf.function(reduce_retracing=True)
    def run(images, condition, t0, t1, seed, temperature):
        batch = tf.shape(images)[0]
        rows = tf.range(batch)

        def body(t, canvas):
            inputs = canvas if condition is None else (canvas, condition)
            outputs = model(inputs, training=False)
            i = t // (width * channels)
            j = (t // channels) % width
            c = t % channels
            step_seed = tf.random.experimental.stateless_fold_in(seed, t)
            values = model.sample_subpixel(outputs, canvas, i, j, c, step_seed, temperature)
            position = tf.stack([i, j, c])
            indices = tf.concat([rows[:, None], tf.tile(position[None, :], [batch, 1])], axis=1)
            canvas = tf.tensor_scatter_nd_update(canvas, indices, tf.cast(values, canvas.dtype))
            return t + 1, canvas

        _, images = tf.while_loop(lambda t, _: t < t1, body, (t0, images))
        return images

    return run


def run_sampler(
    model, canvas, start, seed, temperature, method="naive", progress=False, condition=None
):
    """Fills every subpixel of ``canvas`` from raster index ``start`` on.

    Args:
        model: an :class:`~keras_pixel.models.AutoregressiveModel`.
        canvas: uint8 ``[B, H, W, C]``; subpixels before ``start`` are kept.
        start: raster index of the first subpixel to draw (a multiple of ``W * C``
            when completing whole rows).
        seed: int32 ``[2]`` stateless seed (see :func:`make_seed`).
        temperature: float > 0.
        method: ``"naive"``.
        progress: show a tqdm progress bar over the subpixels.
        condition: float ``[B, D]`` condition vectors for conditional models.

    Returns:
        uint8 numpy ``[B, H, W, C]``.
    """
    check_method(method)
    height, width, channels = model.image_shape
    total = height * width * channels
    row = width * channels
    sampler = model._get_sampler(method, _naive_sampler)
    canvas = tf.cast(tf.convert_to_tensor(canvas), tf.int32)
    temperature = tf.constant(temperature, tf.float32)
    if condition is not None:
        condition = tf.constant(condition, tf.float32)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=total - start, desc="sampling", unit="subpixel")
    t = start
    while t < total:
        stop = min(total, (t // row + 1) * row)
        canvas = sampler(canvas, condition, tf.constant(t), tf.constant(stop), seed, temperature)
        if bar is not None:
            bar.update(stop - t)
        t = stop
    if bar is not None:
        bar.close()
    return canvas.numpy().astype("uint8")
