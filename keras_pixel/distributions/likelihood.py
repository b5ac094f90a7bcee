"""The likelihood a model composes: what its network's outputs mean.

A model holds one :class:`Likelihood` (``model.likelihood``) and asks it
everything that depends on the outputs' meaning: the log-prob of every
subpixel (training, evaluation, export), the draw of one subpixel from uniform
noise (sampling, identical for every sampler), and the log-probs of every
value of one subpixel (the exported single-step graph).
"""

import tensorflow as tf

from keras_pixel.distributions.categorical import inverse_cdf_sample, pixel_categorical
from keras_pixel.distributions.logistic_mixture import mixture_from_params


class Likelihood:
    """The distribution of images given a network's outputs.

    Attributes:
        num_values: K, the values a subpixel takes.
        noise_per_subpixel: uniform numbers one draw consumes.
        per_pixel: whether the outputs at a pixel do not read that pixel's own
            channels (the likelihood couples them): a cached sampler then steps
            once per pixel and draws every channel from that step.
    """

    noise_per_subpixel = 1
    per_pixel = False

    def __init__(self, num_values):
        self.num_values = int(num_values)

    def distribution(self, outputs, temperature=1.0):
        """A ``tfp`` distribution with event shape ``[H, W, C]`` whose
        ``.distribution.log_prob`` gives one value per subpixel."""
        raise NotImplementedError

    def log_prob(self, outputs, images, portable=False):
        """Conditional log-prob in nats of every subpixel, float32 ``[B, H, W, C]``.

        ``portable=True`` computes the same numbers from ops that every runtime
        has, for exports to LiteRT and ONNX.
        """
        raise NotImplementedError

    def sample(self, outputs, canvas, i, j, c, noise, temperature):
        """Draws subpixel ``(i, j, c)`` of every image -> int32 ``[B]``.

        A deterministic function of the conditional and of ``noise``
        ``[B, noise_per_subpixel]`` (uniform in ``[0, 1)``), so every sampling
        method draws the same values from the same noise. ``canvas`` holds the
        subpixels drawn so far (a likelihood that couples a pixel's channels
        reads them).
        """
        raise NotImplementedError

    def value_log_probs(self, outputs, canvas, i, j, c):
        """Log-probs in nats of every value of subpixel ``(i, j, c)`` given all the
        subpixels before it, float32 ``[B, num_values]``, at temperature 1;
        ``i``, ``j``, ``c`` may be scalar tensors."""
        raise NotImplementedError


class CategoricalLikelihood(Likelihood):
    """A K-way softmax per subpixel: outputs are logits ``[B, H, W, C, K]``
    (PixelCNN, Gated PixelCNN, PixelRNN)."""

    def distribution(self, outputs, temperature=1.0):
        return pixel_categorical(outputs, temperature)

    def log_prob(self, outputs, images, portable=False):
        if portable:
            log_probs = tf.nn.log_softmax(tf.cast(outputs, tf.float32), axis=-1)
            one_hot = tf.one_hot(tf.cast(images, tf.int32), self.num_values, dtype=tf.float32)
            return tf.reduce_sum(log_probs * one_hot, axis=-1)
        return self.distribution(outputs).distribution.log_prob(tf.cast(images, tf.int32))

    def sample(self, outputs, canvas, i, j, c, noise, temperature):
        del canvas
        return inverse_cdf_sample(outputs[:, i, j, c], noise[:, 0], temperature)

    def value_log_probs(self, outputs, canvas, i, j, c):
        del canvas
        return tf.nn.log_softmax(tf.cast(outputs[:, i, j, c], tf.float32), axis=-1)


class LogisticMixtureLikelihood(Likelihood):
    """The discretized logistic mixture of PixelCNN++: outputs are the flat
    mixture parameters ``[B, H, W, P]`` (see
    :func:`~keras_pixel.distributions.logistic_mixture.mixture_from_params`).

    Args:
        num_logistic_mix: mixture components.
        channels: C, 1 or 3.
        num_bits: bits per subpixel (``num_values = 2**num_bits``).
    """

    noise_per_subpixel = 2
    per_pixel = True

    def __init__(self, num_logistic_mix, channels, num_bits=8):
        super().__init__(2**num_bits)
        self.num_logistic_mix = int(num_logistic_mix)
        self.channels = int(channels)
        self.num_bits = int(num_bits)

    def distribution(self, outputs, temperature=1.0):
        """The :class:`DiscretizedLogisticMixture` (temperature applies at sampling)."""
        del temperature
        return mixture_from_params(outputs, self.num_logistic_mix, self.channels, self.num_bits)

    def log_prob(self, outputs, images, portable=False):
        return self.distribution(outputs).subpixel_log_prob(images, portable)

    def sample(self, outputs, canvas, i, j, c, noise, temperature):
        pixel = outputs[:, i : i + 1, j : j + 1]
        previous = canvas[:, i : i + 1, j : j + 1]
        drawn = self.distribution(pixel).sample_channel(
            previous, c, temperature=temperature, uniform=noise[:, None, None, :]
        )
        return tf.reshape(drawn, (-1,))

    def value_log_probs(self, outputs, canvas, i, j, c):
        """The mixture's discretized conditional of channel ``c`` given the
        pixel's earlier channels in ``canvas``."""
        values = tf.range(self.num_values, dtype=tf.int32)
        previous = tf.cast(canvas[:, i, j], tf.int32)
        channel = tf.range(self.channels)
        candidates = tf.where(channel < c, previous[:, None, :], 0)
        candidates = tf.where(channel == c, values[None, :, None], candidates)
        pixel = tf.gather(tf.gather(outputs, i, axis=1), j, axis=1)
        params = tf.tile(pixel[:, None, None, :], [1, 1, self.num_values, 1])
        log_probs = self.distribution(params).subpixel_log_prob(candidates[:, None], portable=True)
        return tf.gather(log_probs[:, 0], c, axis=-1)
