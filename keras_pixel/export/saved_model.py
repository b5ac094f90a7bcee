"""SavedModel export in TF Serving's layout: ``<base>/<model_name>/<version>/``."""

import os
import re
import shutil
import uuid

import keras
import tensorflow as tf

from keras_pixel.export.graphs import MAX_IMAGES, serving_functions

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
    it to ``target`` in one rename; see :func:`publish_all`.

    Args:
        write: callable that writes the artifact (a folder or a file) at the path
            it is given.
        target: the final path.
        overwrite: replace an existing ``target``; otherwise an existing one
            raises ``FileExistsError`` before anything is written.
    """
    return publish_all({target: write}, overwrite)[0]


def publish_all(writes, overwrite=False):
    """Publishes a set of artifacts whole or not at all, keeping what they replace
    until the new set is in place.

    Every ``write(tmp)`` runs first, each on a fresh temporary path beside its
    target; only when all have succeeded does each target move aside (to a
    hidden name) and its new version take its place, one rename each. If a
    write or a rename fails, the new versions placed so far are removed and the
    old ones are moved back: the targets are as before. The old versions are
    deleted last.

    Args:
        writes: ``{target path: write callable}``.
        overwrite: replace existing targets; otherwise an existing one raises
            ``FileExistsError`` before anything is written.

    Returns:
        The absolute target paths, in the order given.
    """
    targets = [os.path.abspath(os.fspath(t)) for t in writes]
    for target in targets:
        if os.path.lexists(target) and not overwrite:
            raise FileExistsError(f"{target} already exists; pass overwrite=True to replace it.")
    for target in targets:
        parent = os.path.dirname(target)
        ancestor = parent
        while not os.path.lexists(ancestor):
            ancestor = os.path.dirname(ancestor)
        if not os.path.isdir(ancestor):
            raise NotADirectoryError(f"Cannot export into {ancestor}: it is a file, not a folder.")
        os.makedirs(parent, exist_ok=True)
    # Dot names (TF Serving only loads folders named by a number) that keep the
    # target's extension (exporters check it).
    tmps = {
        t: os.path.join(os.path.dirname(t), f".tmp-{uuid.uuid4().hex}-{os.path.basename(t)}")
        for t in targets
    }
    olds, placed = {}, []
    try:
        for target, write in zip(targets, writes.values(), strict=True):
            write(tmps[target])
        for target in targets:
            if os.path.lexists(target):
                old = os.path.join(
                    os.path.dirname(target), f".{os.path.basename(target)}.old-{uuid.uuid4().hex}"
                )
                os.rename(target, old)
                olds[target] = old
            os.rename(tmps[target], target)
            placed.append(target)
    except BaseException:
        for target in placed:
            _remove(target)
        for target, old in olds.items():
            if not os.path.lexists(target):
                os.rename(old, target)
        raise
    finally:
        for leftover in tmps.values():
            _remove(leftover)
    for old in olds.values():
        _remove(old)
    return targets


def _remove(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        os.remove(path)


def keras_export_atomically(wrapper, filepath, format, input_signature, overwrite, **kwargs):
    """``wrapper.export(filepath, format=format, ...)`` (Keras's own exporter) written
    through :func:`publish_atomically`."""
    write = keras_export_writer(wrapper, format, input_signature, **kwargs)
    return publish_atomically(write, filepath, overwrite)


def keras_export_writer(wrapper, format, input_signature, **kwargs):
    """A ``write(path)`` for :func:`publish_all`: Keras's own exporter."""

    def write(path):
        wrapper.export(
            path, format=format, input_signature=input_signature, verbose=False, **kwargs
        )

    return write


def export_saved_model(
    model,
    base_dir,
    model_name=None,
    version=1,
    overwrite=False,
    method="cached",
    jit_compile=True,
    max_images=MAX_IMAGES,
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
        max_images: the most images one ``sample`` / ``complete`` request may
            ask for (refused beyond).

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
    write = saved_model_writer(model, method, jit_compile, max_images)
    return publish_atomically(write, target, overwrite)


def saved_model_writer(model, method="cached", jit_compile=True, max_images=MAX_IMAGES):
    """A ``write(path)`` for :func:`publish_all`: a SavedModel at ``path`` with the
    signatures of :func:`~keras_pixel.export.graphs.serving_functions` (arguments
    as in :func:`export_saved_model`)."""
    if method == "cached" and not model.supports_cached_sampling:
        method = "naive"

    def write(path):
        write_signatures(model, serving_functions(model, method, jit_compile, max_images), path)

    return write


def write_signatures(model, functions, path):
    """Writes a SavedModel of ``model``'s variables and ``functions``
    (``{name: (fn, input_signature)}``, as from
    :func:`~keras_pixel.export.graphs.serving_functions`) as its signatures, at ``path``.

    Each function is traced once, here. ``keras.export.ExportArchive`` traced a
    function once to list its variables, and ``tf.saved_model.save`` again
    inside its own graph (tracing is cached per graph context): a sampler's
    trace, every layer's cached step in a ``tf.while_loop``, was most of an
    export's time. So each endpoint only calls the function's concrete
    function, and its own traces are a single call.
    """
    archive = keras.export.ExportArchive()
    archive.track(model)
    for name, (fn, spec) in functions.items():
        traced = tf.function(fn, input_signature=spec, autograph=False).get_concrete_function()
        archive.add_endpoint(name, _calling(traced), input_signature=spec)
    archive.write_out(path, verbose=False)


def _calling(concrete):
    return lambda *args: concrete(*args)


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
