"""keras-pixel: autoregressive image models (the PixelCNN family) in Keras 3.

``import keras_pixel`` registers every serializable layer, model,
distribution and training schedule with Keras (as ``import keras_hub`` does), so
``keras.models.load_model("m.keras")`` works with nothing else imported. The
other submodules (``keras_pixel.zoo``, ``keras_pixel.export``, ...) load on
first use.
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


def _check_backend():
    import keras

    if keras.backend.backend() != "tensorflow":
        raise ImportError(
            "keras-pixel needs the TensorFlow backend of Keras; set KERAS_BACKEND=tensorflow "
            f"(now {keras.backend.backend()!r})."
        )


_register_serializables()
