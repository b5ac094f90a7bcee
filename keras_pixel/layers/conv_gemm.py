"""A padded stride-1 convolution whose backward pass runs as two matrix products.

On CPU, TensorFlow's ``Conv2DBackpropFilter`` takes about as long for 32 output
channels as for 64, so for the narrowing ``2F -> F`` first convolution of every
PixelCNN++ gated resnet it is the slowest op of a training step. Here both
gradients come from one matrix ``D`` built from the output gradient. Flatten
the padded input to rows ``n`` (``[B * H' * W', C]``): tap ``(i, j)`` of the
kernel meets row ``n + i * W' + j`` for the output at row ``n``. With ``D[n, t] =
dY[n - offset_t]`` (the output gradient laid on the padded grid, shifted by each
tap's offset and stacked on the channels, ``[B * H' * W', T * F]``),

- the kernel gradient is ``X^T D`` (``[C, T * F]``), one product, and
- the input gradient is ``D K^T``, with the taps of ``K`` stacked the same way.

Rows of ``D`` off the output grid are zero, so padding gets no gradient. The
forward pass is the plain convolution.

Measured on the 2-core development CPU (benchmarks/README.md): both gradients of
a 2 x 3, 64 -> 32 convolution at ``[32, 28, 28]`` in 18.5 ms against 29.3 ms for
``Conv2DBackpropFilter`` + ``Conv2DBackpropInput``, but slower for 64 -> 64, and
a PixelCNN++ training step 6-9% faster with it on the narrowing convolutions
only (slower with it on every convolution). That was an AMD EPYC with AVX2; on
an Intel Xeon with AVX-512 and AMX, oneDNN's own backward pass is the faster one
(the same PixelCNN++ step 2-9% faster in float32 and 6-7% in bfloat16 without
this path, benchmarks/README.md). :func:`use_gemm_backward` encodes both.
"""

import tensorflow as tf

from keras_pixel import cpu


def use_gemm_backward(input_shape, filters):
    """Whether :func:`padded_conv2d` pays for a stride-1 convolution from
    ``input_shape`` ``[B, H, W, C]`` to ``filters`` channels: a known height and
    width, at most half as many output channels as input channels, no GPU
    (where cuDNN's own backward pass is the one to use) and a CPU without
    AVX-512 (where oneDNN's is, see the module's docstring)."""
    if len(input_shape) != 4:
        return False
    _, h, w, c = input_shape
    if h is None or w is None or c is None or 2 * filters > c:
        return False
    return not cpu_has_avx512() and not tf.config.list_logical_devices("GPU")


def cpu_has_avx512():
    """Whether this machine's CPU has AVX-512 (from ``/proc/cpuinfo``; False where
    that cannot be read)."""
    return "avx512f" in cpu.cpu_flags()


def padded_conv2d(x, kernel, pads, bias=None):
    """``conv2d(pad(x, pads), kernel, VALID) [+ bias]`` with the matrix-product
    backward pass.

    Args:
        x: ``[B, H, W, C]``, ``H`` and ``W`` known.
        kernel: ``[kh, kw, C, F]``.
        pads: ``((top, bottom), (left, right))`` zero padding; the output is
            ``[B, H + top + bottom - kh + 1, W + left + right - kw + 1, F]``.
        bias: ``[F]`` or None.

    Returns:
        ``[B, H_out, W_out, F]``.
    """
    args = [tf.convert_to_tensor(t) for t in (x, kernel) + (() if bias is None else (bias,))]
    _check(args[0].shape, args[1].shape, pads)

    @tf.custom_gradient
    def conv(x, kernel, *bias):
        padded = tf.pad(x, ((0, 0), *pads, (0, 0)))
        y = tf.nn.conv2d(padded, kernel, strides=1, padding="VALID")
        if bias:
            y = tf.nn.bias_add(y, bias[0])

        def grad(dy):
            d_x, d_kernel = _gradients(padded, kernel, dy, x.shape, pads)
            return (d_x, d_kernel, *(tf.reduce_sum(dy, (0, 1, 2)) for _ in bias))

        return y, grad

    return conv(*args)


def _check(x_shape, kernel_shape, pads):
    if len(x_shape) != 4 or x_shape[1] is None or x_shape[2] is None:
        raise ValueError(f"padded_conv2d needs x [B, H, W, C] with H and W known, got {x_shape}.")
    if len(kernel_shape) != 4 or kernel_shape[2] != x_shape[3]:
        raise ValueError(
            f"padded_conv2d needs a kernel [kh, kw, {x_shape[3]}, F] for x {x_shape}, "
            f"got {kernel_shape}."
        )
    (top, bottom), (left, right) = pads
    if min(top, bottom, left, right) < 0:
        raise ValueError(f"pads must not be negative, got {pads}.")
    if x_shape[1] + top + bottom < kernel_shape[0] or x_shape[2] + left + right < kernel_shape[1]:
        raise ValueError(
            f"The kernel {kernel_shape[:2]} is larger than x {x_shape} padded by {pads}."
        )


def _gradients(padded, kernel, dy, x_shape, pads):
    """``(dL/dx, dL/dkernel)`` from the padded input ``[B, H', W', C]``, the
    kernel and the output gradient ``dy``."""
    kh, kw, c, f = kernel.shape
    batch = tf.shape(padded)[0]
    hp, wp = padded.shape[1], padded.shape[2]
    rows = batch * hp * wp
    # One zero image in front of the batch: the rows before the first output
    # that the shifted copies of dy start from (every offset is < hp * wp).
    dy = tf.pad(dy, ((1, 0), (0, hp - dy.shape[1]), (0, wp - dy.shape[2]), (0, 0)))
    dy = tf.reshape(dy, (-1, f))
    offsets = [i * wp + j for i in range(kh) for j in range(kw)]
    d = tf.concat([dy[hp * wp - o : hp * wp - o + rows] for o in offsets], axis=1)

    d_kernel = tf.matmul(tf.reshape(padded, (rows, c)), d, transpose_a=True)
    d_kernel = tf.transpose(tf.reshape(d_kernel, (c, kh, kw, f)), (1, 2, 0, 3))

    taps = tf.reshape(tf.transpose(kernel, (0, 1, 3, 2)), (kh * kw * f, c))
    d_padded = tf.reshape(tf.matmul(d, taps), (batch, hp, wp, c))
    (top, _), (left, _) = pads
    d_x = tf.slice(d_padded, (0, top, left, 0), (-1, x_shape[1], x_shape[2], -1))
    return d_x, d_kernel
