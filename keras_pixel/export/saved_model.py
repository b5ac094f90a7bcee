"""SavedModel export in TF Serving's layout: ``<base>/<model_name>/<version>/``."""

import os
import re
import shutil
import uuid

import keras
import tensorflow as tf

from keras_pixel.export.graphs import serving_functions

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def _check_version(version):
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(
            f"version must be a positive int (TF Serving's folder name), got {version!r}."
        )
    return version


def _check_name(name):
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"model_name must be letters, digits, '_', '-' or '.', got {name!r}.")
    return name


def version_path(base_dir, model_name, version):
    """``<base_dir>/<model_name>/<version>``: where TF Serving looks for a version."""
    return os.path.join(os.fspath(base_dir), _check_name(model_name), str(_check_version(version)))


def publish_atomically(write, target, overwrite=False):
    """Runs ``write(tmp)`` on a fresh temporary path beside ``target``, then moves
    it to ``target`` in one rename; a failure leaves nothing at ``target``.

    Args:
        write: callable that writes the artifact (a folder or a file) at the path
            it is given.
        target: the final path.
        overwrite: replace an existing ``target``; otherwise an existing one
            raises ``FileExistsError`` before anything is written.
    """
    target = os.path.abspath(os.fspath(target))
    if os.path.lexists(target) and not overwrite:
        raise FileExistsError(f"{target} already exists; pass overwrite=True to replace it.")
    parent = os.path.dirname(target)
    os.makedirs(parent, exist_ok=True)
    # A dot name (TF Serving only loads folders named by a number) that keeps the
    # target's extension (exporters check it).
    tmp = os.path.join(parent, f".tmp-{uuid.uuid4().hex}-{os.path.basename(target)}")
    old = None
    try:
        write(tmp)
        if os.path.lexists(target):
            old = os.path.join(parent, f".{os.path.basename(target)}.old-{uuid.uuid4().hex}")
            os.rename(target, old)
        os.rename(tmp, target)
    finally:
        for leftover in (tmp, old):
            if leftover and os.path.isdir(leftover):
                shutil.rmtree(leftover, ignore_errors=True)
            elif leftover and os.path.lexists(leftover):
                os.remove(leftover)
    return target


def keras_export_atomically(wrapper, filepath, format, input_signature, overwrite, **kwargs):
    """``wrapper.export(filepath, format=format, ...)`` (Keras's own exporter) written
    through :func:`publish_atomically`."""

    def write(path):
        wrapper.export(
            path, format=format, input_signature=input_signature, verbose=False, **kwargs
        )

    return publish_atomically(write, filepath, overwrite)


def export_saved_model(
    model,
    base_dir,
    model_name=None,
    version=1,
    overwrite=False,
    method="cached",
    jit_compile=True,
):
    """Exports ``model`` as a SavedModel for TF Serving.

    Writes ``<base_dir>/<model_name>/<version>/`` with the signatures of
    :func:`~keras_pixel.export.graphs.serving_functions`: ``serving_default``
    (log-likelihood), ``sample`` and ``complete``. The artifact needs only
    TensorFlow to load (``tf.saved_model.load``), and TF Serving serves it as is.

    Args:
        model: a built :class:`~keras_pixel.models.AutoregressiveModel`.
        base_dir: TF Serving's model base path (the folder of model folders).
        model_name: the served model's name (default: ``model.name``).
        version: positive int, the version folder.
        overwrite: replace an existing version folder (refused otherwise).
        method: the sampler behind ``sample``/``complete``: ``"cached"`` or
            ``"naive"`` (both give the same images).
        jit_compile: XLA-compile each signature's computation.

    Returns:
        The path of the version folder.
    """
    model_name = model.name if model_name is None else model_name
    target = version_path(base_dir, model_name, version)
    if os.path.lexists(target) and not overwrite:
        raise FileExistsError(
            f"{target} already exists; pass overwrite=True (--overwrite) to replace it, "
            "or export a new version."
        )
    if method == "cached" and not model.supports_cached_sampling:
        method = "naive"

    def write(path):
        archive = keras.export.ExportArchive()
        archive.track(model)
        for name, (fn, spec) in serving_functions(model, method, jit_compile).items():
            archive.add_endpoint(name, fn, input_signature=spec)
        archive.write_out(path, verbose=False)

    return publish_atomically(write, target, overwrite)


def saved_model_summary(path):
    """``{signature: {"inputs": {name: (dtype, shape)}, "outputs": {...}}}`` of an
    exported SavedModel, read back with TensorFlow alone."""
    loaded = tf.saved_model.load(os.fspath(path))
    summary = {}
    for name, fn in loaded.signatures.items():
        inputs = fn.structured_input_signature[1]
        summary[name] = {
            "inputs": {k: (v.dtype.name, v.shape.as_list()) for k, v in inputs.items()},
            "outputs": {
                k: (v.dtype.name, v.shape.as_list()) for k, v in fn.structured_outputs.items()
            },
        }
    return summary
