"""keras-pixel: autoregressive image models (the PixelCNN family) in Keras 3.

``import keras_pixel`` registers every serializable layer, model,
distribution and training schedule with Keras (as ``import keras_hub`` does), so
``keras.models.load_model("m.keras")`` works with nothing else imported. The
other submodules (``keras_pixel.zoo``, ``keras_pixel.export``, ...) load on
first use.
"""

import contextlib
import importlib
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

__version__ = "0.1.0"

_SUBMODULES = (
    "data",
    "distributions",
    "images",
    "layers",
    "models",
    "sampling",
    "testing",
    "export",
    "zoo",
    "convert",
)

__all__ = [*_SUBMODULES, "__version__"]


def _register_serializables():
    for name in ("layers", "distributions", "models", "training"):
        importlib.import_module(f"keras_pixel.{name}")
    _check_backend()


def __getattr__(name):
    if name in _SUBMODULES:
        module = importlib.import_module(f"keras_pixel.{name}")
        _check_backend()
        return module
    raise AttributeError(f"module 'keras_pixel' has no attribute {name!r}")


def __dir__():
    """``__all__`` and the submodules loaded so far, for tab completion (not the
    standard-library modules this file imports)."""
    loaded = (
        n for n, v in globals().items() if getattr(v, "__name__", "").startswith(__name__ + ".")
    )
    return sorted({*__all__, *loaded})


def _check_backend():
    import keras

    if keras.backend.backend() != "tensorflow":
        raise ImportError(
            "keras-pixel needs the TensorFlow backend of Keras; set KERAS_BACKEND=tensorflow "
            f"(now {keras.backend.backend()!r})."
        )


def _quiet():
    """Whether this process is the ``keras-pixel`` command without ``--verbose``
    before its COMMAND."""
    if os.path.basename(sys.argv[0]) != "keras-pixel":
        return False
    args = sys.argv[1:]
    command = next((k for k, a in enumerate(args) if not a.startswith("-")), len(args))
    return "--verbose" not in args[:command]


def _quiet_command_line():
    """In the ``keras-pixel`` command (unless ``--verbose`` comes before its
    COMMAND), TensorFlow is imported and its devices listed with standard error
    sent to /dev/null: its start-up lines (oneDNN, CUDA stubs, CPU features) are
    written before its logging is configured, so ``TF_CPP_MIN_LOG_LEVEL`` does
    not reach them. The package imports TensorFlow before the command's
    ``main`` runs, hence here; a library user's imports are left alone."""
    if not _quiet() or "tensorflow" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            import tensorflow as tf

            tf.config.list_physical_devices()
    finally:
        os.dup2(saved, 2)
        os.close(saved)


@contextlib.contextmanager
def _native_stderr_to_devnull():
    """In the quiet ``keras-pixel`` command (see :func:`_quiet`), while
    TensorFlow runs a sampler: what its C++ code writes to file descriptor 2
    goes to /dev/null, while Python's ``sys.stderr`` (progress bars, warnings,
    tracebacks) still reaches the terminal. XLA's persistent compilation cache
    reads each entry as text first and logs "Error parsing text-format
    tensorflow.XlaSerializedCacheEntry" through absl, which neither
    ``TF_CPP_MIN_LOG_LEVEL`` nor Python can silence, before it reads it as the
    binary it is; a warm ``keras-pixel sample`` printed two such lines."""
    if not _quiet():
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    python_stderr = sys.stderr
    sys.stderr = os.fdopen(os.dup(saved), "w", buffering=1)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        sys.stderr.close()
        sys.stderr = python_stderr


def _sample_command():
    """Whether this process is ``keras-pixel sample``: it turns on XLA's
    persistent compilation cache before TensorFlow is imported, imports
    TensorFlow only without a compiled sampler (:mod:`keras_pixel.sampler_aot`)
    and registers the serializables only if it builds a model (a cached sampler
    needs none of them; see :mod:`keras_pixel.sampler_cache`)."""
    if os.path.basename(sys.argv[0]) != "keras-pixel":
        return False
    args = sys.argv[1:]
    return next((a for a in args if not a.startswith("-")), None) == "sample"


if not _sample_command():
    _quiet_command_line()
    _register_serializables()
elif "tensorflow" not in sys.modules:
    # `sample` imports TensorFlow (quietly) only if it has no compiled sampler.
    from keras_pixel.sampler_cache import enable_xla_cache

    enable_xla_cache()
