"""The backward passes of the padded stride-1 convolution and how one is chosen."""

import functools
import json

import numpy as np
import pytest
import tensorflow as tf

from keras_pixel.layers import conv_backward
from keras_pixel.layers.conv_backward import BACKWARDS, choose_backward, padded_conv2d
from keras_pixel.layers.shifted_conv import DownRightShiftedConv2D, DownShiftedConv2D


def _reference(x, kernel, pads, bias):
    y = tf.nn.conv2d(tf.pad(x, ((0, 0), *pads, (0, 0))), kernel, 1, "VALID")
    return y if bias is None else y + bias


@pytest.mark.parametrize(
    "kernel_size, pads",
    [
        ((2, 3), ((1, 0), (1, 1))),
        ((2, 2), ((1, 0), (1, 0))),
        ((1, 3), ((0, 0), (1, 1))),
        ((3, 2), ((2, 1), (0, 1))),
        ((2, 2), ((3, 0), (0, 3))),
    ],
)
@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.parametrize("backward", [*BACKWARDS, ("forward", "gemm"), ("gemm", "stock")])
def test_values_and_gradients_match_autodiff_in_float64(kernel_size, pads, with_bias, backward):
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(3, 5, 7, 6)))
    kernel = tf.constant(rng.normal(size=(*kernel_size, 6, 4)))
    bias = tf.constant(rng.normal(size=(4,))) if with_bias else None
    upstream = None
    results = []
    ours = functools.partial(padded_conv2d, backward=backward)
    for fn in (ours, _reference):
        args = [x, kernel] + ([bias] if with_bias else [])
        with tf.GradientTape() as tape:
            tape.watch(args)
            y = fn(x, kernel, pads, bias)
            if upstream is None:
                upstream = tf.constant(rng.normal(size=y.shape))
            loss = tf.reduce_sum(y * upstream)
        results.append([y, *tape.gradient(loss, args)])
    assert results[0][0].shape == results[1][0].shape
    for ours, reference in zip(*results, strict=True):
        np.testing.assert_allclose(ours.numpy(), reference.numpy(), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("backward", BACKWARDS)
def test_unknown_batch_inside_a_graph(backward):
    kernel = tf.random.normal((2, 3, 8, 4))

    @tf.function(input_signature=[tf.TensorSpec((None, 6, 5, 8))])
    def grads(x):
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(x)
            y = padded_conv2d(x, kernel, ((1, 0), (1, 1)), backward=backward)
            ours = tf.reduce_sum(tf.sin(y))
            reference = tf.reduce_sum(tf.sin(_reference(x, kernel, ((1, 0), (1, 1)), None)))
        return tape.gradient(ours, x), tape.gradient(reference, x)

    ours, reference = grads(tf.random.normal((2, 6, 5, 8)))
    assert ours.shape == (2, 6, 5, 8)
    np.testing.assert_allclose(ours.numpy(), reference.numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    "x_shape, kernel_shape, pads, message",
    [
        ((2, 5, 8), (2, 3, 8, 4), ((1, 0), (1, 1)), r"x \[B, H, W, C\]"),
        ((2, 6, 5, 8), (2, 3, 6, 4), ((1, 0), (1, 1)), "kernel"),
        ((2, 6, 5, 8), (2, 3, 8, 4), ((1, 0), (-1, 1)), "negative"),
        ((2, 1, 1, 8), (2, 3, 8, 4), ((0, 0), (0, 0)), "larger"),
    ],
)
def test_bad_shapes_are_refused(x_shape, kernel_shape, pads, message):
    with pytest.raises(ValueError, match=message):
        padded_conv2d(tf.zeros(x_shape), tf.zeros(kernel_shape), pads)


def test_gemm_needs_a_known_size_and_unknown_ways_are_refused():
    with pytest.raises(ValueError, match="H and W known"):
        tf.function(
            lambda x: padded_conv2d(x, tf.zeros((2, 3, 8, 4)), ((1, 0), (1, 1)), backward="gemm"),
            input_signature=[tf.TensorSpec((2, None, 5, 8))],
        ).get_concrete_function()
    with pytest.raises(ValueError, match="backward must be one of"):
        padded_conv2d(
            tf.zeros((1, 4, 4, 2)), tf.zeros((2, 3, 2, 2)), ((1, 0), (1, 1)), backward="fast"
        )
    with pytest.raises(ValueError, match="backward must be one of"):
        padded_conv2d(
            tf.zeros((1, 4, 4, 2)), tf.zeros((2, 3, 2, 2)), ((1, 0), (1, 1)), backward=("gemm",)
        )


SHAPE, KERNEL, PADS = (None, 6, 7, 8), (2, 3, 8, 4), ((1, 0), (1, 1))
TIMES = {
    "input": {"stock": 3.0, "gemm": 2.0, "forward": 1.0},
    "kernel": {"stock": 3.0, "gemm": 1.0, "forward": 2.0},
}


@pytest.fixture
def timed(monkeypatch, tmp_path):
    """Timing on (``auto``) with the cache in ``tmp_path``, nothing remembered from
    earlier choices, and ``time_backwards`` replaced by a recorder that makes
    "forward" the fastest; returns the list of timed shapes."""
    monkeypatch.setenv("KERAS_PIXEL_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv(conv_backward.ENV, "auto")
    monkeypatch.setattr(conv_backward, "_chosen", {})
    calls = []

    def fake(input_shape, kernel_shape, pads, dtype="float32", rounds=5):
        calls.append((tuple(input_shape), tuple(kernel_shape), pads, dtype))
        return {key: dict(TIMES[key]) for key in TIMES}

    monkeypatch.setattr(conv_backward, "time_backwards", fake)
    return calls


def test_the_fastest_way_is_timed_once_per_shape_and_kept_on_disk(timed, tmp_path, monkeypatch):
    assert choose_backward(SHAPE, KERNEL, PADS) == ("forward", "gemm")
    assert choose_backward((16, 6, 7, 8), KERNEL, PADS) == ("forward", "gemm")
    assert len(timed) == 1, "the batch size is not part of the shape timed"
    (table,) = (tmp_path / "conv_backward").glob("*.json")
    entry = json.loads(table.read_text())["float32 6x7x8 k2x3x4 pad1,0,1,1"]
    assert entry == {"input": "forward", "kernel": "gemm", "ms": TIMES}
    assert choose_backward(SHAPE, KERNEL, PADS, tf.bfloat16) == ("forward", "gemm")
    assert len(timed) == 2, "each dtype is timed"
    # A new process reads the table back instead of timing again.
    monkeypatch.setattr(conv_backward, "_chosen", {})
    entries = json.loads(table.read_text())
    entries["float32 6x7x8 k2x3x4 pad1,0,1,1"]["kernel"] = "stock"
    table.write_text(json.dumps(entries))
    assert choose_backward(SHAPE, KERNEL, PADS) == ("forward", "stock")
    assert len(timed) == 2


def test_a_corrupt_table_is_timed_again_and_rewritten(timed, tmp_path):
    table = tmp_path / "conv_backward" / conv_backward._table_path().rsplit("/", 1)[1]
    table.parent.mkdir()
    table.write_text("{not json")
    assert choose_backward(SHAPE, KERNEL, PADS) == ("forward", "gemm")
    assert len(timed) == 1
    assert "float32 6x7x8 k2x3x4 pad1,0,1,1" in json.loads(table.read_text())


def test_no_timing_with_an_unknown_size_or_the_rule(timed, monkeypatch):
    monkeypatch.setattr(conv_backward, "cpu_has_avx512", lambda: False)
    stock, gemm = ("stock", "stock"), ("gemm", "gemm")
    assert choose_backward((None, None, None, 8), KERNEL, PADS) == stock
    assert choose_backward((None, None, None, 8), (2, 3, 8, 8), PADS) == stock
    monkeypatch.setenv(conv_backward.ENV, "rule")
    assert choose_backward(SHAPE, KERNEL, PADS) == gemm, "narrowing, no AVX-512"
    assert choose_backward(SHAPE, (2, 3, 8, 8), PADS) == stock
    monkeypatch.setattr(conv_backward, "cpu_has_avx512", lambda: True)
    assert choose_backward(SHAPE, KERNEL, PADS) == stock
    assert timed == []


@pytest.mark.parametrize("mode", BACKWARDS)
def test_the_variable_forces_one_way(timed, monkeypatch, mode):
    monkeypatch.setenv(conv_backward.ENV, mode.upper())
    assert choose_backward(SHAPE, KERNEL, PADS) == (mode, mode)
    expected = "stock" if mode == "gemm" else mode
    assert choose_backward((None, None, 7, 8), KERNEL, PADS) == (expected, expected)
    assert timed == []


def test_a_bad_variable_is_named(monkeypatch):
    monkeypatch.setenv(conv_backward.ENV, "fastest")
    with pytest.raises(ValueError, match="KERAS_PIXEL_CONV_BACKWARD must be one of"):
        choose_backward(SHAPE, KERNEL, PADS)


def test_timing_runs_eagerly_while_a_graph_is_traced(monkeypatch, capsys):
    monkeypatch.setenv("KERAS_PIXEL_CACHE_DIR", "off")
    monkeypatch.setenv(conv_backward.ENV, "auto")
    monkeypatch.setattr(conv_backward, "_chosen", {})
    monkeypatch.setattr(conv_backward, "_announced", False)
    kernel = tf.random.normal(KERNEL)

    @tf.function
    def grad(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(tf.sin(padded_conv2d(x, kernel, PADS)))
        return tape.gradient(loss, x)

    x = tf.random.normal((2, 6, 7, 8))
    np.testing.assert_allclose(
        grad(x).numpy(), _reference_gradient(x, kernel, PADS).numpy(), rtol=1e-4, atol=1e-4
    )
    ((input_way, kernel_way),) = conv_backward._chosen.values()
    assert input_way in BACKWARDS and kernel_way in BACKWARDS
    assert "timing the backward passes" in capsys.readouterr().err
    times = conv_backward.time_backwards((None, 6, 7, 8), KERNEL, PADS, rounds=2)
    assert set(times) == {"input", "kernel"}
    for gradient in times.values():
        assert set(gradient) == set(BACKWARDS) and all(ms > 0 for ms in gradient.values())


def _reference_gradient(x, kernel, pads):
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.reduce_sum(tf.sin(_reference(x, kernel, pads, None)))
    return tape.gradient(loss, x)


def test_forward_only_calls_time_nothing(timed):
    layer = DownShiftedConv2D(4)
    layer(tf.random.normal((2, 6, 7, 8)))
    assert timed == []


def test_the_cpu_check_reads_this_machine():
    try:
        flags = next(line for line in open("/proc/cpuinfo") if line.startswith("flags"))
    except (OSError, StopIteration):
        pytest.skip("no /proc/cpuinfo flags here")
    assert conv_backward.cpu_has_avx512() == ("avx512f" in flags.split())


@pytest.mark.parametrize("backward", BACKWARDS)
@pytest.mark.parametrize("cls", [DownShiftedConv2D, DownRightShiftedConv2D])
def test_shifted_layers_train_the_same_through_every_backward_pass(cls, backward, monkeypatch):
    monkeypatch.setenv(conv_backward.ENV, backward)
    layer = cls(4)
    x = tf.random.normal((2, 6, 7, 8))
    layer.build(x.shape)
    assert layer._through_padded_conv2d()
    native = cls(4)
    native.build(x.shape)
    native.set_weights(layer.get_weights())
    native._through_padded_conv2d = lambda: False
    results = []
    for conv in (layer, native):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = conv(x)
            loss = tf.reduce_sum(tf.sin(y))
        results.append([y, *tape.gradient(loss, [x, *conv.trainable_weights])])
    for ours, reference in zip(*results, strict=True):
        np.testing.assert_allclose(ours.numpy(), reference.numpy(), rtol=1e-5, atol=1e-5)


def test_a_way_that_fails_here_is_timed_as_infinitely_slow(monkeypatch):
    def broken(padded, kernel, dy):
        raise tf.errors.UnimplementedError(None, None, "no such kernel here")

    monkeypatch.setitem(conv_backward._KERNEL_GRADIENTS, "forward", broken)
    times = conv_backward.time_backwards((2, 6, 7, 8), KERNEL, PADS, rounds=1)
    assert times["kernel"]["forward"] == float("inf")
    assert times["kernel"]["stock"] < float("inf") and times["input"]["forward"] < float("inf")


def test_under_xla_the_plain_convolution_is_differentiated_by_xla(monkeypatch):
    """Inside a jit-compiled function (here with an unknown batch and a tf.cond,
    as a distributed fit step traces it) nothing is timed, and the gradients are
    XLA's own, equal to TensorFlow's outside XLA."""

    def no_timing(*args, **kwargs):
        raise AssertionError("timed inside an XLA-compiled function")

    monkeypatch.setattr(conv_backward, "choose_backward", no_timing)
    kernel = tf.constant(np.random.default_rng(0).normal(size=(2, 3, 8, 4)), tf.float32)
    pads = ((1, 0), (1, 1))

    def loss_and_gradient(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = tf.cond(
                tf.shape(x)[0] > 0,
                lambda: padded_conv2d(x, kernel, pads),
                lambda: tf.zeros((0, 6, 7, 4)),
            )
            loss = tf.reduce_sum(tf.sin(y))
        return tape.gradient(loss, x)

    spec = tf.TensorSpec((None, 6, 7, 8), tf.float32)
    compiled = tf.function(loss_and_gradient, jit_compile=True, input_signature=[spec])
    x = tf.random.normal((2, 6, 7, 8))
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = tf.nn.conv2d(tf.pad(x, ((0, 0), *pads, (0, 0))), kernel, 1, "VALID")
        reference = tape.gradient(tf.reduce_sum(tf.sin(y)), x)
    np.testing.assert_allclose(compiled(x), reference, rtol=1e-4, atol=1e-4)


def test_timing_many_shapes_logs_no_retracing_warnings(caplog):
    """Each timed way is a fresh tf.function; TensorFlow's "frequent retracing"
    warnings about them would land in the middle of a user's first step."""
    for width in range(5, 9):
        conv_backward.time_backwards((2, 4, width, 3), (2, 3, 3, 2), ((1, 0), (1, 1)), rounds=1)
    assert not [r for r in caplog.records if "retracing" in r.getMessage()]
