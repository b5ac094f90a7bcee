"""``ByteDropout``: dropout that draws one random byte per element instead of one float.

Keras's ``Dropout`` draws a float32 uniform per element. In a PixelCNN++
training step on CPU that random-number generation is several percent of the
step (one draw per element of every gated resnet's ``2 * filters``-channel
activation). A byte per element needs a quarter of the random bits: one raw
32-bit draw gives the bytes of four elements. Keeping an element when its
byte is at least ``256 * rate`` is exactly ``Bernoulli(1 - rate)`` when
``256 * rate`` is an integer (the paper's 0.5, also 0.25, 0.125, ...); other
rates and ``noise_shape`` use Keras's ``Dropout`` unchanged.
"""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="keras_pixel")
class ByteDropout(keras.layers.Dropout):
    """``keras.layers.Dropout`` with one random byte per element where that is exact.

    Same arguments, same semantics: in training, each element is zeroed with
    probability ``rate`` and the others scaled by ``1 / (1 - rate)``; the
    identity otherwise. The byte path is taken when ``256 * rate`` is an
    integer and ``noise_shape`` is None, with a static last dimension; the
    masks it draws differ from ``Dropout``'s for the same seed.

    Input and output: any shape ``[..., C]``.
    """

    def _byte_path(self, inputs):
        levels = self.rate * 256
        return (
            0 < self.rate < 1
            and levels == int(levels)
            and self.noise_shape is None
            and inputs.shape.rank
            and inputs.shape[-1] is not None
        )

    def call(self, inputs, training=False):
        if not training or not self._byte_path(inputs):
            return super().call(inputs, training=training)
        channels = inputs.shape[-1]
        words = -(-channels // 4)
        shape = tf.concat([tf.shape(inputs)[:-1], [words]], axis=0)
        seed = tf.cast(self.seed_generator.next(), "int32")
        bits = tf.random.stateless_uniform(shape, seed, minval=None, maxval=None, dtype="int32")
        random_bytes = tf.bitcast(bits, tf.uint8)
        random_bytes = tf.reshape(random_bytes, tf.concat([shape[:-1], [4 * words]], axis=0))
        if 4 * words != channels:
            random_bytes = random_bytes[..., :channels]
        keep = random_bytes >= int(self.rate * 256)
        scale = tf.cast(1.0 / (1.0 - self.rate), inputs.dtype)
        return tf.where(keep, inputs * scale, tf.zeros((), inputs.dtype))
