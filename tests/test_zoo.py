import warnings

import numpy as np
import pytest
from zoo_sizes import SMALL

from keras_pixel import zoo
from keras_pixel.models import AutoregressiveModel, PixelCNN
from keras_pixel.testing import assert_autoregressive


def test_registered_entries():
    names = zoo.list_models()
    assert {
        "pixelcnn_mnist",
        "pixelcnn_cifar",
        "pixelcnn_digits",
        "gated_pixelcnn_mnist",
        "gated_pixelcnn_cifar",
        "gated_pixelcnn_mnist_conditional",
    } <= set(names)
    assert names == sorted(names)


@pytest.mark.parametrize("name", zoo.list_models())
def test_every_entry_builds_and_is_causal(name):
    model = zoo.load(name, weights=None, **SMALL.get(name, {}))
    assert isinstance(model, AutoregressiveModel)
    log_prob_fn = None
    if model.conditional:
        labels = np.arange(2) % model.num_classes
        log_prob_fn = lambda x: model.log_prob(x, reduce=False, labels=labels)  # noqa: E731
    assert_autoregressive(model, num_positions=4, log_prob_fn=log_prob_fn)


def test_full_size_configurations():
    cifar = zoo.get_preset("pixelcnn_cifar")
    assert cifar.config["image_shape"] == (32, 32, 3) and cifar.config["num_layers"] == 15
    assert zoo.get_preset("pixelcnn_mnist").config["image_shape"] == (28, 28, 1)
    model = zoo.load("pixelcnn_mnist")
    assert model.image_shape == (28, 28, 1)


def test_unknown_name_lists_close_matches():
    with pytest.raises(zoo.UnknownModelError, match="pixelcnn_mnist") as info:
        zoo.load("pixelcnn_mnst")
    assert "Did you mean" in str(info.value)
    assert isinstance(info.value, KeyError) and isinstance(info.value, ValueError)


def test_overrides_and_unknown_overrides():
    model = zoo.load("pixelcnn_digits", weights=None, num_layers=1, filters=4)
    assert model.num_layers == 1 and model.filters == 4
    with pytest.raises(ValueError, match="num_layer"):
        zoo.load("pixelcnn_digits", num_layer=1)


def test_pretrained_weights_absent_is_a_clear_error():
    with pytest.raises(ValueError, match="No pretrained weights"):
        zoo.load("pixelcnn_cifar", weights="pretrained")


def test_weights_from_files(tmp_path):
    x = np.random.default_rng(0).integers(0, 256, (2, 8, 8, 1), dtype=np.uint8)
    model = zoo.load("pixelcnn_digits", weights=None, num_layers=1)
    model.save_weights(tmp_path / "w.weights.h5")
    model.save(tmp_path / "m.keras")
    for path in (tmp_path / "w.weights.h5", tmp_path / "m.keras"):
        loaded = zoo.load("pixelcnn_digits", weights=path, num_layers=1)
        np.testing.assert_array_equal(loaded.log_prob(x), model.log_prob(x))


def test_bad_weight_files_are_rejected(tmp_path):
    corrupt = tmp_path / "bad.weights.h5"
    corrupt.write_bytes(b"not an hdf5 file")
    with pytest.raises(ValueError):
        zoo.load("pixelcnn_digits", weights=corrupt)
    other = zoo.load("pixelcnn_digits", weights=None, num_layers=1)
    other.save(tmp_path / "other.keras")
    with pytest.raises(ValueError, match="different architecture"):
        zoo.load("pixelcnn_digits", weights=tmp_path / "other.keras")
    other.save_weights(tmp_path / "other.weights.h5")
    with pytest.raises(ValueError):
        zoo.load("pixelcnn_digits", weights=tmp_path / "other.weights.h5")
    with pytest.raises(FileNotFoundError):
        zoo.load("pixelcnn_digits", weights=tmp_path / "missing.weights.h5")


def test_a_loaded_entry_fits_and_evaluates_without_compile():
    """``zoo.load`` compiles with the entry's recipe, as keras-hub's ``from_preset``
    does: ``fit`` and ``evaluate`` work at once, and training lowers the loss."""
    import keras

    from keras_pixel import data, training

    train, _ = data.load_digits("train")
    test, _ = data.load_digits("test")
    model = zoo.load("pixelcnn_digits", weights=None, num_layers=1, filters=8)
    assert type(model.optimizer) is keras.optimizers.Adam
    assert float(model.optimizer.learning_rate) == pytest.approx(2e-3)  # the recipe's
    before = model.evaluate(test[:64], batch_size=32, return_dict=True, verbose=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(data.make_dataset(train[:512], batch_size=32, seed=0), epochs=2, verbose=0)
    # Keras 3.15 warns on every Dataset that its default shuffle=True is ignored.
    assert not [w for w in caught if "shuffle" in str(w.message)]
    after = model.evaluate(test[:64], batch_size=32, return_dict=True, verbose=0)
    assert after["bits_per_dim"] < before["bits_per_dim"] - 0.5, (before, after)

    # The PixelCNN++ recipe's per-step decay; compile() again replaces it.
    model = zoo.load("pixelcnn_pp_cifar", weights=None, image_shape=(4, 4, 3), num_filters=6,
                     num_resnet=1, num_logistic_mix=1, num_hierarchies=1)  # fmt: skip
    schedule = keras.optimizers.schedules.deserialize(model.optimizer.get_config()["learning_rate"])
    assert isinstance(schedule, training.PerStepDecay)
    assert (schedule.learning_rate, schedule.decay) == (1e-3, 0.999995)
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    assert type(model.optimizer) is keras.optimizers.SGD


def test_register_a_custom_entry():
    zoo.register(
        "tiny_test_pixelcnn",
        PixelCNN,
        dict(image_shape=(4, 4, 1), num_layers=0, filters=2, output_filters=4),
    )
    try:
        assert "tiny_test_pixelcnn" in zoo.list_models()
        assert zoo.load("tiny_test_pixelcnn", weights=None).image_shape == (4, 4, 1)
        with pytest.raises(ValueError, match="already registered"):
            zoo.register("tiny_test_pixelcnn", PixelCNN, {})
    finally:
        zoo.registry._REGISTRY.pop("tiny_test_pixelcnn")


def test_import_keras_pixel_alone_lets_keras_load_a_saved_model(tmp_path):
    """A fresh process that imports only ``keras_pixel`` and ``keras`` loads a
    ``.keras`` file of every family (the classes register on ``import keras_pixel``)."""
    import subprocess
    import sys

    from keras_pixel import training

    images = np.random.default_rng(0).integers(0, 256, (2, 4, 4, 1), np.uint8)
    np.save(tmp_path / "images.npy", images)
    expected = {}
    for family, model in {
        "pixelcnn": PixelCNN((4, 4, 1), num_layers=1, filters=4, output_filters=8),
        "pixelcnn_pp": zoo.load("pixelcnn_pp_mnist", weights=None, image_shape=(4, 4, 1),
                                num_filters=4, num_logistic_mix=1, num_hierarchies=1),
        "row_lstm": zoo.load("row_lstm_mnist", weights=None, image_shape=(4, 4, 1), num_layers=1),
    }.items():  # fmt: skip
        # A compiled model also saves its optimizer (the paper's per-step decay).
        model.compile(optimizer=training.make_optimizer(1e-3, lr_decay=0.999, ema=0.9))
        model.save(tmp_path / f"{family}.keras")
        expected[family] = model.log_prob(images)
    script = (
        "import sys, json, numpy as np\n"
        "import keras_pixel, keras\n"
        "images = np.load(sys.argv[1] + '/images.npy')\n"
        "out = {f: keras.models.load_model(f'{sys.argv[1]}/{f}.keras').log_prob(images).tolist()\n"
        "       for f in sys.argv[2:]}\n"
        "print(json.dumps(out))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path), *expected],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    loaded = __import__("json").loads(out.stdout.strip().splitlines()[-1])
    for family, values in expected.items():
        np.testing.assert_allclose(loaded[family], values, rtol=1e-6)


@pytest.mark.parametrize("conditioning", [{"num_classes": 3}, {"condition_dim": 4}])
def test_unconditional_families_refuse_labels_they_would_ignore(conditioning):
    from keras_pixel.models import PixelRNN

    with pytest.raises(ValueError, match="PixelCNN is unconditional"):
        PixelCNN((4, 4, 1), num_layers=1, filters=4, **conditioning)
    with pytest.raises(ValueError, match="PixelRNN is unconditional"):
        PixelRNN("row_lstm", num_layers=1, units=4, image_shape=(4, 4, 1), **conditioning)
    with pytest.raises(ValueError, match="unconditional"):
        zoo.load("pixelcnn_mnist", weights=None, **conditioning)


@pytest.mark.parametrize("name", ["gated_pixelcnn_mnist_conditional", "pixelcnn_pp_cifar"])
def test_conditional_families_use_their_labels(name):
    extra = {"num_classes": 3} if name == "pixelcnn_pp_cifar" else {}
    model = zoo.load(name, weights=None, **{**SMALL[name], **extra})
    images = np.random.default_rng(0).integers(0, 256, (2, *model.image_shape), np.uint8)
    a = model.log_prob(images, labels=np.array([0, 0]))
    b = model.log_prob(images, labels=np.array([1, 2]))
    assert np.all(np.abs(a - b) > 1e-4), (a, b)


@pytest.mark.parametrize("name", ["gated_pixelcnn_mnist_conditional", "pixelcnn_pp_cifar"])
def test_vector_conditioned_families_use_their_vectors(name):
    config = {**SMALL[name], "num_classes": None, "condition_dim": 5}
    model = zoo.load(name, weights=None, **config)
    images = np.random.default_rng(0).integers(0, 256, (2, *model.image_shape), np.uint8)
    vectors = np.random.default_rng(1).normal(size=(2, 5)).astype("float32")
    a = model.log_prob(images, labels=vectors)
    b = model.log_prob(images, labels=vectors[::-1].copy())
    assert np.all(np.abs(a - b) > 1e-4), (a, b)
