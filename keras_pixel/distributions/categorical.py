"""The 256-way softmax likelihood of PixelCNN and PixelRNN, on ``tfp.distributions``."""

import tensorflow as tf
import tensorflow_probability as tfp

tfd = tfp.distributions

NUM_VALUES = 256


def _check_temperature(temperature):
    if isinstance(temperature, (int, float)) and not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature!r}.")


def pixel_categorical(logits, temperature=1.0, event_ndims=3):
    """A categorical distribution over uint8 images, one 256-way softmax per subpixel.

    Args:
        logits: float ``[..., H, W, C, 256]`` (any number of event dims, see
            ``event_ndims``). Computed in float32 whatever their dtype.
        temperature: > 0. The logits are divided by it: below 1 sharpens, above 1
            flattens the conditionals.
        event_ndims: how many dimensions before the 256 values form one event
            (3 for ``[H, W, C]`` images; 0 for a single subpixel).

    Returns:
        ``tfd.Independent(tfd.Categorical(...))`` with event shape
        ``logits.shape[-1 - event_ndims:-1]`` and integer samples in [0, 255].
        ``.log_prob(images)`` is the sum over the event of the subpixel log-probs
        in nats; ``.distribution.log_prob(images)`` keeps one value per subpixel.
    """
    _check_temperature(temperature)
    logits = tf.cast(logits, tf.float32)
    if logits.shape[-1] is not None and logits.shape[-1] != NUM_VALUES:
        raise ValueError(f"logits must end in {NUM_VALUES} values, got shape {logits.shape}.")
    if temperature != 1.0:
        logits = logits / tf.cast(temperature, tf.float32)
    return tfd.Independent(
        tfd.Categorical(logits=logits, dtype=tf.int32),
        reinterpreted_batch_ndims=event_ndims,
    )


def subpixel_log_prob(logits, values):
    """Log-probability in nats of each subpixel value under its own softmax.

    Args:
        logits: float ``[..., 256]``.
        values: integer ``[...]`` in [0, 255].

    Returns:
        float32 ``[...]``.
    """
    return pixel_categorical(logits, event_ndims=0).log_prob(tf.cast(values, tf.int32))


def sample_subpixel(logits, seed, temperature=1.0):
    """One stateless draw per row of ``logits`` (``[..., 256]``) -> int32 ``[...]``.

    The same ``seed`` (int32 ``[2]``) and logits always give the same values,
    which is what makes seeded sampling reproducible.
    """
    return pixel_categorical(logits, temperature, event_ndims=0).sample(seed=seed)
