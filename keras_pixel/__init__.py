"""keras-pixel: autoregressive image models (the PixelCNN family) in Keras 3.

Submodules load on first use (``keras_pixel.zoo``, ``keras_pixel.models``, ...),
so ``import keras_pixel`` and ``keras-pixel --help`` do not import TensorFlow.
"""

import importlib
import os

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
)

__all__ = [*_SUBMODULES, "__version__"]


def __getattr__(name):
    if name in _SUBMODULES:
        module = importlib.import_module(f"keras_pixel.{name}")
        _check_backend()
        return module
    raise AttributeError(f"module 'keras_pixel' has no attribute {name!r}")


def _check_backend():
    import keras

    if keras.backend.backend() != "tensorflow":
        raise ImportError(
            "keras-pixel needs the TensorFlow backend of Keras; set KERAS_BACKEND=tensorflow "
            f"(now {keras.backend.backend()!r})."
        )
