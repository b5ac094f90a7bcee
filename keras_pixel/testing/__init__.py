"""Checks of the autoregressive property, for the test suite and for your own models."""

from keras_pixel.testing.causality import (
    assert_autoregressive,
    assert_layer_causal,
    layer_dependency_mask,
)

__all__ = ["assert_autoregressive", "assert_layer_causal", "layer_dependency_mask"]
