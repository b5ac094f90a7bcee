"""The sampler driver shared by every autoregressive model.

Sampling walks the subpixels in raster order (rows, then columns, then R, G, B).
All the noise is drawn up front from the seed, ``noise[t]`` for subpixel ``t``,
and each draw is a deterministic function of its conditional and its noise
(:func:`~keras_pixel.distributions.categorical.inverse_cdf_sample`), so every
sampling method turns the same seed into the same images. Two methods:

* ``"naive"``: one full forward pass per subpixel (``H * W * C`` passes), the
  reference.
* ``"cached"`` (Ramachandran et al. 2017, *Fast Generation for Convolutional
  Autoregressive Models*): one full pass fills per-layer caches; each step then
  computes every layer only where the new subpixel reaches
  (``model.init_cache`` / ``model.step``), in one XLA-compiled loop
  whose caches are updated in place.

The walk runs inside a compiled ``tf.while_loop``; the host is visited once
per image row, to move the progress bar, never once per pixel.
"""

import secrets

import numpy as np
import tensorflow as tf

from keras_pixel.layers.incremental import Position, read_window

METHODS = ("cached", "naive")

# How often a progress bar moves: at most this many compiled calls per image.
PROGRESS_UPDATES = 16


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


def seed_from_tensor(seed):
    """:func:`make_seed` inside a graph: a non-negative int64 scalar tensor -> int32 ``[2]``.

    Gives the same stateless seed as ``make_seed(int(seed))``, so an exported
    graph and the Python API draw the same images for the same seed.
    """
    seed = tf.cast(seed, tf.int64)
    low = tf.math.floormod(seed, 2**31)
    high = tf.math.floormod(tf.bitwise.right_shift(seed, 31), 2**31)
    return tf.cast(tf.stack([low, high]), tf.int32)


def check_method(method):
    """Returns ``method`` if it is a known sampling method, else raises ``ValueError``."""
    if method not in METHODS:
        raise ValueError(f"Unknown sampling method {method!r}; choose one of {list(METHODS)}.")
    return method


def draw_noise(model, seed, batch, start=0):
    """The uniform noise of every subpixel from ``start`` on, float32
    ``[H * W * C - start, B, model.likelihood.noise_per_subpixel]`` in ``[0, 1)``.

    Row ``t - start`` drives subpixel ``t``; the noise of subpixel ``t`` depends
    on ``(seed, t)`` only, so completing from ``start`` reuses the draws that a
    full sample would have made there.
    """
    height, width, channels = model.image_shape
    total = height * width * channels
    return _noise(seed, tf.range(start, total), batch, model.likelihood.noise_per_subpixel)


@tf.function(autograph=False, reduce_retracing=True)
def _noise(seed, steps, batch, per_subpixel):
    """:func:`draw_noise` as a graph: a loop over the steps run eagerly costs
    milliseconds per step (seconds per image)."""
    per_step = lambda t: tf.random.stateless_uniform(  # noqa: E731
        tf.stack([batch, per_subpixel]), tf.random.experimental.stateless_fold_in(seed, t)
    )
    return tf.map_fn(per_step, steps, fn_output_signature=tf.float32)


def _position(model, t):
    _, width, channels = model.image_shape
    return Position.from_index(t, width, channels)


def _write_subpixel(canvas, i, j, c, values):
    batch = tf.shape(canvas)[0]
    position = tf.stack([i, j, c])
    indices = tf.concat([tf.range(batch)[:, None], tf.tile(position[None, :], [batch, 1])], axis=1)
    return tf.tensor_scatter_nd_update(canvas, indices, tf.cast(values, canvas.dtype))


def _naive_sampler(model):
    """``(init, run)`` of the reference sampler: every step runs the whole network
    on the current canvas and draws one subpixel from its conditional.

    ``run(images, cache, condition, t0, t1, noise, temperature)`` draws
    subpixels ``t0 <= t < t1``; ``noise[t]`` (:func:`draw_noise` from 0) drives
    subpixel ``t``."""

    def init(images, condition, from_scratch=False):
        del images, condition, from_scratch
        return ()

    @tf.function(reduce_retracing=True)
    def run(images, cache, condition, t0, t1, noise, temperature):
        def body(t, canvas):
            inputs = canvas if condition is None else (canvas, condition)
            outputs = model(inputs, training=False)
            i, j, c = _position(model, t)
            values = model.likelihood.sample(
                outputs, canvas, i, j, c, tf.gather(noise, t), temperature
            )
            return t + 1, _write_subpixel(canvas, i, j, c, values)

        _, images = tf.while_loop(lambda t, _: t < t1, body, (t0, images))
        return images, cache

    return init, run


def _cached_sampler(model):
    """``(init, run)`` of the cached sampler: ``init`` fills the per-layer caches
    from the canvas with one full pass (or, for a family whose
    ``zero_cache_from_scratch`` says so, makes them zeros when no pixel is
    known: ``from_scratch=True``); ``run`` steps through whole rows
    (``t0`` and ``t1`` are multiples of ``W * C``), with ``model.row_step``
    at the start of each and ``model.step`` per subpixel (or pixel). Both
    are XLA-compiled (in-place cache updates)."""

    @tf.function(jit_compile=True, reduce_retracing=True)
    def filled(images, condition):
        return model.init_cache(images, condition)

    @tf.function(jit_compile=True, reduce_retracing=True)
    def zeros(images, condition):
        spec = lambda t: None if t is None else tf.TensorSpec(t.shape, t.dtype)  # noqa: E731
        traced = tf.function(model.init_cache, autograph=False).get_concrete_function(
            spec(images), spec(condition)
        )
        batch = tf.shape(images)[:1]
        return tf.nest.map_structure(
            lambda t: tf.zeros(tf.concat([batch, t.shape[1:]], 0), t.dtype),
            traced.structured_outputs,
        )

    def init(images, condition, from_scratch=False):
        if from_scratch and model.zero_cache_from_scratch:
            return zeros(images, condition)
        return filled(images, condition)

    @tf.function(jit_compile=True, reduce_retracing=True)
    def run(images, cache, condition, t0, t1, noise, temperature):
        # Prepared once here, outside the loop (see model.sampling_constants).
        constants = model.sampling_constants()
        return _run(images, cache, condition, t0, t1, noise, temperature, constants)

    def _run(images, cache, condition, t0, t1, noise, temperature, constants):
        _, width, channels = model.image_shape
        row = width * channels
        # A family whose outputs at a pixel do not read that pixel's own channels
        # takes one step per pixel and draws all its channels from it.
        per_pixel = model.likelihood.per_pixel
        draws = range(channels) if per_pixel else [None]

        def step(t, canvas, cache):
            i, j, c = _position(model, t)
            outputs, cache = model.step(cache, canvas, Position(i, j, c), condition, constants)
            for k in draws:
                c_k, t_k = (c, t) if k is None else (k, t + k)
                pixel = read_window(canvas, i, j, 1, 1)
                values = model.likelihood.sample(
                    outputs, pixel, 0, 0, c_k, tf.gather(noise, t_k), temperature
                )
                canvas = _write_subpixel(canvas, i, j, c_k, values)
            return t + (channels if per_pixel else 1), canvas, cache

        def next_row(i, canvas, cache):
            cache = model.row_step(cache, canvas, Position(i, 0, 0), condition, constants)
            end = (i + 1) * row
            _, canvas, cache = tf.while_loop(lambda t, *_: t < end, step, (i * row, canvas, cache))
            return i + 1, canvas, cache

        _, images, cache = tf.while_loop(
            lambda i, *_: i < t1 // row, next_row, (t0 // row, images, cache)
        )
        return images, cache

    return init, run


SAMPLERS = {"cached": _cached_sampler, "naive": _naive_sampler}


def _check_start(model, start):
    """Samplers draw whole rows: a Python ``start`` must be a multiple of ``W * C``."""
    _, width, channels = model.image_shape
    if isinstance(start, (int, np.integer)) and start % (width * channels):
        raise ValueError(
            f"start must be a multiple of W * C = {width * channels} (samplers draw whole "
            f"rows), got {start}."
        )


def fill_in_graph(
    model, canvas, start, seed, temperature, condition=None, method="cached", noise=None
):
    """:func:`run_sampler` as graph ops, for exported signatures: no host visits.

    Args:
        model: an :class:`~keras_pixel.models.AutoregressiveModel`.
        canvas: int32 ``[B, H, W, C]`` tensor; subpixels before ``start`` are kept.
        start: int32 scalar tensor or Python int, the raster index of the first
            subpixel to draw, a multiple of ``W * C`` (a Python 0 lets the
            cached sampler skip filling its caches).
        seed: int32 ``[2]`` stateless seed (see :func:`seed_from_tensor`).
        temperature: float32 scalar tensor > 0.
        condition: float32 ``[B, D]`` or None.
        method: ``"cached"`` or ``"naive"``.
        noise: float32 ``[H * W * C, B, noise_per_subpixel]`` in place of
            ``draw_noise(model, seed, B)`` (``seed`` is then unused): a graph
            compiled whole by XLA, whose random ops give other numbers than
            TensorFlow's CPU kernels, takes the noise as an input
            (:mod:`keras_pixel.sampler_aot`).

    Returns:
        int32 ``[B, H, W, C]``: the same images :func:`run_sampler` draws from
        the same seed (the noise of subpixel ``t`` depends on ``(seed, t)`` only).
    """
    check_method(method)
    height, width, channels = model.image_shape
    init, run = model._get_sampler(method, SAMPLERS[method])
    _check_start(model, start)
    if noise is None:
        noise = draw_noise(model, seed, tf.shape(canvas)[0])
    from_scratch = isinstance(start, int) and start == 0
    cache = init(canvas, condition, from_scratch=from_scratch)
    total = tf.constant(height * width * channels, tf.int32)
    start = tf.convert_to_tensor(start, tf.int32)
    canvas, _ = run(canvas, cache, condition, start, total, noise, temperature)
    return canvas


def run_sampler(
    model, canvas, start, seed, temperature, method="naive", progress=False, condition=None
):
    """Fills every subpixel of ``canvas`` from raster index ``start`` on.

    Args:
        model: an :class:`~keras_pixel.models.AutoregressiveModel`.
        canvas: integer ``[B, H, W, C]``; subpixels before ``start`` are kept.
        start: raster index of the first subpixel to draw, a multiple of
            ``W * C`` (samplers complete whole rows).
        seed: int32 ``[2]`` stateless seed (see :func:`make_seed`).
        temperature: float > 0.
        method: ``"cached"`` or ``"naive"``.
        progress: show a tqdm progress bar over the subpixels.
        condition: float ``[B, D]`` condition vectors for conditional models.

    Returns:
        numpy ``[B, H, W, C]`` of ``model.image_dtype`` (uint8 for 8-bit images).
    """
    check_method(method)
    height, width, channels = model.image_shape
    total = height * width * channels
    row = width * channels
    init, run = model._get_sampler(method, SAMPLERS[method])
    canvas = tf.cast(tf.convert_to_tensor(canvas), tf.int32)
    temperature = tf.constant(temperature, tf.float32)
    if condition is not None:
        condition = tf.constant(condition, tf.float32)
    _check_start(model, start)
    # The noise of every subpixel, also before start, so that every call of the
    # compiled run has the same shapes: one compilation serves sample, complete
    # and every chunk (a completion after a sample recompiled it: 20 s -> 6 s for
    # a small PixelCNN++ on CPU).
    noise = draw_noise(model, seed, canvas.shape[0])
    cache = init(canvas, condition, from_scratch=start == 0)
    bar = None
    # One compiled call per chunk of rows: every call copies the caches in and
    # out, so without a progress bar the whole image is one call.
    rows = height - start // row
    chunk = -(-rows // PROGRESS_UPDATES) * row if progress else rows * row
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=total - start, desc="sampling", unit="subpixel")
    t = start
    while t < total:
        stop = min(total, t + chunk)
        canvas, cache = run(
            canvas,
            cache,
            condition,
            tf.constant(t),
            tf.constant(stop),
            noise,
            temperature,
        )
        if bar is not None:
            bar.update(stop - t)
        t = stop
    if bar is not None:
        bar.close()
    return canvas.numpy().astype(model.image_dtype)
