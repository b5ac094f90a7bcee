"""``AutoregressiveModel``: what every image model of the package shares."""

import warnings

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from keras_pixel import sampling
from keras_pixel.distributions import CategoricalLikelihood
from keras_pixel.losses import nats_to_bits_per_dim
from keras_pixel.training.strategy import in_multi_worker_mode
from keras_pixel.validation import (
    check_class_ids,
    check_images,
    check_labels,
    check_num_values,
    check_positive_int,
    check_temperature,
    image_dtype,
    normalize_image_shape,
)


def _multi_worker_logs(logs):
    """Step logs as ``[1]`` tensors across several workers, scalars otherwise.

    Keras 3.15 averages each replica's step logs across workers with
    ``strategy.reduce("MEAN", value, axis=0)``, which fails on scalars; on ``[1]``
    tensors it gives the scalar mean over the replicas.
    """
    if not in_multi_worker_mode():
        return logs
    return {key: ops.reshape(value, (1,)) for key, value in logs.items()}


def _unless_empty(forward, x, condition):
    """``forward(x, condition)``, or its outputs for an empty batch without running it.

    TensorFlow's oneDNN ``Conv2D`` (on by default on CPUs with AVX512_VNNI or AMX)
    returns ``[0, H, W, C_in]`` instead of ``[0, H, W, filters]`` for an empty
    batch, and the next convolution then fails ("input depth must be evenly
    divisible by filter depth"). Empty batches arise under ``tf.distribute``: a
    replica's share of a last, partial evaluation batch may hold no image. There,
    when the batch size is unknown at tracing, a branch runs the network on one
    blank image instead and cuts its outputs to none. Elsewhere (single-device
    training, exported graphs, which converters to LiteRT and ONNX must read
    without control flow) a batch of unknown size takes no branch; an empty
    batch of known size takes the blank-image path directly.
    """
    batch = x.shape[0]
    if batch is not None and batch > 0:
        return forward(x, condition)
    if batch is None and not tf.distribute.has_strategy():
        return forward(x, condition)

    def empty():
        blank_x = ops.zeros((1, *x.shape[1:]), x.dtype)
        blank_condition = (
            None if condition is None else ops.zeros((1, *condition.shape[1:]), condition.dtype)
        )
        return keras.tree.map_structure(
            lambda t: tf.stop_gradient(t[:0]), forward(blank_x, blank_condition)
        )

    if batch == 0:
        return empty()
    return tf.cond(tf.shape(x)[0] > 0, lambda: forward(x, condition), empty)


class AutoregressiveModel(keras.Model):
    """Base class of the autoregressive image models.

    A subclass defines the network in :meth:`network`, its layer stack written
    once (for the K-way softmax: float images ``[B, H, W, C]`` in [-1, 1] ->
    logits ``[B, H, W, C, K]``), such that the outputs at subpixel ``(i, j, c)``
    depend only on subpixels before it in raster order; the base derives the
    forward pass and cached sampling from it (or a family overrides
    :meth:`forward`, :meth:`init_cache` and :meth:`step`). What the outputs
    mean is the model's :attr:`likelihood` (a K-way softmax per subpixel
    unless the family sets another,
    :class:`~keras_pixel.distributions.Likelihood`).

    The base turns this into a trainable density model:

    * ``model(images)`` or ``model((images, labels))`` -> the network outputs;
    * ``fit(images)`` (``fit((images, labels))`` for conditional models): uint8
      images are their own targets; the loss is the negative log-likelihood in
      nats per image and the ``bits_per_dim`` metric is reported (``evaluate``
      returns it too);
    * :meth:`log_prob`, :meth:`sample`, :meth:`complete`.

    Args:
        image_shape: ``(H, W, C)`` with C = 1 or 3.
        num_classes: for a class-conditional model, the number of classes;
            labels are then integer ids ``[B]`` or one-hot vectors
            ``[B, num_classes]``.
        condition_dim: for a model conditioned on arbitrary vectors ``[B, D]``,
            their size ``D`` (exclusive with ``num_classes``).
        num_values: K, the values a subpixel takes: images hold integers in
            ``[0, K)`` (256 for 8-bit images; 2 for binarized images; a VQ-VAE's
            codebook size for a prior over code maps).
        **kwargs: passed to ``keras.Model`` (``name``, ``dtype``, ...).
    """

    #: Whether ``jit_compile=True`` trained this family faster on CPU in our
    #: benchmarks (``benchmarks/README.md``); ``keras-pixel train`` defaults to it.
    xla_faster = True

    #: Whether the family's network reads labels or condition vectors; a family
    #: that does not refuses ``num_classes`` and ``condition_dim`` (a model that
    #: required labels and ignored them would be silently wrong).
    conditionable = True

    def __init__(self, image_shape, num_classes=None, condition_dim=None, num_values=256, **kwargs):
        super().__init__(**kwargs)
        self._image_shape = normalize_image_shape(image_shape)
        if num_classes is not None and condition_dim is not None:
            raise ValueError("Pass num_classes (labels) or condition_dim (vectors), not both.")
        if not self.conditionable and (num_classes is not None or condition_dim is not None):
            raise ValueError(
                f"{type(self).__name__} is unconditional: its network does not read labels, so "
                "num_classes and condition_dim are refused. GatedPixelCNN and PixelCNNPlusPlus "
                "take them."
            )
        self.num_classes = (
            None if num_classes is None else check_positive_int(num_classes, "num_classes")
        )
        self.condition_dim = (
            None if condition_dim is None else check_positive_int(condition_dim, "condition_dim")
        )
        self.bits_per_dim_tracker = keras.metrics.Mean(name="bits_per_dim")
        self._num_values = check_num_values(num_values)
        self.likelihood = CategoricalLikelihood(self._num_values)
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

    @property
    def conditional(self):
        """Whether the model needs labels (or condition vectors)."""
        return self.num_classes is not None or self.condition_dim is not None

    @property
    def condition_size(self):
        """Length of the condition vector the network sees, or None."""
        return self.num_classes if self.num_classes is not None else self.condition_dim

    @property
    def _default_save_signature(self):
        # Keras would trace a float32 input here; the model takes uint8 images, and
        # keras_pixel.export writes the signatures (uint8 specs) itself.
        return None

    def _build_from_images(self):
        """Creates every weight by one forward pass on a blank batch."""
        images = ops.zeros((1, *self._image_shape), dtype=self.image_dtype)
        if self.conditional:
            self((images, ops.zeros((1, self.condition_size))))
        else:
            self(images)

    def call(self, inputs, training=False):
        images, labels = self._split_inputs(inputs)
        x, condition = self.preprocess(images), self._condition(labels)
        return _unless_empty(
            lambda x, condition: self.forward(x, condition, training=training), x, condition
        )

    def _split_inputs(self, inputs):
        if isinstance(inputs, dict):
            images, labels = inputs["images"], inputs.get("labels")
        elif isinstance(inputs, (tuple, list)):
            if len(inputs) != 2:
                raise ValueError(f"{self.name} takes images or (images, labels).")
            images, labels = inputs
        else:
            images, labels = inputs, None
        if self.conditional and labels is None:
            raise ValueError(
                f"{self.name} is conditional: call it on (images, labels) and fit it on a "
                "dataset of (images, labels)."
            )
        if not self.conditional and labels is not None:
            raise ValueError(f"{self.name} is unconditional: it takes no labels.")
        return images, labels

    def _condition(self, labels):
        """Labels (int ids or vectors) -> float condition ``[B, condition_size]``.

        Class ids outside ``[0, num_classes)`` (``one_hot`` would turn them into an
        all-zero condition) fail: at once for concrete values, through a graph
        assertion inside a compiled step (which XLA cannot keep: ``fit`` also
        checks array labels before it starts, see :meth:`fit`).
        """
        if labels is None:
            return None
        labels = ops.convert_to_tensor(labels)
        if "int" in str(labels.dtype):
            if self.num_classes is None:
                raise ValueError(
                    f"{self.name} is conditioned on vectors of size {self.condition_dim}, "
                    "not on integer labels."
                )
            if len(labels.shape) == 2 and labels.shape[-1] == 1:
                labels = labels[:, 0]
            if tf.executing_eagerly():
                self.check_class_ids(labels)
            else:
                message = f"labels must be class ids in [0, {self.num_classes})"
                checks = [
                    tf.debugging.assert_non_negative(labels, message=message),
                    tf.debugging.assert_less(
                        labels, tf.cast(self.num_classes, labels.dtype), message=message
                    ),
                ]
                with tf.control_dependencies(checks):
                    labels = tf.identity(labels)
            return ops.one_hot(labels, self.num_classes, dtype=self.compute_dtype)
        return ops.cast(labels, self.compute_dtype)

    def check_class_ids(self, labels):
        """Raises ``ValueError`` if integer ``labels`` (an array, list or tensor)
        hold a class id outside ``[0, num_classes)``; anything else passes."""
        check_class_ids(labels, self.num_classes)

    def _check_fit_labels(self, x, y):
        self.check_class_ids(y)
        if isinstance(x, (tuple, list)) and len(x) == 2:
            self.check_class_ids(x[1])

    def fit(self, x=None, y=None, *args, **kwargs):
        """``keras.Model.fit``, after checking class ids of array labels.

        A ``tf.data.Dataset`` is fitted as it comes (shuffle it with
        ``Dataset.shuffle``, as :func:`keras_pixel.data.make_dataset` does):
        ``shuffle`` defaults to False for one, where Keras 3.15's default (True)
        has no effect but to warn that it is ignored."""
        self._check_fit_labels(x, y)
        if not args and "shuffle" not in kwargs and isinstance(x, tf.data.Dataset):
            kwargs["shuffle"] = False
        return super().fit(x, y, *args, **kwargs)

    def evaluate(self, x=None, y=None, *args, **kwargs):
        self._check_fit_labels(x, y)
        return super().evaluate(x, y, *args, **kwargs)

    def _pack_conditional(self, data):
        """Turns ``(images, labels[, weights])`` batches into ``((images, labels),)``."""
        if not self.conditional:
            return data
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        if isinstance(x, (tuple, list, dict)):
            return data
        if y is None:
            raise ValueError(
                f"{self.name} is conditional: the dataset must yield (images, labels)."
            )
        return keras.utils.pack_x_y_sample_weight((x, y), None, sample_weight)

    def train_step(self, data):
        return _multi_worker_logs(super().train_step(self._pack_conditional(data)))

    def test_step(self, data):
        return _multi_worker_logs(super().test_step(self._pack_conditional(data)))

    def predict_step(self, data):
        return super().predict_step(self._pack_conditional(data))

    @property
    def num_values(self):
        """K, the values a subpixel takes: images hold integers in ``[0, K)`` (256
        for 8-bit images; ``2**num_bits`` for PixelCNN++)."""
        return self._num_values

    @property
    def image_dtype(self):
        """The dtype of the images this model returns: uint8 up to 256 values,
        int32 above (any integer dtype is accepted as input)."""
        return image_dtype(self._num_values)

    def preprocess(self, images):
        """Integer ``[B, H, W, C]`` in ``[0, num_values)`` -> float in [-1, 1]."""
        dtype = images.dtype if isinstance(images.dtype, str) else images.dtype.name
        if "float" in dtype or dtype == "bool":
            raise ValueError(
                f"{self.name} takes uint8 (or integer) images in [0, {self._num_values - 1}], "
                f"got dtype {dtype}."
            )
        images = ops.cast(images, self.compute_dtype)
        return images * (2.0 / (self._num_values - 1)) - 1.0

    def subpixel_log_prob(self, outputs, images, portable=False):
        """Deprecated (kept for one release): ``self.likelihood.log_prob``."""
        warnings.warn(
            "model.subpixel_log_prob is deprecated; use model.likelihood.log_prob.",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.likelihood.log_prob(outputs, images, portable)

    def output_distribution(self, outputs, temperature=1.0):
        """The distribution over images given the network outputs
        (``self.likelihood.distribution``): a ``tfp`` distribution with event
        shape ``[H, W, C]`` whose ``.distribution.log_prob`` gives one value per
        subpixel."""
        return self.likelihood.distribution(outputs, temperature)

    litert_batch_size = None
    """Batch size a LiteRT export fixes (None: free). Families that loop with
    ``tf.scan`` fix it: LiteRT's builtin ops need static loop-element shapes."""

    zero_cache_from_scratch = False
    """Whether a cache of zeros (shaped like :meth:`init_cache`'s) serves for
    drawing every pixel: true where each step computes every cache entry it
    reads before reading it, and zeros stand for the padding. Sampling from
    scratch then skips the full pass that fills the caches."""

    def network(self, x, condition, layer_call):
        """The family's layer stack, written once.

        Applies every layer through ``layer_call(layer, inputs, **kwargs)`` and
        combines the results with elementwise ops only, so that the same code
        runs on whole maps and on one pixel. The base runs it three ways:
        :meth:`forward` (each layer called), :meth:`init_cache` (each layer's
        ``init_cache`` recorded, then the layer called) and :meth:`step` (each
        layer's ``step`` at one position; see
        :mod:`keras_pixel.layers.incremental` for the layers' protocol).

        Args:
            x: float ``[B, H, W, C]``, the images scaled to [-1, 1] (in a step
                too: the first layer reads the pixels it needs).
            condition: float ``[B, condition_size]`` or None.
            layer_call: how to apply a layer.

        Returns:
            The likelihood's parameters (``[B, H, W, C, K]`` logits), or those of
            one pixel (``[B, C, K]``) in a step.
        """
        raise NotImplementedError(f"{type(self).__name__} defines no network.")

    def forward(self, x, condition=None, training=False):
        """The network: float images in [-1, 1] -> outputs of the likelihood.

        The default runs :meth:`network`; a family with a training-only behaviour
        (dropout) or no incremental layers overrides this instead.

        Args:
            x: float ``[B, H, W, C]``, the images scaled to [-1, 1].
            condition: float ``[B, condition_size]`` or None.
            training: Keras training flag.
        """
        del training
        return self.network(x, condition, lambda layer, inputs, **kwargs: layer(inputs, **kwargs))

    @property
    def supports_cached_sampling(self):
        """Whether this family has a cached sampler: a :meth:`network` of
        incremental layers, or its own :meth:`init_cache` and :meth:`step`."""
        base = AutoregressiveModel
        return type(self).network is not base.network or type(self).step is not base.step

    def init_cache(self, images, condition=None):
        """The caches of cached sampling, filled from ``images`` (int ``[B, H, W,
        C]``) by one full pass: a tuple with one entry per layer, whose values for
        the pixels before the first one to draw are final."""
        caches = []

        def fill(layer, inputs, **kwargs):
            caches.append(layer.init_cache(inputs, **kwargs))
            return layer(inputs, **kwargs)

        self.network(self.preprocess(images), self._condition(condition), fill)
        return tuple(caches)

    def sampling_constants(self):
        """What the cached steps read that stays fixed while sampling, computed
        once where the compiled loop starts and passed to :meth:`step` and
        :meth:`row_step` as ``constants`` (PixelCNN++: its weight-normalized
        kernels, which XLA would otherwise recompute inside every step). The
        default: nothing, ``()``."""
        return ()

    def step(self, cache, images, position, condition=None, constants=None):
        """The network's outputs at one pixel, for drawing the subpixel at
        ``position``, computed from ``cache`` and the drawn subpixels of
        ``images`` alone.

        Args:
            cache: from :meth:`init_cache` (or the previous step).
            images: int ``[B, H, W, C]`` holding every subpixel before ``position``.
            position: a :class:`~keras_pixel.layers.Position`.
            condition: float ``[B, D]`` or None.
            constants: from :meth:`sampling_constants` (computed here if None).

        Returns:
            ``(outputs, cache)``: ``outputs`` shaped like ``self(images)[:, i:i+1,
            j:j+1]`` (equal to it up to float rounding, given every subpixel before
            ``position``), and the cache updated with what this step computed.
        """
        del constants
        caches, updated = iter(cache), []

        def step_layer(layer, inputs, **kwargs):
            outputs, layer_cache = layer.step(next(caches), inputs, position, **kwargs)
            updated.append(layer_cache)
            return outputs

        outputs = self.network(self.preprocess(images), self._condition(condition), step_layer)
        return outputs[:, None, None], tuple(updated)

    def row_step(self, cache, images, position, condition=None, constants=None):
        """What the cached sampler computes once per row, before the :meth:`step`
        of its first pixel, for a family that works whole rows of a map at a
        time outside its layers (the u stream of PixelCNN++): ``cache`` -> the
        updated cache. ``images`` holds every subpixel before row
        ``position.row``. The default computes nothing (layers that need rows run
        them in their own step, where :attr:`Position.first_of_row`)."""
        del images, position, condition, constants
        return cache

    def _sampling_method(self, method):
        if method is None:
            return "cached" if self.supports_cached_sampling else "naive"
        sampling.check_method(method)
        if method == "cached" and not self.supports_cached_sampling:
            raise ValueError(
                f"{type(self).__name__} has no cached sampler yet; use method='naive'."
            )
        return method

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """Negative log-likelihood in nats per image, averaged over the batch.

        ``x`` are the uint8 images (their own targets); also updates the
        ``bits_per_dim`` metric. Under a ``tf.distribute`` strategy with R
        replicas, each replica returns its mean over its share of the global
        batch divided by R, so that the summed gradients are those of the mean
        over the global batch (Keras reports the loss unscaled).
        """
        del y, training
        images = self._split_inputs(x)[0]
        nll = -ops.sum(self.likelihood.log_prob(y_pred, images), axis=(1, 2, 3))
        if sample_weight is not None:
            sample_weight = ops.cast(sample_weight, nll.dtype)
            loss = ops.sum(nll * sample_weight) / ops.maximum(ops.sum(sample_weight), 1e-12)
        else:
            # A replica's share of a last, partial batch may be empty: its mean is 0.
            loss = ops.sum(nll) / ops.maximum(ops.cast(ops.shape(nll)[0], nll.dtype), 1.0)
        self.bits_per_dim_tracker.update_state(
            nats_to_bits_per_dim(nll, self.num_dims), sample_weight=sample_weight
        )
        for extra in self.losses:
            loss = loss + ops.cast(ops.sum(extra), loss.dtype)
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        if replicas > 1:
            loss = loss / replicas
        return loss

    def _get_sampler(self, method, factory):
        if method not in self._samplers:
            self._samplers[method] = factory(self)
        return self._samplers[method]

    def _check(self, images, name="images"):
        return check_images(images, self._image_shape, name=name, max_value=self._num_values - 1)

    def _check_labels(self, labels, batch):
        """Validates labels for ``batch`` images -> float32 numpy ``[batch, D]`` or
        None (see :func:`~keras_pixel.validation.check_labels`)."""
        return check_labels(labels, batch, self.num_classes, self.condition_dim, self.name)

    def log_prob(self, images, reduce=True, batch_size=64, labels=None):
        """Log-likelihood in nats of images.

        Args:
            images: uint8 (or integer) ``[B, H, W, C]`` in ``[0, num_values)``.
            reduce: if True, one value per image; if False, the conditional
                log-prob of each subpixel given every subpixel before it in
                raster order (rows, then columns, then R, G, B).
            batch_size: images per forward pass.
            labels: for conditional models (required there): class ids ``[B]``
                (or one int for all) or condition vectors ``[B, D]``.

        Returns:
            float32 numpy ``[B]`` (``reduce=True``) or ``[B, H, W, C]``; the sum of
            the unreduced form over ``H, W, C`` is the reduced form.
        """
        images = self._check(images)
        condition = self._check_labels(labels, len(images))
        batch_size = check_positive_int(batch_size, "batch_size")
        if self._log_prob_fn is None:

            @tf.function(reduce_retracing=True)
            def fn(batch, condition):
                inputs = batch if condition is None else (batch, condition)
                return self.likelihood.log_prob(self(inputs, training=False), batch)

            self._log_prob_fn = fn
        parts = [
            self._log_prob_fn(
                tf.constant(images[k : k + batch_size]),
                None if condition is None else tf.constant(condition[k : k + batch_size]),
            ).numpy()
            for k in range(0, len(images), batch_size)
        ]
        per_subpixel = (
            np.concatenate(parts) if parts else np.zeros((0, *self._image_shape), np.float32)
        )
        if reduce:
            return per_subpixel.sum(axis=(1, 2, 3), dtype=np.float32)
        return per_subpixel

    def bits_per_dim(self, images, batch_size=64, labels=None):
        """Mean negative log-likelihood of ``images`` in bits per subpixel (float).

        Raises:
            ValueError: for an empty batch (no mean to take).
        """
        if len(images) == 0:
            raise ValueError("bits_per_dim needs at least one image, got none.")
        nll = -self.log_prob(images, batch_size=batch_size, labels=labels).astype(np.float64)
        return float(nats_to_bits_per_dim(nll.mean(), self.num_dims))

    def sample(self, num, temperature=1.0, seed=None, method=None, progress=False, labels=None):
        """Draws ``num`` images from the model.

        Args:
            num: number of images.
            temperature: > 0; divides the logits of every conditional.
            seed: int for reproducible images (the same seed gives the same
                images), or None for fresh randomness.
            method: ``"cached"`` (the default; every family of the package has it,
                a subclass without :meth:`step` falls back to naive): per-layer
                caches, each step computes only what the new subpixel changes;
                ``"naive"``: one full forward pass per subpixel (the reference).
                Both give the same images for the same seed (see
                :mod:`keras_pixel.sampling`).
            progress: show a progress bar.
            labels: for conditional models (required there): the class of each
                image ``[num]`` (or one int for all), or condition vectors.

        Returns:
            numpy ``[num, H, W, C]`` of :attr:`image_dtype` (uint8 for 8-bit images).
        """
        num = check_positive_int(num, "num")
        condition = self._check_labels(labels, num)
        temperature = check_temperature(temperature)
        method = self._sampling_method(method)
        canvas = np.zeros((num, *self._image_shape), self.image_dtype)
        return sampling.run_sampler(
            self, canvas, 0, sampling.make_seed(seed), temperature, method, progress, condition
        )

    def complete(
        self,
        images,
        num_known_rows,
        temperature=1.0,
        seed=None,
        method=None,
        progress=False,
        labels=None,
    ):
        """Keeps the first ``num_known_rows`` rows of ``images`` and samples the rest.

        Args:
            images: integer ``[B, H, W, C]``; rows from ``num_known_rows`` on are ignored.
            num_known_rows: int in [0, H].
            temperature: as in :meth:`sample`.
            seed: as in :meth:`sample`.
            method: as in :meth:`sample`.
            progress: as in :meth:`sample`.
            labels: as in :meth:`sample`, one per image.

        Returns:
            numpy ``[B, H, W, C]`` of :attr:`image_dtype` whose first
            ``num_known_rows`` rows equal those of ``images``.
        """
        images = self._check(images)
        condition = self._check_labels(labels, len(images))
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
        method = self._sampling_method(method)
        canvas = images.copy()
        canvas[:, num_known_rows:] = 0
        if len(canvas) == 0:
            return canvas
        start = int(num_known_rows) * width * channels
        return sampling.run_sampler(
            self,
            canvas,
            start,
            sampling.make_seed(seed),
            temperature,
            method,
            progress,
            condition,
        )

    def export(
        self, filepath, format="tf_saved_model", verbose=None, input_signature=None, **kwargs
    ):
        """Keras's ``Model.export``, writing the package's serving artifacts: their
        inputs are uint8 images (and labels), and a SavedModel also gets the
        ``sample`` and ``complete`` signatures. See
        :func:`keras_pixel.export.export_model` for the formats
        (``"tf_saved_model"``, ``"litert"``, ``"onnx"``) and the keyword
        arguments (``overwrite``, ``max_images``, ...).

        Returns:
            The list of paths written.
        """
        from keras_pixel.export import export_model

        del verbose
        if input_signature is not None:
            raise ValueError(
                f"{type(self).__name__}.export has fixed signatures (uint8 images "
                f"{tuple(self.image_shape)}, labels where conditional); input_signature "
                "is not taken."
            )
        return export_model(self, filepath, format, **kwargs)

    def get_config(self):
        config = super().get_config()
        config["image_shape"] = list(self._image_shape)
        if self.num_classes is not None:
            config["num_classes"] = self.num_classes
        if self.condition_dim is not None:
            config["condition_dim"] = self.condition_dim
        return config
