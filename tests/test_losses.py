import keras
import numpy as np

from keras_pixel.distributions.logistic_mixture import num_mixture_params
from keras_pixel.losses import CategoricalNLL, DiscretizedLogisticMixtureNLL
from keras_pixel.models import PixelCNN, PixelCNNPlusPlus


def test_categorical_loss_is_the_models_nll():
    model = PixelCNN((5, 5, 3), num_layers=1, filters=6, output_filters=12)
    x = np.random.default_rng(0).integers(0, 256, (3, 5, 5, 3), dtype=np.uint8)
    loss = CategoricalNLL(reduction=None)(x, model(x))
    np.testing.assert_allclose(loss, -model.log_prob(x), rtol=1e-5)


def test_mixture_loss_is_the_models_nll_and_trains_a_functional_model(digits):
    pp = PixelCNNPlusPlus(1, 1, 8, 3, dropout=0.0, image_shape=(4, 4, 3))
    x = np.random.default_rng(1).integers(0, 256, (2, 4, 4, 3), dtype=np.uint8)
    loss = DiscretizedLogisticMixtureNLL(3, 3, reduction=None)(x, pp(x))
    np.testing.assert_allclose(loss, -pp.log_prob(x), rtol=1e-5)

    train, _ = digits
    # The simplest model with a mixture head: per-pixel parameters from biases alone
    # (the input is zeroed): one mixture shared by every pixel.
    inputs = keras.Input((8, 8, 1))
    params = keras.layers.Conv2D(num_mixture_params(2, 1), 1)(inputs * 0.0)
    model = keras.Model(inputs, params)
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss=DiscretizedLogisticMixtureNLL(2, 1))
    x = train[:256]
    history = model.fit(x.astype("float32"), x, batch_size=32, epochs=10, verbose=0).history
    assert history["loss"][-1] < history["loss"][0] - 4  # 216 -> 210 nats here
    config = DiscretizedLogisticMixtureNLL(2, 1).get_config()
    assert DiscretizedLogisticMixtureNLL.from_config(config).num_logistic_mix == 2
