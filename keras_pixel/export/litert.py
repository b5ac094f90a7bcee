"""LiteRT (TFLite) export: the log-likelihood graph and a one-step sampling graph."""

import os

import tensorflow as tf

from keras_pixel.export.graphs import LogLikelihood, NextSubpixel, condition_spec, images_spec
from keras_pixel.export.saved_model import keras_export_writer, publish_atomically

GRAPHS = ("log_likelihood", "next_subpixel")


def litert_graph(model, graph="log_likelihood", batch_size=None):
    """The Keras model and input specs that a LiteRT export of ``graph`` converts.

    * ``"log_likelihood"``: ``images`` uint8 ``[B, H, W, C]`` (``labels``) ->
      log-likelihood in nats, float32 ``[B]``.
    * ``"next_subpixel"``: ``canvas`` uint8 ``[B, H, W, C]``, ``position`` int32
      scalar (``labels``) -> log-probs of every value of that subpixel, float32
      ``[B, num_values]`` (see :class:`~keras_pixel.export.NextSubpixel`).

    ``batch_size`` fixes ``B`` (None: ``model.litert_batch_size``, free for the
    convolutional families, 1 for PixelRNN).
    """
    if graph not in GRAPHS:
        raise ValueError(f"Unknown LiteRT graph {graph!r}; choose one of {list(GRAPHS)}.")
    batch = model.litert_batch_size if batch_size is None else batch_size
    fix = lambda spec: tf.TensorSpec([batch, *spec.shape[1:]], spec.dtype, spec.name)  # noqa: E731
    labels = condition_spec(model)
    extra = [] if labels is None else [fix(labels)]
    if graph == "log_likelihood":
        return LogLikelihood(model), [fix(images_spec(model)), *extra]
    position = tf.TensorSpec([], tf.int32, name="position")
    return NextSubpixel(model), [fix(images_spec(model, "canvas")), position, *extra]


def export_litert(model, filepath, graph="log_likelihood", overwrite=False, batch_size=None):
    """Writes a ``.tflite`` file of ``graph`` (see :func:`litert_graph`) with
    TFLite's builtin ops only, so the plain ``ai-edge-litert`` interpreter runs it
    (no TensorFlow "Flex" delegate). The batch dimension is free (the runner
    resizes the input), except where ``model.litert_batch_size`` fixes it.

    Args:
        model: a built :class:`~keras_pixel.models.AutoregressiveModel`.
        filepath: the ``.tflite`` file to write.
        graph: ``"log_likelihood"`` or ``"next_subpixel"``.
        overwrite: replace an existing file (refused otherwise).
        batch_size: fix the batch size (default: see :func:`litert_graph`).

    Returns:
        The absolute path written.
    """
    filepath = os.fspath(filepath)
    write = litert_writer(model, filepath, graph, batch_size)
    return publish_atomically(write, filepath, overwrite)


def litert_writer(model, filepath, graph="log_likelihood", batch_size=None):
    """A ``write(path)`` for :func:`~keras_pixel.export.saved_model.publish_all`
    that converts ``graph`` (see :func:`export_litert`)."""
    if not os.fspath(filepath).endswith(".tflite"):
        raise ValueError(f"A LiteRT file must end in .tflite, got {filepath}.")
    wrapper, specs = litert_graph(model, graph, batch_size)
    return keras_export_writer(
        wrapper,
        "litert",
        specs,
        target_spec={"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS]},
    )
