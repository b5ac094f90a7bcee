"""The discretized logistic mixture of PixelCNN++ (Salimans et al. 2017, section 2.1-2.2),
as a ``tfp.distributions.Distribution`` over integer images."""

import tensorflow as tf
import tensorflow_probability as tfp

from keras_pixel.distributions.categorical import inverse_cdf_sample

tfd = tfp.distributions

LOG_SCALE_MIN = -7.0


def _as_float32(x):
    return None if x is None else tf.cast(tf.convert_to_tensor(x), tf.float32)


def portable_log1p(x):
    """``log(1 + x)`` to float32 precision from ``log`` alone (Kahan's trick), for
    runtimes without a ``log1p`` (tf2onnx has none). Forward only."""
    u = 1.0 + x
    safe = tf.where(u == 1.0, 2.0, u)
    return tf.where(u == 1.0, x, tf.math.log(safe) * (x / (safe - 1.0)))


def portable_expm1(x):
    """``exp(x) - 1`` to float32 precision from ``exp`` and ``log`` (Kahan's trick),
    for runtimes without an ``expm1``. Forward only."""
    u = tf.exp(x)
    safe = tf.where((u == 1.0) | (u == 0.0), 2.0, u)
    ratio = (safe - 1.0) * (x / tf.math.log(safe))
    return tf.where(u == 1.0, x, tf.where(u - 1.0 == -1.0, -1.0, ratio))


def log1mexp_of_log(log_z, portable=False):
    """``log(1 - exp(-z))`` for ``z = exp(log_z) > 0``, with finite values and gradients
    for every finite ``log_z``.

    For tiny ``z`` (a bin much narrower than the scale) it uses
    ``log z - z / 2``, exact to float32 precision below 1e-3 and free of the
    cancellation in ``1 - exp(-z)``; for larger ``z`` the usual two branches. Each
    branch is fed only inputs where it is finite, so that no ``inf`` leaks into the
    gradient of the branch ``tf.where`` does not select. ``portable=True`` swaps
    ``log1p``/``expm1`` for :func:`portable_log1p`/:func:`portable_expm1`.
    """
    log1p, expm1 = (portable_log1p, portable_expm1) if portable else (tf.math.log1p, tf.math.expm1)
    tiny = log_z < -7.0
    z = tf.exp(tf.where(tiny, -7.0, log_z))
    near = z < 0.6931472
    z_near = tf.where(near, z, 0.5)
    z_far = tf.where(near, 1.0, z)
    regular = tf.where(near, tf.math.log(-expm1(-z_near)), log1p(-tf.exp(-z_far)))
    z_tiny = tf.exp(tf.minimum(log_z, -7.0))
    return tf.where(tiny, log_z - 0.5 * z_tiny, regular)


class DiscretizedLogisticMixture(tfd.Distribution):
    """A mixture of discretized logistics per pixel, channels coupled as in PixelCNN++.

    Every pixel of an ``[H, W, C]`` image has ``K`` components. Component ``k``
    draws the channels in order R, G, B, each from a logistic discretized into
    ``2**num_bits`` bins of half-width ``1 / (2**num_bits - 1)`` on [-1, 1]; the
    edge bins take all the mass below the lowest and above the highest value.
    With C = 3 the mean of G shifts by ``tanh(coeffs[0]) * r`` and the mean of B
    by ``tanh(coeffs[1]) * r + tanh(coeffs[2]) * g``, with ``r``, ``g`` the
    observed (scaled) values of the same pixel.

    Every bin's log-mass is computed stably as
    ``log_sigmoid(b) + log_sigmoid(-a) + log1mexp(b - a)`` (``a``, ``b`` the
    standardized bin edges, ``log1mexp`` taken from ``log(b - a)`` by
    :func:`log1mexp_of_log`), so log-probs and their gradients stay finite for
    tiny and huge scales and far tails; log-scales are clamped below at
    ``log_scale_min``;
    everything is computed in float32, also under a mixed-precision policy.

    Args:
        mixture_logits: ``[..., H, W, K]``.
        locs: ``[..., H, W, K, C]`` component means on the [-1, 1] scale.
        log_scales: ``[..., H, W, K, C]``.
        coeffs: ``[..., H, W, K, 3]`` raw channel-coupling coefficients (passed
            through tanh); required for C = 3, ignored for C = 1.
        num_bits: bits per subpixel; values lie in ``[0, 2**num_bits - 1]``.
        log_scale_min: lower clamp of the log-scales.
        validate_args: check that values are integers in range.
        allow_nan_stats: TFP's flag.
        name: name scope.

    Samples are int32 ``[..., H, W, C]``; ``sample(n, seed=..., temperature=t)``
    divides the mixture logits by ``t`` and multiplies the scales by ``t``.
    """

    def __init__(
        self,
        mixture_logits,
        locs,
        log_scales,
        coeffs=None,
        num_bits=8,
        log_scale_min=LOG_SCALE_MIN,
        validate_args=False,
        allow_nan_stats=True,
        name="DiscretizedLogisticMixture",
    ):
        parameters = dict(locals())
        with tf.name_scope(name) as name:
            self._mixture_logits = _as_float32(mixture_logits)
            self._locs = _as_float32(locs)
            self._log_scales = tf.maximum(_as_float32(log_scales), log_scale_min)
            channels = self._locs.shape[-1]
            if channels not in (1, 3):
                raise ValueError(f"locs must end in 1 or 3 channels, got shape {self._locs.shape}.")
            if channels == 3 and coeffs is None:
                raise ValueError("RGB mixtures need coeffs [..., H, W, K, 3].")
            self._coeffs = None if channels == 1 else tf.tanh(_as_float32(coeffs))
            if not 1 <= int(num_bits) <= 16:
                raise ValueError(f"num_bits must be in [1, 16], got {num_bits}.")
            self._num_bits = int(num_bits)
            self._log_scale_min = float(log_scale_min)
            super().__init__(
                dtype=tf.int32,
                reparameterization_type=tfd.NOT_REPARAMETERIZED,
                validate_args=validate_args,
                allow_nan_stats=allow_nan_stats,
                parameters=parameters,
                name=name,
            )

    @classmethod
    def _parameter_properties(cls, dtype, num_classes=None):
        return dict(
            mixture_logits=tfp.util.ParameterProperties(event_ndims=3),
            locs=tfp.util.ParameterProperties(event_ndims=4),
            log_scales=tfp.util.ParameterProperties(event_ndims=4),
            coeffs=tfp.util.ParameterProperties(event_ndims=4, is_preferred=False),
        )

    @property
    def num_bits(self):
        """Bits per subpixel."""
        return self._num_bits

    @property
    def num_values(self):
        """Number of values per subpixel, ``2**num_bits``."""
        return 2**self._num_bits

    @property
    def mixture_logits(self):
        return self._mixture_logits

    @property
    def locs(self):
        return self._locs

    @property
    def log_scales(self):
        """The clamped log-scales."""
        return self._log_scales

    @property
    def coeffs(self):
        """``tanh`` of the raw coupling coefficients, or None for C = 1."""
        return self._coeffs

    def _event_shape(self):
        shape = self._locs.shape
        return tf.TensorShape([shape[-4], shape[-3], shape[-1]])

    def _event_shape_tensor(self):
        shape = tf.shape(self._locs)
        return tf.stack([shape[-4], shape[-3], shape[-1]])

    def _batch_shape(self):
        return self._locs.shape[:-4]

    def _batch_shape_tensor(self):
        return tf.shape(self._locs)[:-4]

    def _scale(self, values):
        """Integers in [0, 2**bits - 1] -> their bin centres in [-1, 1]."""
        return tf.cast(values, tf.float32) * (2.0 / (self.num_values - 1)) - 1.0

    def _coupled_locs(self, scaled):
        """Component means ``[..., H, W, K, C]`` given the scaled pixel values
        ``[..., H, W, C]`` of the earlier channels."""
        if self._coeffs is None:
            return self._locs + tf.zeros_like(scaled[..., None, :])
        r = scaled[..., None, 0]
        g = scaled[..., None, 1]
        c = self._coeffs
        return tf.stack(
            [
                self._locs[..., 0] + tf.zeros_like(r),
                self._locs[..., 1] + c[..., 0] * r,
                self._locs[..., 2] + c[..., 1] * r + c[..., 2] * g,
            ],
            axis=-1,
        )

    def component_log_probs(self, values, portable=False):
        """Log-mass of every channel under every component, ``[..., H, W, K, C]``.

        Args:
            values: integers ``[..., H, W, C]`` in ``[0, 2**num_bits - 1]``.
            portable: compute without ``log1p``/``expm1`` (for ONNX and LiteRT
                exports; forward only).
        """
        values = tf.cast(values, tf.int32)
        scaled = self._scale(values)
        centred = scaled[..., None, :] - self._coupled_locs(scaled)
        inv_scale = tf.exp(-self._log_scales)
        half_width = 1.0 / (self.num_values - 1)
        upper = (centred + half_width) * inv_scale
        lower = (centred - half_width) * inv_scale
        interior = (
            tf.math.log_sigmoid(upper)
            + tf.math.log_sigmoid(-lower)
            + log1mexp_of_log(tf.math.log(2.0 * half_width) - self._log_scales, portable)
        )
        top = tf.cast(self.num_values - 1, values.dtype)
        v = values[..., None, :]
        zeros = tf.zeros_like(interior)
        log_mass = tf.where(
            v == 0,
            tf.math.log_sigmoid(upper),
            tf.where(v == top, tf.math.log_sigmoid(-lower), interior),
        )
        return log_mass + zeros

    def subpixel_log_prob(self, values, portable=False):
        """Conditional log-prob of each channel given the earlier channels of its pixel.

        ``log p(r)``, ``log p(g | r)``, ``log p(b | r, g)`` (the mixture weights
        updated by what was observed), ``[..., H, W, C]``; they sum to
        :meth:`log_prob` over the event. ``portable``: see :meth:`component_log_probs`.
        """
        log_mass = self.component_log_probs(values, portable)
        log_weights = tf.nn.log_softmax(self._mixture_logits, axis=-1)
        joint = log_weights[..., None] + tf.cumsum(log_mass, axis=-1)
        prefix = tf.reduce_logsumexp(joint, axis=-2)
        previous = tf.concat([tf.zeros_like(prefix[..., :1]), prefix[..., :-1]], axis=-1)
        return prefix - previous

    def _log_prob(self, values):
        log_mass = tf.reduce_sum(self.component_log_probs(values), axis=-1)
        log_weights = tf.nn.log_softmax(self._mixture_logits, axis=-1)
        per_pixel = tf.reduce_logsumexp(log_weights + log_mass, axis=-1)
        return tf.reduce_sum(per_pixel, axis=[-2, -1])

    def _quantize(self, continuous):
        index = tf.round((continuous + 1.0) * 0.5 * (self.num_values - 1))
        return tf.cast(tf.clip_by_value(index, 0, self.num_values - 1), tf.int32)

    def sample_channel(self, previous, channel, seed=None, temperature=1.0, uniform=None):
        """Draws one channel of every pixel given the earlier channels.

        The component is drawn from the mixture weights updated by the earlier
        channels (exactly ``p(k | r)`` or ``p(k | r, g)``), then the value from
        that component's discretized logistic, so drawing R, G, B in turn with
        this gives the same distribution as drawing the pixel at once.

        Args:
            previous: integers ``[..., H, W, C]``; only channels before
                ``channel`` are read.
            channel: int (or scalar int tensor) in ``[0, C)``.
            seed: stateless seed, int32 ``[2]``; or pass ``uniform``.
            temperature: > 0: divides the mixture logits and multiplies the scales.
            uniform: float ``[..., H, W, 2]`` in ``(0, 1)``: the noise of the
                component choice and of the logistic draw. The result is a
                deterministic function of it (what cached sampling relies on).

        Returns:
            int32 ``[..., H, W]``.
        """
        channels = self._locs.shape[-1]
        earlier = tf.cast(tf.range(channels) < channel, tf.float32)
        log_mass = self.component_log_probs(previous) * earlier
        logits = tf.nn.log_softmax(self._mixture_logits, axis=-1) + tf.reduce_sum(log_mass, -1)
        if uniform is None:
            if seed is None:
                raise ValueError("sample_channel needs a stateless seed or the uniform noise.")
            shape = tf.concat([tf.shape(logits)[:-1], [2]], axis=0)
            uniform = tf.random.stateless_uniform(shape, seed)
        uniform = tf.clip_by_value(tf.cast(uniform, tf.float32), 1e-7, 1.0 - 1e-7)
        k = inverse_cdf_sample(logits, uniform[..., 0], temperature)
        pick = tf.one_hot(k, tf.shape(logits)[-1])
        onehot_c = tf.one_hot(channel, channels)
        locs = tf.einsum(
            "...kc,...k,c->...", self._coupled_locs(self._scale(previous)), pick, onehot_c
        )
        log_scales = tf.einsum("...kc,...k,c->...", self._log_scales, pick, onehot_c)
        u = uniform[..., 1]
        draw = locs + tf.exp(log_scales) * temperature * (tf.math.log(u) - tf.math.log1p(-u))
        return self._quantize(draw)

    def _sample_n(self, n, seed=None, temperature=1.0):
        seeds = tfp.random.split_seed(seed, self._locs.shape[-1])
        shape = tf.concat([[n], tf.shape(self._locs)[:-2], [self._locs.shape[-1]]], axis=0)
        values = tf.zeros(shape, tf.int32)
        for channel in range(self._locs.shape[-1]):
            drawn = self.sample_channel(values, channel, seeds[channel], temperature)
            values = tf.concat(
                [values[..., :channel], drawn[..., None], values[..., channel + 1 :]], axis=-1
            )
        return values


def num_mixture_params(num_logistic_mix, channels):
    """Channels of the flat parameter map for K components: ``K * (1 + 2C)`` for C = 1,
    ``10 K`` for C = 3 (logits, locs, log-scales, coupling coefficients)."""
    return num_logistic_mix * (1 + 2 * channels + (3 if channels == 3 else 0))


def mixture_from_params(params, num_logistic_mix, channels, num_bits=8):
    """A :class:`DiscretizedLogisticMixture` from a flat parameter map.

    Args:
        params: float ``[..., H, W, P]`` with ``P = num_mixture_params(K, C)``, laid
            out as K mixture logits, then ``K * C`` locs, ``K * C`` log-scales and
            (C = 3) ``K * 3`` coupling coefficients, each block component-major.
        num_logistic_mix: K.
        channels: C, 1 or 3.
        num_bits: bits per subpixel.
    """
    k = num_logistic_mix
    params = tf.cast(params, tf.float32)
    expected = num_mixture_params(k, channels)
    if params.shape[-1] is not None and params.shape[-1] != expected:
        raise ValueError(
            f"{k} components over {channels} channels need {expected} parameters per pixel, "
            f"got {params.shape[-1]}."
        )
    shape = tf.shape(params)[:-1]

    def block(start, width):
        return tf.reshape(params[..., start : start + k * width], tf.concat([shape, [k, width]], 0))

    coeffs = block(k + 2 * k * channels, 3) if channels == 3 else None
    return DiscretizedLogisticMixture(
        params[..., :k],
        block(k, channels),
        block(k + k * channels, channels),
        coeffs,
        num_bits=num_bits,
    )
