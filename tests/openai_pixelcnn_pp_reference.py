"""A test-only reference for openai/pixel-cnn's PixelCNN++ (``pixel_cnn_pp/model.py``
and ``nn.py``): the variables its ``model_spec`` creates (names, shapes, order),
the checkpoint its ``train.py`` writes, and its forward pass and loss, followed
operation by operation in float64.

Written here from the published structure, independently of
``keras_pixel.models``: the converter is checked against this, not against itself.
"""

import numpy as np
import tensorflow as tf


class _Names:
    """The reference's layer counters: ``conv2d_0``, ``conv2d_1``, ``dense_0``, ..."""

    def __init__(self):
        self.counts = {}

    def next(self, kind):
        n = self.counts.get(kind, 0)
        self.counts[kind] = n + 1
        return f"model/{kind}_{n}"


class Reference:
    """``model_spec(x, h, nr_resnet, nr_filters, nr_logistic_mix)`` of the
    published code, on RGB images, with variables looked up by name.

    With ``params=None`` it only records the variables it would create
    (``self.shapes``, in creation order), for any image size, without computing.
    """

    def __init__(self, nr_resnet, nr_filters, nr_logistic_mix, params=None, h_dim=None):
        self.nr_resnet = nr_resnet
        self.nr_filters = nr_filters
        self.nr_mix = nr_logistic_mix
        self.params = params
        self.h_dim = h_dim
        self.shapes = {}

    # -- variables --------------------------------------------------------
    def _var(self, name, shape):
        self.shapes[name] = tuple(shape)
        if self.params is None:
            return None
        value = self.params[name]
        assert value.shape == tuple(shape), (name, value.shape, shape)
        return tf.constant(value, tf.float64)

    def _wn(self, kind, v_shape, out_channels):
        scope = self.names.next(kind)
        return (
            self._var(f"{scope}/V", v_shape),
            self._var(f"{scope}/g", [out_channels]),
            self._var(f"{scope}/b", [out_channels]),
        )

    # -- layers (nn.py) -----------------------------------------------------
    def conv2d(self, x, num_filters, filter_size, stride, pad_rows, pad_cols):
        in_channels = x.shape[-1] if self.params is not None else x
        v, g, b = self._wn("conv2d", [*filter_size, in_channels, num_filters], num_filters)
        if self.params is None:
            return num_filters
        x = tf.pad(x, [[0, 0], pad_rows, pad_cols, [0, 0]])
        w = tf.reshape(g, [1, 1, 1, num_filters]) * tf.nn.l2_normalize(v, [0, 1, 2])
        return tf.nn.bias_add(tf.nn.conv2d(x, w, [1, *stride, 1], "VALID"), b)

    def down_shifted_conv2d(self, x, num_filters, filter_size=(2, 3), stride=(1, 1)):
        side = (filter_size[1] - 1) // 2
        return self.conv2d(
            x, num_filters, filter_size, stride, [filter_size[0] - 1, 0], [side, side]
        )

    def down_right_shifted_conv2d(self, x, num_filters, filter_size=(2, 2), stride=(1, 1)):
        pads = ([filter_size[0] - 1, 0], [filter_size[1] - 1, 0])
        return self.conv2d(x, num_filters, filter_size, stride, *pads)

    def deconv2d(self, x, num_filters, filter_size, crop):
        in_channels = x.shape[-1] if self.params is not None else x
        v, g, b = self._wn("deconv2d", [*filter_size, num_filters, in_channels], num_filters)
        if self.params is None:
            return num_filters
        n, rows, cols, _ = x.shape
        target = [n, 2 * rows + filter_size[0] - 1, 2 * cols + filter_size[1] - 1, num_filters]
        w = tf.reshape(g, [1, 1, num_filters, 1]) * tf.nn.l2_normalize(v, [0, 1, 3])
        x = tf.nn.bias_add(tf.nn.conv2d_transpose(x, w, target, [1, 2, 2, 1], "VALID"), b)
        return crop(x)

    def down_shifted_deconv2d(self, x, num_filters, filter_size=(2, 3)):
        side = (filter_size[1] - 1) // 2

        def crop(y):
            return y[:, : y.shape[1] - filter_size[0] + 1, side : y.shape[2] - side]

        return self.deconv2d(x, num_filters, filter_size, crop)

    def down_right_shifted_deconv2d(self, x, num_filters, filter_size=(2, 2)):
        def crop(y):
            return y[:, : y.shape[1] - filter_size[0] + 1, : y.shape[2] - filter_size[1] + 1]

        return self.deconv2d(x, num_filters, filter_size, crop)

    def nin(self, x, num_units):
        in_channels = x.shape[-1] if self.params is not None else x
        v, g, b = self._wn("dense", [in_channels, num_units], num_units)
        if self.params is None:
            return num_units
        shape = x.shape
        flat = tf.reshape(x, [-1, shape[-1]])
        scaler = g / tf.sqrt(tf.reduce_sum(tf.square(v), [0]))
        out = tf.reshape(scaler, [1, num_units]) * tf.matmul(flat, v) + tf.reshape(b, [1, -1])
        return tf.reshape(out, [*shape[:-1], num_units])

    @staticmethod
    def concat_elu(x):
        return tf.nn.elu(tf.concat([x, -x], 3))

    def gated_resnet(self, x, a=None, h=None, conv=None):
        if self.params is None:
            # shapes only: "x" and "a" are channel counts
            num_filters = x
            conv(2 * x, num_filters)
            if a is not None:
                self.nin(2 * a, num_filters)
            conv(2 * num_filters, 2 * num_filters)
            if self.h_dim is not None:
                scope = self.names.next("conditional_weights")
                self._var(f"{scope}/hw", [self.h_dim, 2 * num_filters])
            return x
        num_filters = x.shape[-1]
        c1 = conv(self.concat_elu(x), num_filters)
        if a is not None:
            c1 += self.nin(self.concat_elu(a), num_filters)
        c1 = self.concat_elu(c1)
        c2 = conv(c1, 2 * num_filters)
        if h is not None:
            scope = self.names.next("conditional_weights")
            hw = self._var(f"{scope}/hw", [h.shape[-1], 2 * num_filters])
            c2 += tf.reshape(tf.matmul(h, hw), [x.shape[0], 1, 1, 2 * num_filters])
        a_half, b_half = tf.split(c2, 2, 3)
        return x + a_half * tf.nn.sigmoid(b_half)

    # -- model_spec (model.py) ------------------------------------------------
    def __call__(self, x=None, h=None):
        """``x``: float64 ``[N, H, W, 3]`` in [-1, 1] -> ``[N, H, W, 10 K]``;
        shapes only when built without ``params``."""
        self.names = _Names()
        nf = self.nr_filters
        shapes_only = self.params is None
        if shapes_only:
            x_pad = 4
        else:
            x_pad = tf.concat([x, tf.ones([*x.shape[:-1], 1], x.dtype)], 3)
        down_shift = (lambda t: t) if shapes_only else _down_shift
        right_shift = (lambda t: t) if shapes_only else _right_shift
        u_list = [down_shift(self.down_shifted_conv2d(x_pad, nf, (2, 3)))]
        first = down_shift(self.down_shifted_conv2d(x_pad, nf, (1, 3)))
        second = right_shift(self.down_right_shifted_conv2d(x_pad, nf, (2, 1)))
        ul_list = [first if shapes_only else first + second]

        def widen(a, b):
            return a + b if shapes_only else tf.concat([a, b], 3)

        for level in range(3):
            if level > 0:
                u_list.append(self.down_shifted_conv2d(u_list[-1], nf, stride=(2, 2)))
                ul_list.append(self.down_right_shifted_conv2d(ul_list[-1], nf, stride=(2, 2)))
            for _ in range(self.nr_resnet):
                u_list.append(self.gated_resnet(u_list[-1], h=h, conv=self.down_shifted_conv2d))
                ul_list.append(
                    self.gated_resnet(
                        ul_list[-1], u_list[-1], h=h, conv=self.down_right_shifted_conv2d
                    )
                )
        u, ul = u_list.pop(), ul_list.pop()
        for level in range(3):
            if level > 0:
                u = self.down_shifted_deconv2d(u, nf)
                ul = self.down_right_shifted_deconv2d(ul, nf)
            for _ in range(self.nr_resnet + (level > 0)):
                u = self.gated_resnet(u, u_list.pop(), h=h, conv=self.down_shifted_conv2d)
                ul = self.gated_resnet(
                    ul, widen(u, ul_list.pop()), h=h, conv=self.down_right_shifted_conv2d
                )
        assert not u_list and not ul_list
        return self.nin(ul if shapes_only else tf.nn.elu(ul), 10 * self.nr_mix)


def _down_shift(x):
    return tf.concat([tf.zeros_like(x[:, :1]), x[:, :-1]], 1)


def _right_shift(x):
    return tf.concat([tf.zeros_like(x[:, :, :1]), x[:, :, :-1]], 2)


def variable_shapes(nr_resnet, nr_filters, nr_logistic_mix, h_dim=None):
    """``{name: shape}`` of every variable ``model_spec`` creates, in order."""
    reference = Reference(nr_resnet, nr_filters, nr_logistic_mix, h_dim=h_dim)
    reference()
    return reference.shapes


def random_params(shapes, seed=0):
    """Values like a trained model's: ``V`` ~ N(0, 0.05), ``g`` near 1, ``b`` small."""
    rng = np.random.default_rng(seed)
    params = {}
    for name, shape in shapes.items():
        if name.endswith("/g"):
            params[name] = rng.uniform(0.5, 1.5, shape).astype(np.float32)
        elif name.endswith("/b"):
            params[name] = rng.normal(0, 0.1, shape).astype(np.float32)
        else:
            params[name] = rng.normal(0, 0.05, shape).astype(np.float32)
    return params


def write_checkpoint(prefix, params, ema=None, adam=True, skip=()):
    """Writes what the reference ``train.py``'s ``tf.train.Saver`` would: every
    model variable, its Polyak average ``<name>/ExponentialMovingAverage``
    (``ema``: ``{name: value}``; default: the values plus a little noise), and
    Adam's state in unscoped variables ``Variable``, ``Variable_1``, ... (the
    reference's ``adam_updates`` passes its names where ``tf.Variable`` takes
    ``trainable``). Names in ``skip`` are left out (an incomplete checkpoint)."""
    rng = np.random.default_rng(1)
    tensors = dict(params)
    if ema is None:
        ema = {k: v + rng.normal(0, 1e-3, v.shape).astype(np.float32) for k, v in params.items()}
    tensors.update({k + "/ExponentialMovingAverage": v for k, v in ema.items()})
    if adam:
        tensors["Variable"] = np.float32(1.0)
        for n, value in enumerate(params.values(), start=1):
            tensors[f"Variable_{2 * n - 1}"] = np.zeros_like(value)
            tensors[f"Variable_{2 * n}"] = np.zeros_like(value)
    names = sorted(set(tensors) - set(skip))
    tf.raw_ops.SaveV2(
        prefix=prefix,
        tensor_names=names,
        shape_and_slices=[""] * len(names),
        tensors=[tf.constant(tensors[n]) for n in names],
    )
    return ema


def discretized_mix_logistic_log_prob(x, out, nr_mix):
    """The reference loss's per-image log-likelihood (nats), ``x`` in [-1, 1]
    ``[N, H, W, 3]``, ``out`` ``[N, H, W, 10 K]``, its edge cases included."""
    xs = x.shape
    logit_probs = out[..., :nr_mix]
    rest = tf.reshape(out[..., nr_mix:], [*xs, nr_mix * 3])
    means = rest[..., :nr_mix]
    log_scales = tf.maximum(rest[..., nr_mix : 2 * nr_mix], -7.0)
    coeffs = tf.tanh(rest[..., 2 * nr_mix : 3 * nr_mix])
    x = tf.reshape(x, [*xs, 1]) + tf.zeros([*xs, nr_mix], x.dtype)
    m2 = means[..., 1, :] + coeffs[..., 0, :] * x[..., 0, :]
    m3 = means[..., 2, :] + coeffs[..., 1, :] * x[..., 0, :] + coeffs[..., 2, :] * x[..., 1, :]
    means = tf.stack([means[..., 0, :], m2, m3], 3)
    centered = x - means
    inv_stdv = tf.exp(-log_scales)
    plus_in = inv_stdv * (centered + 1.0 / 255.0)
    min_in = inv_stdv * (centered - 1.0 / 255.0)
    cdf_delta = tf.sigmoid(plus_in) - tf.sigmoid(min_in)
    log_cdf_plus = plus_in - tf.nn.softplus(plus_in)
    log_one_minus_cdf_min = -tf.nn.softplus(min_in)
    mid_in = inv_stdv * centered
    log_pdf_mid = mid_in - log_scales - 2.0 * tf.nn.softplus(mid_in)
    log_probs = tf.where(
        x < -0.999,
        log_cdf_plus,
        tf.where(
            x > 0.999,
            log_one_minus_cdf_min,
            tf.where(
                cdf_delta > 1e-5,
                tf.math.log(tf.maximum(cdf_delta, 1e-12)),
                log_pdf_mid - np.log(127.5),
            ),
        ),
    )
    log_probs = tf.reduce_sum(log_probs, 3) + tf.nn.log_softmax(logit_probs, -1)
    return tf.reduce_sum(tf.reduce_logsumexp(log_probs, -1), [1, 2])
