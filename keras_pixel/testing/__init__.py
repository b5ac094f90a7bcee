"""Checks of the autoregressive property and of cached steps, for the test suite and
for your own layers and models."""

from keras_pixel.testing.causality import (
    assert_autoregressive,
    assert_layer_causal,
    layer_dependency_mask,
)
from keras_pixel.testing.contract import assert_model_contract
from keras_pixel.testing.incremental import assert_steps_match_call
from keras_pixel.testing.layers import assert_layer_contract

__all__ = [
    "assert_autoregressive",
    "assert_layer_contract",
    "assert_layer_causal",
    "assert_model_contract",
    "assert_steps_match_call",
    "layer_dependency_mask",
]
