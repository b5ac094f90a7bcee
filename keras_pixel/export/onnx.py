"""ONNX export of the log-likelihood graph, through Keras's own exporter (tf2onnx)."""

import os

from keras_pixel.export.graphs import LogLikelihood, condition_spec, images_spec
from keras_pixel.export.saved_model import keras_export_atomically
from keras_pixel.validation import require


def export_onnx(model, filepath, overwrite=False, opset_version=None):
    """Writes an ``.onnx`` file: ``images`` uint8 ``[B, H, W, C]`` (``labels``) ->
    log-likelihood in nats, float32 ``[B]`` (batch free), for ``onnxruntime``.

    Args:
        model: a built :class:`~keras_pixel.models.AutoregressiveModel`.
        filepath: the ``.onnx`` file to write.
        overwrite: replace an existing file (refused otherwise).
        opset_version: the ONNX opset (default: tf2onnx's).

    Returns:
        The absolute path written.

    Raises:
        MissingDependencyError: without ``onnx`` / ``tf2onnx`` (the ``export``
            extra).
    """
    filepath = os.fspath(filepath)
    if not filepath.endswith(".onnx"):
        raise ValueError(f"An ONNX file must end in .onnx, got {filepath}.")
    require(("onnx", "tf2onnx"), "ONNX export", "export")
    labels = condition_spec(model)
    specs = [images_spec(model)] + ([] if labels is None else [labels])

    return keras_export_atomically(
        LogLikelihood(model), filepath, "onnx", specs, overwrite, opset_version=opset_version
    )
