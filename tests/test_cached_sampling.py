"""Cached sampling: the step primitives and PixelCNN++'s row / pixel terms equal
the full layers (every layer's own ``step`` is checked in ``test_layers.py``), and
for every zoo architecture ``method="cached"`` draws exactly the images of
``method="naive"`` from the same seed (sampling, completion, conditional)."""

import numpy as np
import pytest
import tensorflow as tf
from zoo_sizes import SMALL

from keras_pixel import sampling, zoo
from keras_pixel.layers import (
    DownRightShiftedConv2D,
    DownShiftedConv2D,
    GatedResnet,
    MaskedConv2D,
    Position,
)
from keras_pixel.layers.incremental import conv_window, kernel_and_bias, read_window
from keras_pixel.layers.output_head import CategoricalHead
from keras_pixel.models import AutoregressiveModel, PixelCNN, PixelCNNPlusPlus

POSITIONS = [(0, 0), (0, 4), (2, 0), (3, 3), (4, 5)]


def _inputs(channels, seed=0, shape=(2, 5, 6)):
    return np.random.default_rng(seed).normal(size=(*shape, channels)).astype("float32")


def _close(a, b):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(filters=6, kernel_size=5, mask_type="A", color_channels=3),
        dict(filters=6, kernel_size=3, mask_type="B", color_channels=3, dilation_rate=2),
        dict(filters=4, kernel_size=(1, 5), mask_type="B"),
        dict(filters=4, kernel_size=1, mask_type="B", activation="relu"),
    ],
)
def test_masked_conv2d_output_at(kwargs):
    x = _inputs(6 if kwargs.get("color_channels") == 3 else 2)
    layer = MaskedConv2D(**kwargs)
    full = layer(x)
    padded = layer.cache_padding(x)
    for i, j in POSITIONS:
        _close(layer.output_at(padded, i, j), full[:, i, j])
    if layer.kernel_size == (1, 1):
        _close(layer.pointwise(x[:, 3, 3]), full[:, 3, 3])


def _gated_resnet_step(block, x_map, c1_map, r, c, x, a, condition, kernels=None):
    c1 = block.first_step(x_map, r, c, x, a=a, kernels=kernels)
    return block.gate_step(c1_map, r, c, x, c1, condition, kernels=kernels), c1


@pytest.mark.parametrize("shift", ["down", "down_right"])
def test_gated_resnet_step_rows_and_pixels(shift):
    x = _inputs(4, seed=5, shape=(2, 4, 6))
    a = _inputs(3, seed=6, shape=(2, 4, 6))
    condition = np.random.default_rng(7).normal(size=(2, 5)).astype("float32")
    block = GatedResnet(4, shift, dropout=0.5)
    full = block(x, a=a, condition=condition)
    kernels = block.sampling_kernels()
    pad = lambda t: np.pad(t, ((0, 0), (1, 0), (1, 1), (0, 0)))  # noqa: E731
    x_map, c1_map = pad(x), np.zeros_like(pad(x))
    for r in range(x.shape[1]):
        row, c1 = _gated_resnet_step(
            block, x_map, c1_map, r, 0, x[:, r : r + 1], a[:, r : r + 1], condition, kernels
        )
        _close(row[:, 0], full[:, r])
        c1_map[:, r + 1, 1:-1] = np.asarray(c1)[:, 0]
    c1_map = pad(block.first_conv(x, a))
    x_map, c1_full = pad(x), c1_map.copy()
    for r, c in [(0, 0), (1, 3), (3, 5)]:
        # The step overlays the values of (r, c), absent from the maps, and
        # returns c1 there: it must not read them from the maps.
        x_map[:, r + 1, c + 1] = np.nan
        c1_map[:, r + 1, c + 1] = np.nan
        pixel, c1 = _gated_resnet_step(
            block,
            x_map,
            c1_map,
            r,
            c,
            x[:, r : r + 1, c : c + 1],
            a[:, r : r + 1, c : c + 1],
            condition,
        )
        _close(pixel[:, 0, 0], full[:, r, c])
        _close(c1[:, 0, 0], c1_full[:, r + 1, c + 1])
        x_map[:, r + 1, c + 1] = x[:, r, c]
        c1_map[:, r + 1, c + 1] = c1_full[:, r + 1, c + 1]


@pytest.mark.parametrize("row_channels", [None, 2, 0])
def test_gated_resnet_row_terms_and_pixel_steps(row_channels):
    """Row terms once per row (top kernel rows, biases, nin of the extra input's
    first channels, condition) plus a pixel step per pixel (bottom kernel row,
    nin of the rest) equal the full block, reading nothing at the pixel itself."""
    x = _inputs(4, seed=11, shape=(2, 4, 6))
    a = _inputs(5, seed=12, shape=(2, 4, 6))
    condition = np.random.default_rng(13).normal(size=(2, 3)).astype("float32")
    block = GatedResnet(4, "down_right", dropout=0.5)
    full = block(x, a=a, condition=condition)
    split = 5 if row_channels is None else row_channels
    pad = lambda t: np.pad(t, ((0, 0), (1, 0), (1, 1), (0, 0)))  # noqa: E731
    x_map, c1_map = pad(x), pad(block.first_conv(x, a))
    kernels = block.sampling_kernels(row_channels=split)
    for r in range(x.shape[1]):
        row_a = a[:, r : r + 1, :, :split] if split else None
        pre1, pre2 = block.row_terms(
            x_map, c1_map, r, a=row_a, condition=condition, kernels=kernels
        )
        for c in range(x.shape[2]):
            x_nan, c1_nan = x_map.copy(), c1_map.copy()
            x_nan[:, r + 1 :, c + 1 :] = np.nan
            c1_nan[:, r + 1 :, c + 1 :] = np.nan
            rest = a[:, r : r + 1, c : c + 1, split:] if split < 5 else None
            x_rc = x[:, r : r + 1, c : c + 1]
            c1 = block.pixel_first_step(
                x_nan, r, c, x_rc, pre1[:, :, c : c + 1], a=rest, kernels=kernels
            )
            out = block.pixel_gate_step(c1_nan, r, c, x_rc, c1, pre2[:, :, c : c + 1], kernels)
            _close(out[:, 0, 0], full[:, r, c])
            _close(c1[:, 0, 0], c1_map[:, r + 1, c + 1])
    down = GatedResnet(4, "down")
    down(x)
    with pytest.raises(ValueError, match="down-right"):
        down.pixel_first_step(x_map, 0, 0, x[:, :1, :1], pre1[:, :, :1])


@pytest.mark.parametrize(
    "layer", [DownShiftedConv2D(5, strides=2), DownRightShiftedConv2D(5, strides=2)]
)
def test_strided_shifted_conv_window(layer):
    x = _inputs(3, seed=8, shape=(2, 6, 8))
    full = layer(x)
    padded = np.pad(x, ((0, 0), (1, 0), (1, 1), (0, 0)))
    for r in range(full.shape[1]):
        row = conv_window(*kernel_and_bias(layer), padded, r, 0, full.shape[2], strides=2)
        _close(row[:, 0], full[:, r])
    _close(conv_window(*kernel_and_bias(layer), padded, 2, 1, 1, strides=2)[:, 0, 0], full[:, 2, 1])
    _close(read_window(padded, 1, 1, 1, 8)[:, 0], x[:, 0])


def _labels(model, num):
    return None if not model.conditional else np.arange(num) % model.num_classes


@pytest.mark.parametrize("name", zoo.list_models())
def test_cached_equals_naive_for_every_zoo_architecture(name):
    model = zoo.load(name, weights=None, **SMALL.get(name, {}))
    height = model.image_shape[0]
    labels = _labels(model, 2)
    naive = model.sample(2, seed=11, method="naive", labels=labels)
    cached = model.sample(2, seed=11, method="cached", labels=labels)
    np.testing.assert_array_equal(cached, naive)
    known = height // 2
    naive = model.complete(cached, known, temperature=0.7, seed=3, method="naive", labels=labels)
    completed = model.complete(
        cached, known, temperature=0.7, seed=3, method="cached", labels=labels
    )
    np.testing.assert_array_equal(completed, naive)
    np.testing.assert_array_equal(completed[:, :known], cached[:, :known])


def test_cached_equals_naive_for_a_class_conditional_pixelcnn_pp():
    model = PixelCNNPlusPlus(
        image_shape=(4, 6, 3),
        num_resnet=1,
        num_hierarchies=2,
        num_filters=8,
        num_logistic_mix=2,
        num_classes=3,
    )
    labels = np.array([0, 2])
    naive = model.sample(2, temperature=0.8, seed=7, method="naive", labels=labels)
    cached = model.sample(2, temperature=0.8, seed=7, method="cached", labels=labels)
    np.testing.assert_array_equal(cached, naive)


def test_cached_is_the_default_and_reproducible():
    model = PixelCNN(image_shape=(5, 5, 1), num_layers=1, filters=4, output_filters=8)
    assert model.supports_cached_sampling
    a = model.sample(2, seed=4)
    np.testing.assert_array_equal(a, model.sample(2, seed=4, method="cached"))
    assert not np.array_equal(a, model.sample(2, seed=5))
    with pytest.raises(ValueError, match="method"):
        model.sample(1, method="fast")


class _OneLayer(AutoregressiveModel):
    """A user-defined family without a cached step."""

    def __init__(self, **kwargs):
        super().__init__((4, 4, 1), **kwargs)
        self.conv = MaskedConv2D(8, 3, mask_type="A")
        self.head = CategoricalHead(8)
        self._build_from_images()

    def forward(self, x, condition=None, training=False):
        return self.head(self.conv(x))


def test_a_family_without_a_cached_step_falls_back_to_naive():
    model = _OneLayer()
    assert not model.supports_cached_sampling
    assert model.sample(1, seed=0).shape == (1, 4, 4, 1)
    with pytest.raises(ValueError, match="no cached sampler"):
        model.sample(1, method="cached")


def _small_pixelcnn_pp(**kwargs):
    config = dict(
        image_shape=(4, 6, 3), num_resnet=1, num_hierarchies=2, num_filters=8, num_logistic_mix=2
    )
    return PixelCNNPlusPlus(**{**config, **kwargs})


def test_pixelcnn_pp_samples_from_scratch_with_zero_caches_and_completes_from_a_full_pass():
    model = _small_pixelcnn_pp()
    assert model.zero_cache_from_scratch
    init, _ = model._get_sampler("cached", sampling.SAMPLERS["cached"])
    canvas = tf.constant(np.random.default_rng(0).integers(0, 256, (2, 4, 6, 3)), tf.int32)
    empty, filled = init(canvas, None, from_scratch=True), init(canvas, None)
    assert set(empty) == set(filled)
    for key in filled:
        assert empty[key].shape == filled[key].shape
        assert not np.any(empty[key].numpy())
    assert np.any(filled["u_up_0_1"].numpy())
    # Sampling from scratch (zero caches) and completion (filled caches) both
    # draw the naive sampler's images: test_cached_equals_naive_* above.


def test_progress_bar_chunks_draw_the_same_images():
    """With a progress bar the sampler runs in chunks of rows; without, in one
    call: the images are the same."""
    model = PixelCNN(image_shape=(5, 5, 1), num_layers=1, filters=4, output_filters=8)
    quiet = model.sample(2, seed=9)
    np.testing.assert_array_equal(model.sample(2, seed=9, progress=True), quiet)
    canvas = np.zeros((1, 5, 5, 1), np.uint8)
    with pytest.raises(ValueError, match="multiple of W"):
        sampling.run_sampler(model, canvas, 3, sampling.make_seed(0), 1.0, method="cached")


@pytest.mark.parametrize("method", ["cached", "naive"])
def test_sample_complete_and_chunks_share_one_compiled_sampler(method):
    """Every call of a sampler's run has the same shapes (the noise of every
    subpixel, indexed by the subpixel), so sampling, completing and drawing in
    chunks of rows of different lengths (5 rows in chunks of 1 or 2 rows) trace
    and compile it once for a batch size; and completing an image from its own
    first rows redraws the rest with the same noise: the same image."""
    model = PixelCNN(image_shape=(5, 5, 1), num_layers=1, filters=4, output_filters=8)
    sampled = model.sample(2, seed=3, method=method)
    for rows in (1, 2, 4):
        completed = model.complete(sampled, num_known_rows=rows, seed=3, method=method)
        np.testing.assert_array_equal(completed, sampled)
    np.testing.assert_array_equal(model.sample(2, seed=3, method=method, progress=True), sampled)
    _, run = model._get_sampler(method, sampling.SAMPLERS[method])
    assert run.experimental_get_tracing_count() == 1


def test_pixelcnn_pp_steps_read_the_kernels_prepared_where_the_loop_starts():
    """The weight-normalized kernels are explicit constants of the loop
    (model.sampling_constants): a step given them uses them, not the variables."""
    model = _small_pixelcnn_pp(num_hierarchies=1)
    constants = model.sampling_constants()
    kernel, bias = constants["u_init"]
    np.testing.assert_allclose(kernel.numpy(), model.u_init.effective_kernel.numpy(), rtol=1e-6)
    block = model.up_ul[0][0]
    parts = constants[block.name]
    np.testing.assert_allclose(
        parts["conv2_bottom"].numpy(), block.conv2.effective_kernel.numpy()[1:], rtol=1e-6
    )
    canvas = tf.constant(np.random.default_rng(0).integers(0, 256, (2, 4, 6, 3)), tf.int32)
    cache = model.init_cache(canvas)
    position = Position(tf.constant(1), tf.constant(0), tf.constant(0))
    cache = model.row_step(cache, canvas, position, constants=constants)
    before, _ = model.step(cache, canvas, position, constants=constants)
    for layer in (model.u_init, block.conv2):
        layer.g.assign(3.0 * layer.g)
    after, _ = model.step(cache, canvas, position, constants=constants)
    np.testing.assert_array_equal(after.numpy(), before.numpy())
    fresh, _ = model.step(cache, canvas, position)
    assert not np.allclose(fresh.numpy(), before.numpy())


def test_pixelcnn_pp_groups_write_exactly_the_maps_their_schedule_declares():
    """Each group of a PixelCNN++ step puts the maps ``_writes`` declares, no
    more and no fewer (a level that is not due replays exactly those), and the
    declared maps are the cache's maps: the scheduler's names agree by test."""
    model = _small_pixelcnn_pp(image_shape=(8, 8, 1), num_hierarchies=3)
    canvas = tf.constant(np.random.default_rng(0).integers(0, 256, (2, 8, 8, 1)), tf.int32)
    maps = model.init_cache(canvas)
    kernels = model.sampling_constants()
    declared = set()
    for per_pixel in (False, True):
        for stream, pass_, level in model._schedule(per_pixel):
            writes = model._writes(stream, pass_, level)
            put = {}
            model._group_methods()[stream, pass_](
                maps,
                put.__setitem__,
                lambda key, *window: read_window(maps[key], *window),
                level=level,
                r=0,
                c=0 if per_pixel else None,
                condition=None,
                kernels=kernels,
            )
            assert list(put) == list(writes), (stream, pass_, level)
            declared |= set(writes)
    assert declared | {"image"} == set(maps)
