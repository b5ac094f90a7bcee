"""The model contract (keras_pixel.testing.assert_model_contract) for K other than
256 in every categorical family, and the harness itself; each family's test file
runs it on its own configurations."""

import numpy as np
import pytest

from keras_pixel.models import GatedPixelCNN, PixelCNN, PixelRNN
from keras_pixel.testing import assert_model_contract

FAMILIES = {
    "pixelcnn_k2": lambda: PixelCNN(
        (5, 5, 1), num_layers=1, filters=4, output_filters=8, num_values=2
    ),
    "gated_k512": lambda: GatedPixelCNN(
        2, 4, image_shape=(4, 4, 1), output_filters=8, num_values=512
    ),
    "row_lstm_k3": lambda: PixelRNN(
        "row_lstm", 1, 3, image_shape=(4, 4, 3), output_filters=6, num_values=3
    ),
    "diagonal_bilstm_k2": lambda: PixelRNN(
        "diagonal_bilstm", 2, 4, image_shape=(4, 5, 1), output_filters=8, num_values=2
    ),
}


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_the_model_contract_for_k_other_than_256(family):
    model = FAMILIES[family]()
    assert_model_contract(model, labels=1 if model.conditional else None)


def test_the_contract_catches_a_model_that_sees_the_future():
    class Leaky(PixelCNN):
        def network(self, x, condition, layer_call):
            return super().network(x[:, ::-1, ::-1], condition, layer_call)

    model = Leaky((4, 4, 1), num_layers=1, filters=4, output_filters=8)
    with pytest.raises(AssertionError, match="Not causal|ignores its past"):
        assert_model_contract(model, cached=False)
    assert np.isfinite(model.log_prob(np.zeros((1, 4, 4, 1), np.uint8))).all()


def test_subpixel_log_prob_still_works_with_a_deprecation_warning():
    model = FAMILIES["pixelcnn_k2"]()
    images = np.random.default_rng(0).integers(0, 2, (2, 5, 5, 1)).astype("uint8")
    outputs = model(images)
    with pytest.warns(DeprecationWarning, match="likelihood.log_prob"):
        old = model.subpixel_log_prob(outputs, images)
    np.testing.assert_array_equal(old, model.likelihood.log_prob(outputs, images))
