"""The model zoo: registered, named models (``keras_pixel.zoo.load("pixelcnn_cifar")``)."""

from keras_pixel.zoo import presets  # noqa: F401  (registers the entries)
from keras_pixel.zoo.registry import (
    Preset,
    UnknownModelError,
    get_preset,
    list_models,
    load,
    register,
)

__all__ = ["Preset", "UnknownModelError", "get_preset", "list_models", "load", "register"]
