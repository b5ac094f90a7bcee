"""Likelihoods of the package, built on ``tensorflow_probability.distributions``."""

from keras_pixel.distributions.categorical import (
    NUM_VALUES,
    pixel_categorical,
    sample_subpixel,
    subpixel_log_prob,
)
from keras_pixel.distributions.likelihood import (
    CategoricalLikelihood,
    Likelihood,
    LogisticMixtureLikelihood,
)
from keras_pixel.distributions.logistic_mixture import DiscretizedLogisticMixture

__all__ = [
    "CategoricalLikelihood",
    "Likelihood",
    "LogisticMixtureLikelihood",
    "DiscretizedLogisticMixture",
    "NUM_VALUES",
    "pixel_categorical",
    "sample_subpixel",
    "subpixel_log_prob",
]
