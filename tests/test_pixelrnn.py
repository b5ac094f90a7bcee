import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_pixel.layers import DiagonalBiLSTM, MaskedConv2D, RowLSTM
from keras_pixel.layers.lstm import skew, skewed_columns, unskew, unskewed_columns
from keras_pixel.models import PixelRNN
from keras_pixel.testing import assert_model_contract


def test_skew_round_trip():
    x = tf.reshape(tf.range(2 * 3 * 4 * 2, dtype=tf.float32), (2, 3, 4, 2))
    s = skew(x)
    assert s.shape == (2, 3, 6, 2)
    np.testing.assert_array_equal(s[0, 1, 1:5], x[0, 1])
    np.testing.assert_array_equal(s[0, 2, 2:6], x[0, 2])
    assert float(tf.reduce_sum(tf.abs(s[0, 2, :2]))) == 0
    np.testing.assert_array_equal(unskew(s, 4), x)


@pytest.mark.parametrize("mirrored", [False, True])
def test_skewed_columns_are_the_skewed_maps_columns_bottom_row_first(mirrored):
    x = np.arange(2 * 3 * 4 * 2, dtype="float32").reshape(2, 3, 4, 2) + 1
    skewed = skew(tf.constant(x[:, :, ::-1] if mirrored else x)).numpy()
    expected = skewed.transpose(2, 0, 1, 3)[:, :, ::-1]
    batch = tf.TensorSpec((None, 3, 4, 2), tf.float32)
    columns = tf.function(lambda x: skewed_columns(x, mirrored), input_signature=[batch])(x)
    np.testing.assert_array_equal(columns, expected)
    back = tf.function(
        lambda c: unskewed_columns(c, 4, mirrored),
        input_signature=[tf.TensorSpec((6, None, 3, 2), tf.float32)],
    )(columns)
    np.testing.assert_array_equal(back, x)


@pytest.mark.parametrize("mirrored", [False, True])
@pytest.mark.parametrize("jit_compile", [False, True])
def test_skewed_columns_gradients_are_those_of_skew_transpose_and_flip(mirrored, jit_compile):
    """The hand-written gradients (each map's gradient is the other map) against
    TensorFlow's own gradients of the pad/slice/transpose/flip composition, in float64."""
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(2, 3, 4, 2)))
    columns_weights = tf.constant(rng.normal(size=(6, 2, 3, 2)))
    pixels_weights = tf.constant(rng.normal(size=(2, 3, 4, 2)))

    def reference_columns(x):
        return tf.reverse(tf.transpose(skew(x[:, :, ::-1] if mirrored else x), (2, 0, 1, 3)), [2])

    def reference_pixels(columns):
        pixels = unskew(tf.transpose(tf.reverse(columns, [2]), (1, 2, 0, 3)), 4)
        return pixels[:, :, ::-1] if mirrored else pixels

    def gradients(to_columns, to_pixels):
        # Slices that keep everything: their gradients, which reach the maps, are
        # pads by traced amounts with no static shape, as a model's shifts give.
        def both(x):
            with tf.GradientTape(persistent=True) as tape:
                tape.watch(x)
                columns = tf.slice(to_columns(x), (0, 0, 0, 0), (6, -1, 3, 2))
                columns = columns * columns_weights
                through_columns = tf.reduce_sum(columns)
                pixels = tf.slice(to_pixels(columns), (0, 0, 0, 0), (-1, 3, 4, 2))
                through_both = tf.reduce_sum(pixels * pixels_weights)
            return tape.gradient(through_columns, x), tape.gradient(through_both, x)

        batch = tf.TensorSpec((None, 3, 4, 2), tf.float64)
        return tf.function(both, input_signature=[batch], jit_compile=jit_compile)(x)

    ours = gradients(
        lambda x: skewed_columns(x, mirrored), lambda c: unskewed_columns(c, 4, mirrored)
    )
    expected = gradients(reference_columns, reference_pixels)
    for got, want in zip(ours, expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-13)
    assert float(tf.reduce_max(tf.abs(ours[1]))) > 0


def test_skewed_columns_reject_shapes_they_cannot_come_from():
    with pytest.raises(ValueError, match="skewed_columns takes"):
        skewed_columns(tf.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match="5 columns cannot come from a map 3 high and 4 wide"):
        unskewed_columns(tf.zeros((5, 2, 3, 2)), 4)


def _dependence(layer, shape, position):
    x = tf.random.normal((1, *shape))
    with tf.GradientTape() as tape:
        tape.watch(x)
        target = tf.reduce_sum(layer(x)[0, position[0], position[1]])
    return np.abs(tape.gradient(target, x)[0].numpy()).sum(-1) > 0


def test_receptive_fields():
    h, w, (i, j) = 6, 8, (3, 3)
    order = np.arange(h * w).reshape(h, w)
    past = order < order[i, j]

    diagonal = _dependence(DiagonalBiLSTM(4), (h, w, 1), (i, j))
    # The whole past: every earlier pixel, the left neighbour and the far right
    # of the row above included; nothing at or after (i, j) but (i, j) itself
    # (mask B: the layer sees its own position, a mask-A layer below hides it).
    assert diagonal[past].all()
    assert diagonal[i, j - 1] and diagonal[i - 1, w - 1]
    assert not diagonal[order > order[i, j]].any()

    row = _dependence(RowLSTM(4, kernel_size=3), (h, w, 1), (i, j))
    assert not row[order > order[i, j]].any()
    # Row LSTM: a triangle. It misses (i, j-2) and further left in its row and,
    # in the row above, (i-1, j-2) and (i-1, j+2) onwards.
    missed = [(i, 0), (i, 1), (i - 1, 0), (i - 1, 5), (i - 1, 7), (i - 2, 7), (0, 7)]
    for pixel in missed:
        assert not row[pixel], f"the Row LSTM should not see {pixel}"
    assert row[i, j - 1] and row[i - 1, j + 1] and row[i - 2, j + 2] and row[0, 0]

    # A stack of masked convolutions has the blind spot: (i-1, j+2) and right of
    # it stay unseen however deep the stack (here 4 mask-B 3x3 layers).
    stack = keras.Sequential([MaskedConv2D(4, 3, mask_type="B") for _ in range(4)])
    conv = _dependence(stack, (h, w, 1), (i, j))
    assert not conv[i - 1, j + 2 :].any() and not conv[i - 2, j + 3 :].any()
    assert diagonal[i - 1, j + 2 :].all()


@pytest.mark.parametrize("kind", ["row_lstm", "diagonal_bilstm"])
@pytest.mark.parametrize("shape", [(6, 6, 1), (5, 5, 3)])
def test_model_contract(kind, shape):
    """Causal, normalized, exact .keras round trip, cached == naive."""
    model = PixelRNN(
        kind, num_layers=2, units=6, image_shape=shape, output_filters=12, skip_connections=True
    )
    assert_model_contract(model, num_positions=8)


@pytest.mark.parametrize("kind", ["row_lstm", "diagonal_bilstm"])
def test_xla_training_step_with_a_dynamic_batch_size(kind):
    from keras_pixel import data

    model = PixelRNN(kind, num_layers=1, units=4, image_shape=(6, 6, 1), output_filters=8)
    model.compile(optimizer="adam", jit_compile=True)
    x = np.random.default_rng(2).integers(0, 256, (10, 6, 6, 1), dtype=np.uint8)
    ds = data.make_dataset(x, batch_size=4, repeat=True)  # batch dimension unknown
    logs = model.fit(ds, steps_per_epoch=2, epochs=1, verbose=0).history
    assert np.isfinite(logs["bits_per_dim"][0])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(kind="grid_lstm"), "kind"),
        (dict(units=4, image_shape=(6, 6, 3)), "divisible"),
        (dict(num_layers=0), "num_layers"),
        (dict(kind="row_lstm", kernel_size=2), "odd"),
    ],
)
def test_bad_hyperparameters(kwargs, message):
    config = dict(num_layers=1, units=6, image_shape=(6, 6, 1), output_filters=12)
    config.update(kwargs)
    with pytest.raises(ValueError, match=message):
        PixelRNN(**config)


@pytest.mark.parametrize("kind", ["row_lstm", "diagonal_bilstm"])
def test_training_on_digits_lowers_bits_per_dim(kind, digits):
    train, test = digits
    model = PixelRNN(
        kind, num_layers=2, units=16, image_shape=(8, 8, 1), output_filters=64, first_kernel_size=5
    )
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    before = model.evaluate(test, verbose=0, return_dict=True)["bits_per_dim"]
    model.fit(train, batch_size=32, epochs=3, verbose=0)
    after = model.evaluate(test, verbose=0, return_dict=True)["bits_per_dim"]
    assert before > 7.5 and after < 0.45 * before
