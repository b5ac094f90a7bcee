"""Weights written by other code, converted into zoo models.

``openai-pixelcnn-pp``: the TensorFlow 1 checkpoints of openai/pixel-cnn's
PixelCNN++ (the paper's CIFAR-10 model among them), see
:mod:`keras_pixel.convert.openai_pixelcnn_pp`.
"""

from keras_pixel.convert.openai_pixelcnn_pp import (
    CheckpointMismatchError,
    convert_checkpoint,
    is_checkpoint,
    load_openai_checkpoint,
    resolve_checkpoint,
)

FORMATS = {"openai-pixelcnn-pp": convert_checkpoint}
"""Source formats of ``keras-pixel convert``: name -> converter."""

__all__ = [
    "FORMATS",
    "CheckpointMismatchError",
    "convert_checkpoint",
    "is_checkpoint",
    "load_openai_checkpoint",
    "resolve_checkpoint",
]
