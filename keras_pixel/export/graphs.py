"""The computations an exported artifact serves, as Keras models and tf functions.

Every format exports one of these graphs:

* :class:`LogLikelihood`: uint8 images (and labels) -> log-likelihood per image
  in nats; the ``serving_default`` signature, the LiteRT and the ONNX model.
* :class:`NextSubpixel`: a canvas and a raster position -> the log-probs of all
  values of that subpixel; the LiteRT graph an on-device loop drives to sample.
* :func:`serving_functions`: the SavedModel signatures (log-likelihood,
  ``sample``, ``complete``) with their named ``TensorSpec``s and input checks.
"""

import keras
import tensorflow as tf
from keras import ops

from keras_pixel import sampling
from keras_pixel.layers.incremental import Position
from keras_pixel.losses import nats_to_bits_per_dim
from keras_pixel.validation import MAX_IMAGES, MIN_TEMPERATURE


def condition_spec(model):
    """The ``TensorSpec`` of a conditional model's labels (None if unconditional):
    int32 class ids ``[B]`` or float32 condition vectors ``[B, D]``."""
    if not model.conditional:
        return None
    if model.num_classes is not None:
        return tf.TensorSpec([None], tf.int32, name="labels")
    return tf.TensorSpec([None, model.condition_dim], tf.float32, name="labels")


def images_spec(model, name="images"):
    """uint8 ``[B, H, W, C]``: the batch is free, the image shape fixed."""
    return tf.TensorSpec([None, *model.image_shape], model.image_dtype, name=name)


class _Wrapper(keras.Model):
    """A Keras model around an :class:`~keras_pixel.models.AutoregressiveModel`
    (its weights shared, not copied), exported with explicit uint8 specs."""

    def __init__(self, model, **kwargs):
        if not model.built:
            raise ValueError(f"Build {model.name} (call it on a batch) before exporting it.")
        super().__init__(**kwargs)
        self.model = model
        self.built = True

    @property
    def _default_save_signature(self):
        return None


class LogLikelihood(_Wrapper):
    """Wraps a model into ``images [, labels] -> log p(images)`` in nats, float32 ``[B]``.

    Args:
        model: an :class:`~keras_pixel.models.AutoregressiveModel` (its weights
            are shared, not copied).
    """

    def __init__(self, model, **kwargs):
        kwargs.setdefault("name", f"{model.name}_log_likelihood")
        super().__init__(model, **kwargs)

    def call(self, images, labels=None):
        inputs = images if labels is None else (images, labels)
        outputs = self.model(inputs, training=False)
        log_probs = self.model.likelihood.log_prob(outputs, images, portable=True)
        return ops.sum(log_probs, axis=(1, 2, 3))


class NextSubpixel(_Wrapper):
    """Wraps a model into one sampling step: ``canvas, position [, labels] ->
    log-probs`` of every value of subpixel ``position``, float32 ``[B, num_values]``.

    ``position`` is the raster index ``t = (i * W + j) * C + c`` (int32 scalar);
    ``canvas`` uint8 ``[B, H, W, C]`` holds every subpixel before ``t`` (later ones
    are ignored). A loop that draws subpixel ``t`` from these log-probs, writes it
    into the canvas and moves to ``t + 1`` samples the model exactly; temperature
    ``T`` divides the log-probs (exact for the softmax families).
    """

    def __init__(self, model, **kwargs):
        kwargs.setdefault("name", f"{model.name}_next_subpixel")
        super().__init__(model, **kwargs)

    def call(self, canvas, position, labels=None):
        _, width, channels = self.model.image_shape
        position = ops.cast(ops.reshape(position, ()), "int32")
        i, j, c = Position.from_index(position, width, channels)
        inputs = canvas if labels is None else (canvas, labels)
        outputs = self.model(inputs, training=False)
        return self.model.likelihood.value_log_probs(outputs, canvas, i, j, c)


def _check_labels(model, labels, batch):
    """Graph assertions on a conditional model's labels (int ids in range, one per image)."""
    checks = [
        tf.debugging.assert_equal(
            tf.shape(labels)[0], batch, message="labels must have one entry per image"
        )
    ]
    if model.num_classes is not None:
        checks += [
            tf.debugging.assert_non_negative(labels, message="labels must be class ids >= 0"),
            tf.debugging.assert_less(
                labels,
                tf.constant(model.num_classes, tf.int32),
                message=f"labels must be class ids < {model.num_classes}",
            ),
        ]
    else:
        checks.append(tf.debugging.assert_all_finite(labels, "condition vectors must be finite"))
    return checks


def _check_images(model, images):
    if model.num_values == 256:
        return []
    return [
        tf.debugging.assert_less(
            tf.cast(images, tf.int32),
            model.num_values,
            message=f"images must have values < {model.num_values}",
        )
    ]


def _check_sampling(seed, temperature):
    return [
        tf.debugging.assert_non_negative(seed, message="seed must be >= 0"),
        tf.debugging.assert_greater_equal(
            temperature, MIN_TEMPERATURE, message=f"temperature must be >= {MIN_TEMPERATURE}"
        ),
        tf.debugging.assert_all_finite(temperature, "temperature must be finite"),
    ]


def serving_functions(model, method="cached", jit_compile=True, max_images=MAX_IMAGES):
    """The SavedModel signatures of ``model``: ``{name: (fn, input_signature)}``.

    * ``serving_default``: ``images`` uint8 ``[B, H, W, C]`` (``labels``) ->
      ``log_prob`` (nats per image, float32 ``[B]``) and ``bits_per_dim``.
    * ``sample``: ``num_images`` int32, ``seed`` int64 (>= 0), ``temperature``
      float32 (``labels``) -> ``images`` uint8 ``[num_images, H, W, C]``; the same
      images as ``model.sample(num_images, temperature, seed)``.
    * ``complete``: ``images`` uint8, ``num_known_rows`` int32 in ``[0, H]``,
      ``seed``, ``temperature`` (``labels``) -> ``images`` whose first
      ``num_known_rows`` rows are the input's.

    ``labels`` (conditional models only) are int32 class ids ``[B]`` or float32
    vectors ``[B, D]``. Bad values (a seed below 0, rows out of range, labels out
    of range) fail with an ``InvalidArgumentError`` naming the input; the
    computation behind each signature is XLA-compiled when ``jit_compile``.
    ``max_images`` caps ``num_images`` of ``sample`` and the batch of ``complete``
    (fixed at export: one request must not be able to exhaust the server's memory);
    more is refused with an ``InvalidArgumentError`` before anything is allocated.
    """
    if isinstance(max_images, bool) or not isinstance(max_images, int) or max_images < 1:
        raise ValueError(f"max_images must be a positive int, got {max_images!r}.")
    too_many = f"at most {max_images} images per request (the max_images set at export)"
    height, width, channels = model.image_shape
    num_dims = height * width * channels
    labels_spec = condition_spec(model)
    log_likelihood = LogLikelihood(model)
    scalar = lambda dtype, name: tf.TensorSpec([], dtype, name=name)  # noqa: E731

    @tf.function(jit_compile=jit_compile)
    def compiled_log_prob(images, labels):
        return log_likelihood(images, labels)

    def log_prob(images, labels=None):
        with tf.control_dependencies(
            _check_images(model, images)
            + ([] if labels is None else _check_labels(model, labels, tf.shape(images)[0]))
        ):
            nats = compiled_log_prob(images, labels)
        return {"log_prob": nats, "bits_per_dim": nats_to_bits_per_dim(-nats, num_dims)}

    def fill(canvas, start, seed, temperature, labels):
        condition = None if labels is None else model._condition(labels)
        with tf.control_dependencies(_check_sampling(seed, temperature)):
            canvas = sampling.fill_in_graph(
                model,
                tf.cast(canvas, tf.int32),
                start,
                sampling.seed_from_tensor(seed),
                tf.cast(temperature, tf.float32),
                None if condition is None else tf.cast(condition, tf.float32),
                method,
            )
        return {"images": tf.cast(canvas, model.image_dtype)}

    def sample(num_images, seed, temperature, labels=None):
        checks = [
            tf.debugging.assert_positive(num_images, message="num_images must be >= 1"),
            tf.debugging.assert_less_equal(num_images, max_images, message=too_many),
        ]
        if labels is not None:
            checks += _check_labels(model, labels, num_images)
        with tf.control_dependencies(checks):
            canvas = tf.zeros([num_images, height, width, channels], tf.int32)
        return fill(canvas, 0, seed, temperature, labels)

    def complete(images, num_known_rows, seed, temperature, labels=None):
        checks = _check_images(model, images) + [
            tf.debugging.assert_less_equal(tf.shape(images)[0], max_images, message=too_many),
            tf.debugging.assert_non_negative(num_known_rows, "num_known_rows must be >= 0"),
            tf.debugging.assert_less_equal(
                num_known_rows, height, f"num_known_rows must be <= {height}"
            ),
        ]
        if labels is not None:
            checks += _check_labels(model, labels, tf.shape(images)[0])
        with tf.control_dependencies(checks):
            known = tf.range(height) < num_known_rows
            canvas = tf.where(known[None, :, None, None], tf.cast(images, tf.int32), 0)
        return fill(canvas, num_known_rows * width * channels, seed, temperature, labels)

    sampling_inputs = [scalar(tf.int64, "seed"), scalar(tf.float32, "temperature")]
    signatures = {
        "serving_default": (log_prob, [images_spec(model)]),
        "sample": (sample, [scalar(tf.int32, "num_images"), *sampling_inputs]),
        "complete": (
            complete,
            [images_spec(model), scalar(tf.int32, "num_known_rows"), *sampling_inputs],
        ),
    }
    if labels_spec is not None:
        signatures = {name: (fn, [*spec, labels_spec]) for name, (fn, spec) in signatures.items()}
    return signatures
