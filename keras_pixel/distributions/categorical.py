"""The K-way softmax likelihood of PixelCNN and PixelRNN (K = 256 for 8-bit images), on
``tfp.distributions``."""

import tensorflow as tf
import tensorflow_probability as tfp

from keras_pixel.validation import check_temperature

tfd = tfp.distributions

NUM_VALUES = 256
"""Values of an 8-bit subpixel: the default K."""


def _check_temperature(temperature):
    if isinstance(temperature, (int, float)):
        check_temperature(temperature)


def pixel_categorical(logits, temperature=1.0, event_ndims=3):
    """A categorical distribution over images, one K-way softmax per subpixel.

    Args:
        logits: float ``[..., H, W, C, K]`` (any number of event dims, see
            ``event_ndims``), K >= 2 values per subpixel (256 for 8-bit images).
            Computed in float32 whatever their dtype.
        temperature: > 0. The logits are divided by it: below 1 sharpens, above 1
            flattens the conditionals.
        event_ndims: how many dimensions before the K values form one event
            (3 for ``[H, W, C]`` images; 0 for a single subpixel).

    Returns:
        ``tfd.Independent(tfd.Categorical(...))`` with event shape
        ``logits.shape[-1 - event_ndims:-1]`` and integer samples in [0, K).
        ``.log_prob(images)`` is the sum over the event of the subpixel log-probs
        in nats; ``.distribution.log_prob(images)`` keeps one value per subpixel.
    """
    _check_temperature(temperature)
    logits = tf.cast(logits, tf.float32)
    if logits.shape[-1] is not None and logits.shape[-1] < 2:
        raise ValueError(f"logits must end in K >= 2 values, got shape {logits.shape}.")
    if temperature != 1.0:
        logits = logits / tf.cast(temperature, tf.float32)
    return tfd.Independent(
        tfd.Categorical(logits=logits, dtype=tf.int32),
        reinterpreted_batch_ndims=event_ndims,
    )


def subpixel_log_prob(logits, values):
    """Log-probability in nats of each subpixel value under its own softmax.

    Args:
        logits: float ``[..., K]``.
        values: integer ``[...]`` in [0, K).

    Returns:
        float32 ``[...]``.
    """
    return pixel_categorical(logits, event_ndims=0).log_prob(tf.cast(values, tf.int32))


def inverse_cdf_sample(logits, uniform, temperature=1.0):
    """Draws each subpixel from its softmax by inverting the CDF at a given uniform.

    The draw is a deterministic function of ``(logits, uniform)``, so two
    samplers that compute the same logits (the full network or a cached step)
    and read the same noise draw the same value.

    Args:
        logits: float ``[..., V]``.
        uniform: float ``[...]`` in ``[0, 1)``.
        temperature: > 0; divides the logits.

    Returns:
        int32 ``[...]`` in ``[0, V)``: the number of CDF values at or below ``uniform``.
    """
    _check_temperature(temperature)
    logits = tf.cast(logits, tf.float32) / tf.cast(temperature, tf.float32)
    cdf = tf.cumsum(tf.nn.softmax(logits, axis=-1), axis=-1)
    target = tf.cast(uniform, tf.float32)[..., None] * cdf[..., -1:]
    count = tf.reduce_sum(tf.cast(cdf <= target, tf.int32), axis=-1)
    return tf.minimum(count, tf.shape(logits)[-1] - 1)


def sample_subpixel(logits, seed, temperature=1.0):
    """One stateless draw per row of ``logits`` (``[..., K]``) -> int32 ``[...]``.

    The same ``seed`` (int32 ``[2]``) and logits always give the same values,
    which is what makes seeded sampling reproducible: one uniform per subpixel
    from ``seed``, through :func:`inverse_cdf_sample`.
    """
    logits = tf.convert_to_tensor(logits)
    uniform = tf.random.stateless_uniform(tf.shape(logits)[:-1], seed)
    return inverse_cdf_sample(logits, uniform, temperature)
