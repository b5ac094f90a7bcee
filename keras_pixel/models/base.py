"""``AutoregressiveModel``: what every image model of the package shares."""

import math

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from keras_pixel import sampling
from keras_pixel.distributions import pixel_categorical, sample_subpixel
from keras_pixel.validation import (
    check_images,
    check_positive_int,
    check_temperature,
    normalize_image_shape,
)


class AutoregressiveModel(keras.Model):
    """Base class of the autoregressive image models.

    A subclass defines the network in ``call(images) -> outputs`` (for the
    256-way softmax: logits ``[B, H, W, C, 256]``) such that the outputs at
    subpixel ``(i, j, c)`` depend only on subpixels before it in raster order.
    Subclasses with another likelihood override :meth:`output_distribution` and
    :meth:`sample_subpixel`.

    The base turns this into a trainable density model:

    * ``fit(images)``: uint8 images are their own targets; the loss is the
      negative log-likelihood in nats per image and the ``bits_per_dim`` metric
      is reported (``evaluate`` returns it too);
    * :meth:`log_prob`, :meth:`sample`, :meth:`complete`.

    Args:
        image_shape: ``(H, W, C)`` with C = 1 or 3.
        **kwargs: passed to ``keras.Model`` (``name``, ``dtype``, ...).
    """

    def __init__(self, image_shape, **kwargs):
        super().__init__(**kwargs)
        self._image_shape = normalize_image_shape(image_shape)
        self.bits_per_dim_tracker = keras.metrics.Mean(name="bits_per_dim")
        self._samplers = {}
        self._log_prob_fn = None

    @property
    def image_shape(self):
        """``(H, W, C)`` of the images the model describes."""
        return self._image_shape

    @property
    def num_dims(self):
        """Number of subpixels per image, ``H * W * C``."""
        h, w, c = self._image_shape
        return h * w * c

    def _build_from_images(self):
        """Creates every weight by one forward pass on a blank batch."""
        self(ops.zeros((1, *self._image_shape), dtype="uint8"))

    def preprocess(self, images):
        """uint8 ``[B, H, W, C]`` -> float ``[B, H, W, C]`` in [-1, 1]."""
        dtype = images.dtype if isinstance(images.dtype, str) else images.dtype.name
        if "float" in dtype or dtype == "bool":
            raise ValueError(
                f"{self.name} takes uint8 (or integer) images in [0, 255], got dtype {dtype}."
            )
        images = ops.cast(images, self.compute_dtype)
        return images / 127.5 - 1.0

    def output_distribution(self, outputs, temperature=1.0):
        """The distribution over images given the network outputs.

        Returns:
            A ``tfp`` distribution with event shape ``[H, W, C]`` whose
            ``.distribution.log_prob`` gives one value per subpixel.
        """
        return pixel_categorical(outputs, temperature)

    def sample_subpixel(self, outputs, canvas, i, j, c, seed, temperature):
        """Draws subpixel ``(i, j, c)`` of every image -> int32 ``[B]``.

        ``canvas`` holds the subpixels drawn so far (likelihoods that couple the
        channels of a pixel read them); the 256-way softmax does not need it.
        """
        del canvas
        return sample_subpixel(outputs[:, i, j, c], seed, temperature)

    def subpixel_log_prob(self, outputs, images):
        """Conditional log-prob in nats of every subpixel, float32 ``[B, H, W, C]``."""
        return self.output_distribution(outputs).distribution.log_prob(tf.cast(images, tf.int32))

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """Negative log-likelihood in nats per image, averaged over the batch.

        ``x`` are the uint8 images (their own targets); also updates the
        ``bits_per_dim`` metric.
        """
        del y, training
        nll = -ops.sum(self.subpixel_log_prob(y_pred, x), axis=(1, 2, 3))
        if sample_weight is not None:
            sample_weight = ops.cast(sample_weight, nll.dtype)
            loss = ops.sum(nll * sample_weight) / ops.maximum(ops.sum(sample_weight), 1e-12)
        else:
            loss = ops.mean(nll)
        self.bits_per_dim_tracker.update_state(
            nll / (self.num_dims * math.log(2.0)), sample_weight=sample_weight
        )
        for extra in self.losses:
            loss = loss + ops.cast(ops.sum(extra), loss.dtype)
        return loss

    def _get_sampler(self, method, factory):
        if method not in self._samplers:
            self._samplers[method] = factory(self)
        return self._samplers[method]

    def _check(self, images, name="images"):
        return check_images(images, self._image_shape, name=name)

    def log_prob(self, images, reduce=True, batch_size=64):
        """Log-likelihood in nats of uint8 images.

        Args:
            images: uint8 (or integer) ``[B, H, W, C]`` in [0, 255].
            reduce: if True, one value per image; if False, the conditional
                log-prob of each subpixel given every subpixel before it in
                raster order (rows, then columns, then R, G, B).
            batch_size: images per forward pass.

        Returns:
            float32 numpy ``[B]`` (``reduce=True``) or ``[B, H, W, C]``; the sum of
            the unreduced form over ``H, W, C`` is the reduced form.
        """
        images = self._check(images)
        batch_size = check_positive_int(batch_size, "batch_size")
        if self._log_prob_fn is None:

            @tf.function(reduce_retracing=True)
            def fn(batch):
                return self.subpixel_log_prob(self(batch, training=False), batch)

            self._log_prob_fn = fn
        parts = [
            self._log_prob_fn(tf.constant(images[k : k + batch_size])).numpy()
            for k in range(0, len(images), batch_size)
        ]
        per_subpixel = (
            np.concatenate(parts) if parts else np.zeros((0, *self._image_shape), np.float32)
        )
        if reduce:
            return per_subpixel.sum(axis=(1, 2, 3), dtype=np.float32)
        return per_subpixel

    def bits_per_dim(self, images, batch_size=64):
        """Mean negative log-likelihood of ``images`` in bits per subpixel (float)."""
        nll = -self.log_prob(images, batch_size=batch_size).astype(np.float64)
        return float(nll.mean() / (self.num_dims * math.log(2.0)))

    def sample(self, num, temperature=1.0, seed=None, method="naive", progress=False):
        """Draws ``num`` images from the model.

        Args:
            num: number of images.
            temperature: > 0; divides the logits of every conditional.
            seed: int for reproducible images (the same seed gives the same
                images), or None for fresh randomness.
            method: ``"naive"``: one full forward pass per subpixel inside a
                compiled ``tf.while_loop``.
            progress: show a progress bar.

        Returns:
            uint8 numpy ``[num, H, W, C]``.
        """
        num = check_positive_int(num, "num")
        temperature = check_temperature(temperature)
        sampling.check_method(method)
        canvas = np.zeros((num, *self._image_shape), np.uint8)
        return sampling.run_sampler(
            self, canvas, 0, sampling.make_seed(seed), temperature, method, progress
        )

    def complete(
        self, images, num_known_rows, temperature=1.0, seed=None, method="naive", progress=False
    ):
        """Keeps the first ``num_known_rows`` rows of ``images`` and samples the rest.

        Args:
            images: uint8 ``[B, H, W, C]``; rows from ``num_known_rows`` on are ignored.
            num_known_rows: int in [0, H].
            temperature: as in :meth:`sample`.
            seed: as in :meth:`sample`.
            method: as in :meth:`sample`.
            progress: as in :meth:`sample`.

        Returns:
            uint8 numpy ``[B, H, W, C]`` whose first ``num_known_rows`` rows equal
            those of ``images``.
        """
        images = self._check(images)
        height, width, channels = self._image_shape
        if (
            isinstance(num_known_rows, bool)
            or not isinstance(num_known_rows, (int, np.integer))
            or not 0 <= num_known_rows <= height
        ):
            raise ValueError(
                f"num_known_rows must be an int in [0, {height}], got {num_known_rows!r}."
            )
        temperature = check_temperature(temperature)
        sampling.check_method(method)
        canvas = images.copy()
        canvas[:, num_known_rows:] = 0
        if len(canvas) == 0:
            return canvas
        start = int(num_known_rows) * width * channels
        return sampling.run_sampler(
            self, canvas, start, sampling.make_seed(seed), temperature, method, progress
        )

    def get_config(self):
        config = super().get_config()
        config["image_shape"] = list(self._image_shape)
        return config
