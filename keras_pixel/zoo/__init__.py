"""The model zoo: registered, named models (``keras_pixel.zoo.load("pixelcnn_cifar")``)."""

from keras_pixel.zoo import presets  # noqa: F401  (registers the entries)
from keras_pixel.zoo.registry import (
    SHIPPED,
    Preset,
    UnknownModelError,
    download,
    get_preset,
    info,
    list_models,
    load,
    pretrained_path,
    register,
    sha256_of,
)

__all__ = [
    "SHIPPED",
    "Preset",
    "UnknownModelError",
    "download",
    "get_preset",
    "info",
    "list_models",
    "load",
    "pretrained_path",
    "register",
    "sha256_of",
]
