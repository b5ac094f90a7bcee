"""Export for serving: SavedModel for TF Serving, LiteRT and ONNX.

Every artifact computes what the Keras model computes (the exported graphs are
in :mod:`keras_pixel.export.graphs`) and is written next to its final path and
moved there in one rename, so a failed export leaves nothing behind; an overwrite
keeps the old version until the new one is in place and puts it back if that
fails; the two LiteRT files are published together or not at all.
"""

import os

from keras_pixel.export.graphs import MAX_IMAGES, LogLikelihood, NextSubpixel, serving_functions
from keras_pixel.export.litert import export_litert, litert_graph, litert_writer
from keras_pixel.export.onnx import export_onnx
from keras_pixel.export.saved_model import (
    export_saved_model,
    publish_all,
    saved_model_summary,
    saved_model_writer,
)

FORMATS = ("saved_model", "litert", "onnx")

__all__ = [
    "FORMATS",
    "LogLikelihood",
    "NextSubpixel",
    "export",
    "export_litert",
    "export_model",
    "export_onnx",
    "export_saved_model",
    "litert_graph",
    "saved_model_summary",
    "serving_functions",
]


def export(
    model,
    outdir,
    format="saved_model",
    model_name=None,
    version=1,
    overwrite=False,
    max_images=MAX_IMAGES,
):
    """Exports ``model`` into ``outdir`` in one format; what ``keras-pixel export`` runs.

    * ``"saved_model"``: ``<outdir>/<model_name>/<version>/`` (TF Serving's layout).
    * ``"litert"``: ``<outdir>/<model_name>.tflite`` (log-likelihood) and
      ``<outdir>/<model_name>_next_subpixel.tflite`` (one sampling step).
    * ``"onnx"``: ``<outdir>/<model_name>.onnx`` (log-likelihood).

    Args:
        model: a built :class:`~keras_pixel.models.AutoregressiveModel`.
        outdir: the folder to write into (created if missing).
        format: one of :data:`FORMATS`.
        model_name: the artifact's name (default: ``model.name``).
        version: the SavedModel version folder (``saved_model`` only).
        overwrite: replace existing artifacts (refused otherwise, before
            anything is written).
        max_images: the most images one SavedModel ``sample`` / ``complete``
            request may ask for.

    Returns:
        The list of paths written.
    """
    if format not in FORMATS:
        raise ValueError(f"Unknown export format {format!r}; choose one of {list(FORMATS)}.")
    name = model.name if model_name is None else model_name
    outdir = os.fspath(outdir)
    if format == "saved_model":
        return [export_saved_model(model, outdir, name, version, overwrite, max_images=max_images)]
    if format == "onnx":
        return [export_onnx(model, os.path.join(outdir, f"{name}.onnx"), overwrite)]
    return _publish_litert_pair(model, os.path.join(outdir, f"{name}.tflite"), overwrite)


def _publish_litert_pair(model, filepath, overwrite):
    """``filepath`` (``.tflite``, the log-likelihood graph) and beside it
    ``<stem>_next_subpixel.tflite`` (one sampling step): one artifact, so both
    are published, or neither."""
    stem = filepath[: -len(".tflite")] if filepath.endswith(".tflite") else filepath
    paths = {"log_likelihood": filepath, "next_subpixel": f"{stem}_next_subpixel.tflite"}
    return publish_all(
        {path: litert_writer(model, path, graph) for graph, path in paths.items()}, overwrite
    )


#: ``model.export``'s formats (Keras's names).
KERAS_FORMATS = ("tf_saved_model", "litert", "onnx")


def export_model(
    model,
    filepath,
    format="tf_saved_model",
    overwrite=True,
    max_images=MAX_IMAGES,
    method="cached",
    jit_compile=True,
    opset_version=None,
):
    """What ``model.export(filepath, format=...)`` runs for every model of the
    package: Keras's call, this package's artifacts, at ``filepath`` itself.

    * ``"tf_saved_model"``: a SavedModel folder with the signatures
      ``serving_default`` (log-likelihood), ``sample`` and ``complete``
      (:func:`export_saved_model` writes the same into TF Serving's layout);
    * ``"litert"``: ``filepath`` (``.tflite``, the log-likelihood graph) and,
      beside it, ``<stem>_next_subpixel.tflite`` (one sampling step), published
      together;
    * ``"onnx"``: ``filepath`` (``.onnx``, the log-likelihood graph).

    Args:
        model: a built :class:`~keras_pixel.models.AutoregressiveModel`.
        filepath: the SavedModel folder, ``.tflite`` or ``.onnx`` file.
        format: ``"tf_saved_model"``, ``"litert"`` or ``"onnx"``.
        overwrite: replace what is there (as Keras's ``export`` does); the old
            version stays until the new one is complete. False refuses.
        max_images: the most images one SavedModel ``sample`` / ``complete``
            request may ask for.
        method: the sampler behind those signatures (see
            :func:`export_saved_model`).
        jit_compile: XLA-compile the SavedModel's signatures.
        opset_version: the ONNX opset.

    Returns:
        The list of paths written.
    """
    if format not in KERAS_FORMATS:
        raise ValueError(f"Unknown export format {format!r}; choose one of {list(KERAS_FORMATS)}.")
    filepath = os.fspath(filepath)
    if format == "tf_saved_model":
        write = saved_model_writer(model, method, jit_compile, max_images)
        return publish_all({filepath: write}, overwrite)
    if format == "onnx":
        return [export_onnx(model, filepath, overwrite, opset_version=opset_version)]
    return _publish_litert_pair(model, filepath, overwrite)
