import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_pixel import zoo
from keras_pixel.layers import GatedBlock
from keras_pixel.models import GatedPixelCNN, PixelCNN
from keras_pixel.testing import assert_layer_causal, assert_model_contract


def h_stack(outputs):
    return outputs[1]


def test_block_with_conditioning_and_skip_is_causal():
    block = GatedBlock(6, 3, color_channels=3, return_skip=True)
    condition = tf.random.normal((1, 4))

    def layer(x):
        return block((x, x), condition=condition)

    for pick in (lambda y: y[1], lambda y: y[2]):
        assert_layer_causal(layer, (5, 5, 6), "B", 3, output_fn=pick)


def test_vertical_stack_sees_only_rows_up_to_its_own():
    block = GatedBlock(4, 3, first=True)
    x = tf.random.normal((1, 6, 6, 1))
    with tf.GradientTape() as tape:
        tape.watch(x)
        v, _ = block(x)
        target = tf.reduce_sum(v[0, 3, 2])
    grad = np.abs(tape.gradient(target, x)[0, ..., 0].numpy())
    assert grad[4:].max() == 0, "the vertical stack must not see rows below"
    assert grad[3, 3] > 0 and grad[2, 1] > 0, "it sees the current row and the row above"


def test_block_conditioning_vector_and_spatial_map():
    x = tf.random.normal((2, 5, 5, 1))
    for condition in (tf.random.normal((2, 3)), tf.random.normal((2, 5, 5, 3))):
        block = GatedBlock(4, 3, first=True)
        v, h = block(x, condition=condition)
        v2, h2 = block(x, condition=condition + 1.0)
        assert not np.allclose(h, h2) and not np.allclose(v, v2)
    with pytest.raises(ValueError, match="without conditioning"):
        plain = GatedBlock(4, 3, first=True)
        plain(x)
        plain(x, condition=tf.zeros((2, 3)))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(filters=4, kernel_size=4), "odd"),
        (dict(filters=4, kernel_size=3, color_channels=3), "divisible by color_channels"),
        (dict(filters=3, kernel_size=3, color_channels=2), "color_channels"),
    ],
)
def test_block_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        GatedBlock(**kwargs)


def test_block_wrong_stack_width():
    with pytest.raises(ValueError, match="stacks of 4 channels"):
        GatedBlock(4)((tf.zeros((1, 5, 5, 6)), tf.zeros((1, 5, 5, 6))))


def _receptive_field(model, position, image_size=10):
    """|d logits(position) / d input| over the image, from the network's float input."""
    x = tf.random.uniform((1, image_size, image_size, 1), -1, 1)
    with tf.GradientTape() as tape:
        tape.watch(x)
        logits = model.forward(x)
        target = tf.reduce_sum(logits[0, position[0], position[1], 0])
    return np.abs(tape.gradient(target, x)[0, ..., 0].numpy())


def test_no_blind_spot():
    i, j = 5, 4
    gated = GatedPixelCNN(3, 8, image_shape=(10, 10, 1), output_filters=16)
    plain = PixelCNN((10, 10, 1), num_layers=3, filters=8, output_filters=16)
    g = _receptive_field(gated, (i, j))
    p = _receptive_field(plain, (i, j))
    order = np.arange(100).reshape(10, 10)
    assert g[order >= order[i, j]].max() == 0 and p[order >= order[i, j]].max() == 0
    # (i - 1, j + 4): above and to the right, beyond the 7x7 first layer's reach.
    # A stack of masked convolutions never reaches it, however deep: the blind spot.
    assert p[i - 1, j + 4] == 0
    assert g[i - 1, j + 4] > 0
    # The gated stack sees every pixel above and to the left within its receptive
    # field: two rows above, four columns either side, and the row's left part.
    assert np.all(g[i - 2 : i, j - 4 : j + 5] > 0)
    assert np.all(g[i, :j] > 0)


@pytest.mark.parametrize("shape, classes", [((6, 6, 1), None), ((4, 4, 3), 3)])
def test_model_contract(shape, classes):
    """Causal, normalized, exact .keras round trip, cached == naive."""
    model = GatedPixelCNN(3, 6, image_shape=shape, output_filters=12, num_classes=classes)
    assert_model_contract(model, labels=None if classes is None else 2, num_positions=10)


def test_conditional_round_trip_and_label_forms(tmp_path):
    model = GatedPixelCNN(2, 6, image_shape=(5, 5, 1), output_filters=12, num_classes=4)
    x = np.random.default_rng(1).integers(0, 256, (3, 5, 5, 1), dtype=np.uint8)
    labels = np.array([0, 3, 1])
    path = tmp_path / "cond.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, GatedPixelCNN) and loaded.num_classes == 4
    np.testing.assert_array_equal(
        loaded.log_prob(x, labels=labels), model.log_prob(x, labels=labels)
    )
    one_hot = np.eye(4, dtype=np.float32)[labels]
    np.testing.assert_allclose(model.log_prob(x, labels=one_hot), model.log_prob(x, labels=labels))
    assert not np.allclose(model.log_prob(x, labels=labels), model.log_prob(x, labels=[2, 2, 2]))
    np.testing.assert_array_equal(
        loaded.sample(2, labels=[1, 2], seed=5), model.sample(2, labels=[1, 2], seed=5)
    )


def test_conditional_input_errors():
    model = GatedPixelCNN(1, 4, image_shape=(4, 4, 1), output_filters=8, num_classes=3)
    x = np.zeros((2, 4, 4, 1), np.uint8)
    with pytest.raises(ValueError, match="conditional"):
        model.log_prob(x)
    with pytest.raises(ValueError, match="conditional"):
        model.sample(2)
    with pytest.raises(ValueError, match=r"class ids in \[0, 3\)"):
        model.log_prob(x, labels=[0, 3])
    with pytest.raises(ValueError, match=r"class ids in \[0, 3\)"):
        model.sample(2, labels=-1)
    with pytest.raises(ValueError, match="shape"):
        model.complete(x, 2, labels=[0, 1, 2])
    with pytest.raises(ValueError, match="shape"):
        model.log_prob(x, labels=np.zeros((2, 5), np.float32))
    with pytest.raises(ValueError, match="dataset must yield"):
        model.compile(optimizer="adam")
        model.fit(x, epochs=1, verbose=0)
    plain = GatedPixelCNN(1, 4, image_shape=(4, 4, 1), output_filters=8)
    with pytest.raises(ValueError, match="unconditional"):
        plain.log_prob(x, labels=[0, 1])


def test_vector_conditioning():
    model = GatedPixelCNN(1, 4, image_shape=(4, 4, 1), output_filters=8, condition_dim=5)
    x = np.zeros((2, 4, 4, 1), np.uint8)
    h = np.random.default_rng(0).normal(size=(2, 5)).astype(np.float32)
    assert model.log_prob(x, labels=h).shape == (2,)
    with pytest.raises(ValueError, match="not on integer labels"):
        model.log_prob(x, labels=[0, 1])


@pytest.fixture(scope="module")
def trained_conditional(digits):
    from keras_pixel import data

    train, train_labels = data.load_digits("train")
    model = zoo.load("gated_pixelcnn_digits_conditional", weights=None, num_layers=2, filters=24)
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    test, test_labels = data.load_digits("test")
    before = model.evaluate(test, test_labels, verbose=0, return_dict=True)["bits_per_dim"]
    model.fit(
        data.make_dataset(train, train_labels, batch_size=32, seed=0),
        epochs=6,
        shuffle=False,
        verbose=0,
    )
    return model, before


def test_conditional_training_lowers_bits_per_dim(trained_conditional):
    from keras_pixel import data

    model, before = trained_conditional
    test, test_labels = data.load_digits("test")
    after = model.evaluate(test, test_labels, verbose=0, return_dict=True)["bits_per_dim"]
    assert before > 7.5 and after < 0.4 * before
    np.testing.assert_allclose(after, model.bits_per_dim(test, labels=test_labels), rtol=1e-4)


def test_true_label_is_more_likely_than_the_others(trained_conditional):
    from keras_pixel import data

    model, _ = trained_conditional
    test, test_labels = data.load_digits("test")
    scores = np.stack([model.log_prob(test, labels=np.full(len(test), k)) for k in range(10)], 1)
    true = scores[np.arange(len(test)), test_labels]
    others = (scores.sum(1) - true) / 9
    assert true.mean() > others.mean()
    assert (scores.argmax(1) == test_labels).mean() > 0.5, "the likelihood classifies digits"


def test_samples_follow_their_labels(trained_conditional):
    model, _ = trained_conditional
    labels = np.repeat(np.arange(10), 3)
    samples = model.sample(len(labels), labels=labels, seed=0)
    scores = np.stack(
        [model.log_prob(samples, labels=np.full(len(samples), k)) for k in range(10)], 1
    )
    assert (scores.argmax(1) == labels).mean() > 0.5
    completions = model.complete(samples[:4], 3, labels=labels[:4], seed=1)
    np.testing.assert_array_equal(completions[:, :3], samples[:4, :3])


def test_conditioning_an_unconditional_model_keeps_its_likelihood(monkeypatch):
    """``zoo/conditioning.py``'s ``add_conditioning``: the class-conditional twin of a trained
    unconditional model starts with zero label projections, so it gives the
    unconditional likelihood for every label, and a step of training on labels
    makes the label matter."""
    import pathlib

    monkeypatch.syspath_prepend(str(pathlib.Path(__file__).resolve().parents[1] / "zoo"))
    from conditioning import add_conditioning

    source = GatedPixelCNN(image_shape=(6, 6, 1), num_layers=2, filters=8, output_filters=16)
    rng = np.random.default_rng(0)
    source.set_weights([rng.normal(0, 0.3, w.shape).astype("float32") for w in source.weights])
    images = rng.integers(0, 256, (4, 6, 6, 1)).astype(np.uint8)
    target = add_conditioning(source, num_classes=3)
    assert target.num_classes == 3 and len(target.weights) == len(source.weights) + 4
    for label in range(3):
        np.testing.assert_array_equal(
            target.log_prob(images, labels=np.full(4, label)), source.log_prob(images)
        )
    target.compile(optimizer=keras.optimizers.Adam(1e-2))
    target.fit(images, np.arange(4) % 3, batch_size=4, epochs=1, verbose=0)
    assert not np.allclose(
        target.log_prob(images, labels=np.zeros(4, int)),
        target.log_prob(images, labels=np.ones(4, int)),
    )
    with pytest.raises(ValueError, match="unconditional"):
        add_conditioning(target, num_classes=3)
    with pytest.raises(ValueError, match="num_classes"):
        add_conditioning(source, num_classes=1)


@pytest.mark.parametrize("class_weights", [None, [0.5, 0.2, 0.3]])
def test_removing_conditioning_keeps_the_mean_label_likelihood(monkeypatch, class_weights):
    """``zoo/conditioning.py``'s ``remove_conditioning``: the unconditional twin
    of a conditional model computes that model fed the soft label
    ``class_weights`` (checked against a ``condition_dim`` model holding the same
    weights), holds no label projections, and refuses what it cannot turn."""
    import pathlib

    monkeypatch.syspath_prepend(str(pathlib.Path(__file__).resolve().parents[1] / "zoo"))
    from conditioning import remove_conditioning

    architecture = dict(image_shape=(6, 6, 1), num_layers=2, filters=8, output_filters=16)
    source = GatedPixelCNN(num_classes=3, **architecture)
    rng = np.random.default_rng(0)
    source.set_weights([rng.normal(0, 0.3, w.shape).astype("float32") for w in source.weights])
    soft = GatedPixelCNN(condition_dim=3, **architecture)
    soft.set_weights(source.get_weights())
    images = rng.integers(0, 256, (4, 6, 6, 1)).astype(np.uint8)

    target = remove_conditioning(source, class_weights)
    assert target.num_classes is None and target.condition_dim is None
    assert len(target.weights) == len(source.weights) - 4
    assert not any("_condition/" in w.path for w in target.weights)
    mean_label = np.full((4, 3), 1 / 3) if class_weights is None else np.tile(class_weights, (4, 1))
    expected = soft.log_prob(images, labels=mean_label.astype("float32"))
    np.testing.assert_allclose(target.log_prob(images), expected, rtol=1e-5)
    for label in range(3):
        hard = source.log_prob(images, labels=np.full(4, label))
        assert np.abs(hard - expected).max() > 1e-2

    with pytest.raises(ValueError, match="class-conditional"):
        remove_conditioning(target)
    with pytest.raises(ValueError, match="class_weights"):
        remove_conditioning(source, [0.5, 0.6, 0.0])
    with pytest.raises(ValueError, match="class_weights"):
        remove_conditioning(source, [1.0, 0.0])
