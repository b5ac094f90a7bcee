"""Keras losses for autoregressive image models built outside the model zoo.

The zoo's models train with ``model.fit`` and report bits/dim on their own (the
loss lives in :class:`~keras_pixel.models.AutoregressiveModel`). These losses give
the same negative log-likelihood to any Keras model (a functional model, say)
whose output is the parameters of one of the package's likelihoods, with the
uint8 images as targets: ``model.compile(loss=...)``; and
:func:`nats_to_bits_per_dim` turns that loss into the usual figure.
"""

import math

import keras
import tensorflow as tf

from keras_pixel.distributions import pixel_categorical
from keras_pixel.distributions.logistic_mixture import mixture_from_params


@keras.saving.register_keras_serializable(package="keras_pixel")
class CategoricalNLL(keras.losses.Loss):
    """NLL in nats per image of uint8 images ``[B, H, W, C]`` under 256-way logits
    ``[B, H, W, C, 256]``, in float32 whatever the policy."""

    def __init__(self, name="categorical_nll", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        return -pixel_categorical(y_pred).log_prob(tf.cast(y_true, tf.int32))


@keras.saving.register_keras_serializable(package="keras_pixel")
class DiscretizedLogisticMixtureNLL(keras.losses.Loss):
    """NLL in nats per image of integer images ``[B, H, W, C]`` under a discretized
    logistic mixture with flat parameters ``[B, H, W, P]``
    (see :func:`~keras_pixel.distributions.logistic_mixture.mixture_from_params`).

    Args:
        num_logistic_mix: K.
        channels: C, 1 or 3.
        num_bits: bits per subpixel.
    """

    def __init__(
        self,
        num_logistic_mix,
        channels,
        num_bits=8,
        name="discretized_logistic_mixture_nll",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        self.num_logistic_mix = int(num_logistic_mix)
        self.channels = int(channels)
        self.num_bits = int(num_bits)

    def call(self, y_true, y_pred):
        dist = mixture_from_params(y_pred, self.num_logistic_mix, self.channels, self.num_bits)
        return -dist.log_prob(tf.cast(y_true, tf.int32))

    def get_config(self):
        config = super().get_config()
        config.update(
            num_logistic_mix=self.num_logistic_mix, channels=self.channels, num_bits=self.num_bits
        )
        return config


def nats_to_bits_per_dim(nats_per_image, num_dims):
    """Converts a negative log-likelihood in nats per image to bits per subpixel."""
    return nats_per_image / (num_dims * math.log(2.0))
