"""keras-pixel: autoregressive image models (the PixelCNN family) in Keras 3."""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from keras_pixel import data, distributions, layers, models, zoo  # noqa: E402

__version__ = "0.1.0"

__all__ = ["data", "distributions", "layers", "models", "zoo", "__version__"]
