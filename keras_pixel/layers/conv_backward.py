"""A padded stride-1 convolution whose backward pass is chosen by timing it on this CPU.

The forward pass is always the plain convolution (``tf.pad`` then a VALID
``tf.nn.conv2d``). Each of its two gradients can be computed three ways, the same
numbers up to float rounding:

- ``"stock"``: TensorFlow's own ``Conv2DBackpropInput`` / ``Conv2DBackpropFilter``
  (oneDNN's where it is on).
- ``"gemm"``: matrix products. Flatten the padded input to rows ``n`` (``[B * H'
  * W', C]``): tap ``(i, j)`` of the kernel meets row ``n + i * W' + j`` for the
  output at row ``n``. With ``D[n, t] = dY[n - offset_t]`` (the output gradient
  laid on the padded grid, shifted by each tap's offset and stacked on the
  channels, ``[B * H' * W', T * F]``), the input gradient is ``D K^T`` and the
  kernel gradient ``X^T D``. Needs a known height and width.
- ``"forward"``: *forward* convolutions. The input gradient is the output
  gradient, padded by the kernel's size less the forward pads, convolved with
  the kernel flipped in space and transposed in its channels. The kernel
  gradient is a convolution over the batch: the padded input as ``[C, H', W',
  B]`` (the channels as the batch, the batch as channels) convolved with the
  output gradient as a kernel ``[H, W, B, F]`` gives ``[C, kh, kw, F]``.

Why: on CPU, ``Conv2DBackpropFilter`` takes about as long for a 2 x 3 or 2 x 2
kernel as for a 3 x 3 one, and ``Conv2DBackpropInput`` reaches half the forward
pass's FLOP/s, so PixelCNN++'s small shifted kernels train slowly through them
(benchmarks/README.md). Which way is fastest depends on the CPU and the shape:
on an AMD EPYC with AVX2, "forward" computed the PixelCNN++ gradients of
``pixelcnn_pp_mnist``'s shapes 1.1-1.9x as fast as "stock" (each with its forward
pass; a training step 1.1-1.3x as fast), while on AVX-512 CPUs oneDNN's own
backward pass beat "gemm" (``benchmarks/bench_conv_backward.py`` prints the
table for this machine). So :func:`choose_backward` times the ways on this machine,
each gradient on its own, once per shape and dtype, and keeps the answer in the
user's cache folder (``<cache>/conv_backward/<machine>.json``; the machine is
its CPU model, ISA flags, core count and TensorFlow version). Only a gradient
being taken times anything: sampling and export never do.

``$KERAS_PIXEL_CONV_BACKWARD`` overrides: ``auto`` (the default: timed),
``rule`` (no timing: "gemm" for narrowing convolutions on CPUs without AVX-512,
"stock" otherwise, as measured before timing existed), or ``stock``, ``gemm``,
``forward`` for every convolution ("gemm" where the size is unknown falls back
to "stock"). With a GPU both gradients are "stock" (cuDNN's).
"""

import contextlib
import hashlib
import json
import logging
import os
import sys
import time

import tensorflow as tf

from keras_pixel import cpu

ENV = "KERAS_PIXEL_CONV_BACKWARD"
BACKWARDS = ("stock", "gemm", "forward")
_MODES = ("auto", "rule", *BACKWARDS)
#: The batch size timed where the graph's batch size is unknown.
TIMING_BATCH = 32
_chosen = {}
_announced = False


def padded_conv2d(x, kernel, pads, bias=None, backward=None):
    """``conv2d(pad(x, pads), kernel, VALID) [+ bias]`` with a chosen backward pass.

    Args:
        x: ``[B, H, W, C]``.
        kernel: ``[kh, kw, C, F]``.
        pads: ``((top, bottom), (left, right))`` zero padding; the output is
            ``[B, H + top + bottom - kh + 1, W + left + right - kw + 1, F]``.
        bias: ``[F]`` or None.
        backward: one of :data:`BACKWARDS` for both gradients, a pair ``(way for
            the input gradient, way for the kernel gradient)``, or None: what
            :func:`choose_backward` picks where the gradient is first taken (so
            a forward-only call, such as sampling or export, times nothing),
            and inside an XLA-compiled function the plain convolution, whose
            gradients XLA computes.

    Returns:
        ``[B, H_out, W_out, F]``.
    """
    ways = None if backward is None else _pair(backward)
    args = [tf.convert_to_tensor(t) for t in (x, kernel) + (() if bias is None else (bias,))]
    _check(args[0].shape, args[1].shape, pads)
    if ways is not None and "gemm" in ways:
        _check_known_size(args[0].shape)
    if backward is None and _in_xla_function():
        return _padded_conv(*args[:2], pads, *args[2:])[1]

    @tf.custom_gradient
    def conv(x, kernel, *bias):
        padded, y = _padded_conv(x, kernel, pads, *bias)

        def grad(dy):
            input_way, kernel_way = ways or choose_backward(x.shape, kernel.shape, pads, x.dtype)
            d_x = _INPUT_GRADIENTS[input_way](padded, kernel, dy, x, pads)
            d_kernel = _KERNEL_GRADIENTS[kernel_way](padded, kernel, dy)
            return (d_x, d_kernel, *(tf.reduce_sum(dy, (0, 1, 2)) for _ in bias))

        return y, grad

    return conv(*args)


def _padded_conv(x, kernel, pads, bias=None):
    """-> ``(padded input, output)`` of the padded VALID convolution."""
    padded = tf.pad(x, ((0, 0), *pads, (0, 0)))
    y = tf.nn.conv2d(padded, kernel, strides=1, padding="VALID")
    return padded, (y if bias is None else tf.nn.bias_add(y, bias))


def _in_xla_function():
    """Whether the graph being traced is compiled by XLA (``jit_compile=True``):
    XLA lowers a convolution's gradients itself, and the timing measures
    TensorFlow's kernels, not XLA's. (Inside a ``tf.cond`` of such a function, a
    custom gradient's captures also fail to compile.)"""
    try:
        from tensorflow.python.ops import control_flow_util
    except ImportError:
        return False
    return control_flow_util.GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph())


def _pair(backward):
    pair = (backward, backward) if isinstance(backward, str) else tuple(backward)
    if len(pair) != 2 or any(way not in BACKWARDS for way in pair):
        raise ValueError(
            f"backward must be one of {BACKWARDS}, a pair of them or None, got {backward!r}."
        )
    return pair


def choose_backward(input_shape, kernel_shape, pads, dtype=tf.float32):
    """The ways :func:`padded_conv2d` computes its two gradients for
    ``input_shape`` ``[B, H, W, C]``, ``kernel_shape`` ``[kh, kw, C, F]``,
    ``pads`` and ``dtype``: ``(input gradient's way, kernel gradient's way)``.

    By ``$KERAS_PIXEL_CONV_BACKWARD`` (see the module's docstring); by timing (the
    default: each gradient's fastest way, measured once per machine and shape and
    then read back); or by the rule where timing is not possible (an unknown
    height or width, inside a ``tf.distribute`` strategy without a kept timing).
    """
    mode = backward_mode()
    known = None not in tuple(input_shape)[1:3]
    if tf.config.list_logical_devices("GPU"):
        return ("stock", "stock")
    if mode in BACKWARDS:
        way = mode if known or mode != "gemm" else "stock"
        return (way, way)
    if mode == "rule" or not known:
        return _rule(input_shape, kernel_shape)
    key = _shape_key(input_shape, kernel_shape, pads, tf.as_dtype(dtype).name)
    if key not in _chosen:
        table = _read_table()
        if key in table:
            _chosen[key] = (table[key]["input"], table[key]["kernel"])
        elif tf.distribute.has_strategy():
            return _rule(input_shape, kernel_shape)
        else:
            times = time_backwards(input_shape, kernel_shape, pads, tf.as_dtype(dtype).name)
            _chosen[key] = tuple(min(times[g], key=times[g].get) for g in ("input", "kernel"))
            _write_entry(key, {"input": _chosen[key][0], "kernel": _chosen[key][1], "ms": times})
    return _chosen[key]


def backward_mode():
    """``$KERAS_PIXEL_CONV_BACKWARD``, checked: ``"auto"`` where unset."""
    mode = os.environ.get(ENV, "auto").strip().lower() or "auto"
    if mode not in _MODES:
        raise ValueError(f"${ENV} must be one of {', '.join(_MODES)}; got {mode!r}.")
    return mode


def time_backwards(input_shape, kernel_shape, pads, dtype="float32", rounds=5):
    """Milliseconds of the forward pass plus one gradient, per gradient and way:
    ``{"input": {way: ms}, "kernel": {way: ms}}``, each the median of ``rounds``
    interleaved runs on random data (batch :data:`TIMING_BATCH` where
    ``input_shape``'s is unknown); infinity for a way that fails to run here
    (TensorFlow's own always runs). Runs eagerly, also when called while a graph
    is traced."""
    batch = input_shape[0] or TIMING_BATCH
    shape = (batch, *tuple(input_shape)[1:])
    _announce()
    with tf.init_scope(), _without_retracing_warnings():
        x = tf.cast(tf.random.normal(shape), dtype)
        kernel = tf.cast(tf.random.normal(kernel_shape) * 0.1, dtype)
        steps = {
            (gradient, way): _training_step(gradient, way, pads)
            for gradient in ("input", "kernel")
            for way in BACKWARDS
        }
        samples = {step: [] for step in steps}
        for name, step in list(steps.items()):
            try:
                step(x, kernel).numpy()
            except (tf.errors.OpError, ValueError, TypeError):
                del steps[name]
                samples[name].append(float("inf"))
        for _ in range(rounds):
            for name, step in steps.items():
                start = time.perf_counter()
                step(x, kernel).numpy()
                samples[name].append(1e3 * (time.perf_counter() - start))
    times = {"input": {}, "kernel": {}}
    for (gradient, way), ms in samples.items():
        times[gradient][way] = sorted(ms)[len(ms) // 2]
    return times


@contextlib.contextmanager
def _without_retracing_warnings():
    """TensorFlow's logger above WARNING: each timed way is a new ``tf.function``,
    which TensorFlow would otherwise report as frequent retracing, once per few
    shapes, in the middle of a user's first training step."""
    logger = tf.get_logger()
    level = logger.level
    logger.setLevel(max(level, logging.ERROR))
    try:
        yield
    finally:
        logger.setLevel(level)


def _training_step(gradient, way, pads):
    """The forward pass and one gradient computed ``way`` (the output taken as its
    own gradient, so that no step is dead code), called directly rather than
    through a tape: tapes do not record inside a gradient function, where
    :func:`choose_backward` runs."""

    @tf.function(autograph=False)
    def step(x, kernel):
        padded = tf.pad(x, ((0, 0), *pads, (0, 0)))
        y = tf.nn.conv2d(padded, kernel, strides=1, padding="VALID")
        if gradient == "input":
            result = _INPUT_GRADIENTS[way](padded, kernel, y, x, pads)
        else:
            result = _KERNEL_GRADIENTS[way](padded, kernel, y)
        return tf.reduce_sum(result[:1, :1, :1])

    return step


def _announce():
    """One line on stderr, the first time this process times anything."""
    global _announced
    if not _announced:
        _announced = True
        folder = _table_path()
        where = f"; kept in {folder}" if folder else ""
        print(
            "keras-pixel: timing the backward passes of the shifted convolutions on this "
            f"CPU, once per shape{where} (set ${ENV}=rule to skip)",
            file=sys.stderr,
        )


def _rule(input_shape, kernel_shape):
    """The rule measured before timing, for both gradients: "gemm" for a narrowing
    convolution (at most half as many output channels as input channels) of known
    size on a CPU without AVX-512, "stock" otherwise."""
    _, h, w, c = tuple(input_shape)
    narrowing = c is not None and 2 * kernel_shape[-1] <= c
    way = "stock" if h is None or w is None or not narrowing or cpu_has_avx512() else "gemm"
    return (way, way)


def cpu_has_avx512():
    """Whether this machine's CPU has AVX-512 (from ``/proc/cpuinfo``; False where
    that cannot be read)."""
    return "avx512f" in cpu.cpu_flags()


def _shape_key(input_shape, kernel_shape, pads, dtype):
    _, h, w, c = tuple(input_shape)
    kh, kw, _, f = tuple(kernel_shape)
    (top, bottom), (left, right) = pads
    return f"{dtype} {h}x{w}x{c} k{kh}x{kw}x{f} pad{top},{bottom},{left},{right}"


def _table_path():
    """``<cache>/conv_backward/<machine>.json``, or None with the cache off."""
    from keras_pixel.sampler_cache import cache_dir

    folder = cache_dir()
    if folder is None:
        return None
    machine = json.dumps([cpu.cpu_model(), sorted(cpu.cpu_flags()), os.cpu_count(), tf.__version__])
    digest = hashlib.sha256(machine.encode()).hexdigest()[:16]
    return os.path.join(folder, "conv_backward", f"{digest}.json")


def _read_table():
    """The timed choices kept for this machine, ``{key: {"input", "kernel", "ms"}}``;
    an unreadable file counts as empty (it is timed again and rewritten)."""
    path = _table_path()
    if path is None or not os.path.exists(path):
        return {}
    try:
        with open(path) as f:
            table = json.load(f)
    except (OSError, ValueError):
        return {}
    if not isinstance(table, dict):
        return {}
    return {
        key: entry
        for key, entry in table.items()
        if isinstance(entry, dict)
        and entry.get("input") in BACKWARDS
        and entry.get("kernel") in BACKWARDS
    }


def _write_entry(key, entry):
    """Adds ``key`` to the machine's table, written whole to a temporary file and
    renamed over the old one, so a reader never sees half a file."""
    path = _table_path()
    if path is None:
        return
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        table = _read_table()
        table[key] = entry
        temporary = f"{path}.{os.getpid()}.tmp"
        with open(temporary, "w") as f:
            json.dump(table, f, indent=1, sort_keys=True)
        os.replace(temporary, path)
    except OSError as error:
        print(f"keras-pixel: could not keep the timing in {path}: {error}", file=sys.stderr)


def _check(x_shape, kernel_shape, pads):
    if len(x_shape) != 4:
        raise ValueError(f"padded_conv2d needs x [B, H, W, C], got {x_shape}.")
    if len(kernel_shape) != 4 or kernel_shape[2] != x_shape[3]:
        raise ValueError(
            f"padded_conv2d needs a kernel [kh, kw, {x_shape[3]}, F] for x {x_shape}, "
            f"got {kernel_shape}."
        )
    (top, bottom), (left, right) = pads
    if min(top, bottom, left, right) < 0:
        raise ValueError(f"pads must not be negative, got {pads}.")
    h, w = x_shape[1], x_shape[2]
    if (h is not None and h + top + bottom < kernel_shape[0]) or (
        w is not None and w + left + right < kernel_shape[1]
    ):
        raise ValueError(
            f"The kernel {kernel_shape[:2]} is larger than x {x_shape} padded by {pads}."
        )


def _check_known_size(x_shape):
    if x_shape[1] is None or x_shape[2] is None:
        raise ValueError(
            f'The "gemm" backward pass needs x [B, H, W, C] with H and W known, got {x_shape}.'
        )


def _stock_input_gradient(padded, kernel, dy, x, pads):
    """TensorFlow's ``Conv2DBackpropInput``."""
    d_padded = tf.compat.v1.nn.conv2d_backprop_input(
        tf.shape(padded), kernel, dy, strides=(1, 1, 1, 1), padding="VALID"
    )
    return _unpad(d_padded, x, pads)


def _stock_kernel_gradient(padded, kernel, dy):
    """TensorFlow's ``Conv2DBackpropFilter``."""
    return tf.compat.v1.nn.conv2d_backprop_filter(
        padded, tf.shape(kernel), dy, strides=(1, 1, 1, 1), padding="VALID"
    )


def _gemm_input_gradient(padded, kernel, dy, x, pads):
    """``D K^T`` (see the module's docstring)."""
    kh, kw, c, f = kernel.shape
    taps = tf.reshape(tf.transpose(kernel, (0, 1, 3, 2)), (kh * kw * f, c))
    d_padded = tf.reshape(tf.matmul(_shifted_gradients(padded, kernel, dy), taps), tf.shape(padded))
    return _unpad(d_padded, x, pads)


def _gemm_kernel_gradient(padded, kernel, dy):
    """``X^T D`` (see the module's docstring)."""
    kh, kw, c, f = kernel.shape
    d = _shifted_gradients(padded, kernel, dy)
    d_kernel = tf.matmul(tf.reshape(padded, (-1, c)), d, transpose_a=True)
    return tf.transpose(tf.reshape(d_kernel, (c, kh, kw, f)), (1, 2, 0, 3))


def _shifted_gradients(padded, kernel, dy):
    """``D`` ``[B * H' * W', kh * kw * F]``: the output gradient laid on the padded
    grid, shifted by each tap's offset. Both gemm gradients build the same ops,
    which TensorFlow's graph optimizer computes once."""
    kh, kw, _, f = kernel.shape
    hp, wp = padded.shape[1], padded.shape[2]
    rows = tf.shape(padded)[0] * hp * wp
    # One zero image in front of the batch: the rows before the first output
    # that the shifted copies of dy start from (every offset is < hp * wp).
    dy = tf.pad(dy, ((1, 0), (0, hp - dy.shape[1]), (0, wp - dy.shape[2]), (0, 0)))
    dy = tf.reshape(dy, (-1, f))
    offsets = [i * wp + j for i in range(kh) for j in range(kw)]
    return tf.concat([dy[hp * wp - o : hp * wp - o + rows] for o in offsets], axis=1)


def _forward_input_gradient(padded, kernel, dy, x, pads):
    """The output gradient, padded by the kernel's size less the forward pads
    (cropped where that is negative), convolved with the kernel flipped in space
    and transposed in its channels: ``d_x[u] = sum_t dy[u + pad_before - t]
    kernel[t]`` per axis."""
    kh, kw = kernel.shape[0], kernel.shape[1]
    (top, bottom), (left, right) = pads
    edges = [(kh - 1 - top, kh - 1 - bottom), (kw - 1 - left, kw - 1 - right)]
    dy = tf.pad(dy, ((0, 0), *[(max(a, 0), max(b, 0)) for a, b in edges], (0, 0)))
    h, w = tf.shape(dy)[1], tf.shape(dy)[2]
    (crop_top, crop_bottom), (crop_left, crop_right) = [(max(-a, 0), max(-b, 0)) for a, b in edges]
    dy = dy[:, crop_top : h - crop_bottom, crop_left : w - crop_right]
    flipped = tf.transpose(tf.reverse(kernel, (0, 1)), (0, 1, 3, 2))
    return tf.nn.conv2d(dy, flipped, 1, "VALID")


def _forward_kernel_gradient(padded, kernel, dy):
    """A convolution over the batch: the padded input as ``[C, H', W', B]`` with
    the output gradient as the kernel ``[H, W, B, F]`` -> ``[C, kh, kw, F]``."""
    d_kernel = tf.nn.conv2d(
        tf.transpose(padded, (3, 1, 2, 0)), tf.transpose(dy, (1, 2, 0, 3)), 1, "VALID"
    )
    return tf.transpose(d_kernel, (1, 2, 0, 3))


def _unpad(d_padded, x, pads):
    """The gradient with respect to ``x`` from that of the padded input."""
    (top, _), (left, _) = pads
    return tf.slice(d_padded, (0, top, left, 0), tf.shape(x))


_INPUT_GRADIENTS = {
    "stock": _stock_input_gradient,
    "gemm": _gemm_input_gradient,
    "forward": _forward_input_gradient,
}
_KERNEL_GRADIENTS = {
    "stock": _stock_kernel_gradient,
    "gemm": _gemm_kernel_gradient,
    "forward": _forward_kernel_gradient,
}
