"""Autoregressive image models."""

from keras_pixel.models.base import AutoregressiveModel
from keras_pixel.models.gated_pixelcnn import GatedPixelCNN
from keras_pixel.models.pixelcnn import PixelCNN
from keras_pixel.models.pixelcnn_pp import PixelCNNPlusPlus
from keras_pixel.models.pixelrnn import PixelRNN

__all__ = ["AutoregressiveModel", "GatedPixelCNN", "PixelCNN", "PixelCNNPlusPlus", "PixelRNN"]
