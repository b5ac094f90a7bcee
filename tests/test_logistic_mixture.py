import numpy as np
import pytest
import tensorflow as tf
from scipy import special, stats

from keras_pixel.distributions import DiscretizedLogisticMixture


def _ref_log_bin(x, loc, log_scale, bits):
    """float64 log-mass of value x of a discretized logistic, written independently:
    with CDF differences on the side of the distribution where they do not cancel."""
    top = 2**bits - 1
    scale = np.exp(np.maximum(log_scale, -7.0))
    centre = 2.0 * x / top - 1.0
    half = 1.0 / top
    a = (centre - half - loc) / scale
    b = (centre + half - loc) / scale
    if x == 0:
        return stats.logistic.logcdf(b)
    if x == top:
        return stats.logistic.logsf(a)
    if a > 0:  # upper tail: sf(a) - sf(b)
        la, lb = stats.logistic.logsf(a), stats.logistic.logsf(b)
    else:  # lower side: cdf(b) - cdf(a)
        la, lb = stats.logistic.logcdf(b), stats.logistic.logcdf(a)
    return la + np.log1p(-np.exp(lb - la))


def _ref_pixel_log_prob(pixel, logits, locs, log_scales, coeffs, bits):
    """log p(pixel) under the mixture, float64, channel coupling as in PixelCNN++."""
    top = 2**bits - 1
    scaled = 2.0 * np.asarray(pixel, np.float64) / top - 1.0
    log_w = logits - special.logsumexp(logits)
    total = []
    for k in range(len(logits)):
        mu = np.array(locs[k], np.float64)
        if len(pixel) == 3:
            c = np.tanh(coeffs[k])
            mu[1] += c[0] * scaled[0]
            mu[2] += c[1] * scaled[0] + c[2] * scaled[1]
        total.append(
            log_w[k]
            + sum(
                _ref_log_bin(pixel[ch], mu[ch], log_scales[k][ch], bits) for ch in range(len(pixel))
            )
        )
    return special.logsumexp(total)


def _random_params(rng, shape, k, channels, loc_scale=0.5, log_scale_shift=-2.0):
    return dict(
        mixture_logits=rng.normal(size=(*shape, k)),
        locs=rng.normal(size=(*shape, k, channels)) * loc_scale,
        log_scales=rng.normal(size=(*shape, k, channels)) + log_scale_shift,
        coeffs=rng.normal(size=(*shape, k, 3)) if channels == 3 else None,
    )


def _check_against_reference(params, values, bits=8, rtol=1e-4, atol=2e-4):
    dist = DiscretizedLogisticMixture(**params, num_bits=bits)
    per_pixel_ours = tf.reduce_sum(dist.subpixel_log_prob(values), -1).numpy()
    h, w = values.shape[-3:-1]
    for i in range(h):
        for j in range(w):
            ref = _ref_pixel_log_prob(
                values[i, j],
                params["mixture_logits"][i, j],
                params["locs"][i, j],
                params["log_scales"][i, j],
                None if params["coeffs"] is None else params["coeffs"][i, j],
                bits,
            )
            np.testing.assert_allclose(per_pixel_ours[i, j], ref, rtol=rtol, atol=atol)
    np.testing.assert_allclose(dist.log_prob(values), per_pixel_ours.sum(), rtol=1e-5)


@pytest.mark.parametrize("channels", [1, 3])
def test_log_prob_matches_float64_reference(channels):
    rng = np.random.default_rng(0)
    params = _random_params(rng, (3, 4), 4, channels)
    values = rng.integers(0, 256, (3, 4, channels))
    values[0, 0] = 0
    values[0, 1] = 255
    _check_against_reference(params, values)


def test_far_tails_and_tiny_scales():
    rng = np.random.default_rng(1)
    params = _random_params(rng, (2, 4), 3, 3, log_scale_shift=-6.0)
    params["locs"][0] = -1.0  # all mass at 0 ...
    params["log_scales"][1] = -12.0  # ... and scales far below the clamp
    values = np.array(
        [
            [[255, 250, 3], [128, 255, 0], [200, 1, 254], [0, 0, 0]],
            [[17, 93, 201], [255, 255, 255], [1, 128, 64], [130, 7, 99]],
        ]
    )
    _check_against_reference(params, values, rtol=1e-4, atol=5e-3)


@pytest.mark.parametrize("bits", [8, 5])
@pytest.mark.parametrize("channels", [1, 3])
def test_probabilities_over_all_values_sum_to_one(bits, channels):
    rng = np.random.default_rng(2)
    n = 2**bits
    params = _random_params(rng, (1, 1), 5, channels)
    base = rng.integers(0, n, (channels,))
    for c in range(channels):
        values = np.tile(base, (n, 1))
        values[:, c] = np.arange(n)
        batched = {
            k: (None if v is None else np.broadcast_to(v, (n, *v.shape))) for k, v in params.items()
        }
        dist = DiscretizedLogisticMixture(**batched, num_bits=bits)
        lp = dist.subpixel_log_prob(values[:, None, None, :]).numpy()[:, 0, 0, c]
        np.testing.assert_allclose(np.exp(lp.astype(np.float64)).sum(), 1.0, rtol=1e-5)


def test_gradients_are_finite_everywhere():
    rng = np.random.default_rng(3)
    params = {
        k: (None if v is None else tf.Variable(v, dtype=tf.float32))
        for k, v in _random_params(rng, (2, 3), 4, 3).items()
    }
    params["log_scales"].assign(params["log_scales"] - 15.0)
    params["locs"][0].assign(tf.fill(params["locs"][0].shape, 30.0))
    values = rng.integers(0, 256, (2, 3, 3))
    values[0, 0] = [0, 255, 0]
    with tf.GradientTape() as tape:
        lp = DiscretizedLogisticMixture(**params).log_prob(values)
    grads = tape.gradient(lp, list(params.values()))
    assert np.isfinite(lp.numpy())
    for g in grads:
        assert np.all(np.isfinite(g.numpy()))


def test_computed_in_float32_from_float16_parameters():
    rng = np.random.default_rng(4)
    params = {
        k: (None if v is None else v.astype(np.float16))
        for k, v in _random_params(rng, (2, 2), 3, 1).items()
    }
    lp = DiscretizedLogisticMixture(**params).log_prob(np.zeros((2, 2, 1), np.int32))
    assert lp.dtype == tf.float32


def test_samples_match_probabilities():
    rng = np.random.default_rng(5)
    params = _random_params(rng, (1, 1), 3, 3, loc_scale=0.3, log_scale_shift=-3.0)
    n = 20000
    dist = DiscretizedLogisticMixture(**params)
    draws = dist.sample(n, seed=tf.constant([4, 2])).numpy()[:, 0, 0]
    # Marginal of R, and of G given the most frequent R, against the model's own
    # (reference-checked) probabilities: chi-square over the 12 likeliest values + rest.
    grid = np.zeros((256, 1, 1, 3), np.int32)
    grid[:, 0, 0, 0] = np.arange(256)
    p_r = np.exp(dist.subpixel_log_prob(grid).numpy()[:, 0, 0, 0].astype(np.float64))
    top = np.argsort(p_r)[::-1][:12]
    observed = [np.sum(draws[:, 0] == v) for v in top] + [np.sum(~np.isin(draws[:, 0], top))]
    expected = np.append(p_r[top], 1 - p_r[top].sum()) * n
    assert stats.chisquare(observed, expected).pvalue > 1e-3
    r = np.bincount(draws[:, 0]).argmax()
    given = draws[draws[:, 0] == r]
    grid[:, 0, 0, 0] = r
    grid[:, 0, 0, 1] = np.arange(256)
    p_g = np.exp(dist.subpixel_log_prob(grid).numpy()[:, 0, 0, 1].astype(np.float64))
    top = np.argsort(p_g)[::-1][:8]
    observed = [np.sum(given[:, 1] == v) for v in top] + [np.sum(~np.isin(given[:, 1], top))]
    expected = np.append(p_g[top], 1 - p_g[top].sum()) * len(given)
    assert stats.chisquare(observed, expected).pvalue > 1e-3


def test_shapes_and_errors():
    rng = np.random.default_rng(6)
    dist = DiscretizedLogisticMixture(**_random_params(rng, (5, 2, 3), 4, 3))
    assert dist.batch_shape == (5,) and dist.event_shape == (2, 3, 3)
    assert dist.sample(seed=tf.constant([1, 1])).shape == (5, 2, 3, 3)
    with pytest.raises(ValueError, match="coeffs"):
        DiscretizedLogisticMixture(
            np.zeros((1, 1, 2)), np.zeros((1, 1, 2, 3)), np.zeros((1, 1, 2, 3))
        )
    with pytest.raises(ValueError, match="num_bits"):
        DiscretizedLogisticMixture(
            np.zeros((1, 1, 2)), np.zeros((1, 1, 2, 1)), np.zeros((1, 1, 2, 1)), num_bits=0
        )


def test_log1mexp_of_log_against_float64():
    from keras_pixel.distributions.logistic_mixture import log1mexp_of_log

    log_z = np.linspace(-80.0, 5.0, 400)
    z = np.exp(log_z)
    ref = np.log(-np.expm1(-z))
    np.testing.assert_allclose(
        log1mexp_of_log(tf.constant(log_z, tf.float32)), ref, rtol=1e-5, atol=1e-6
    )
    x = tf.Variable(log_z.astype(np.float32))
    with tf.GradientTape() as tape:
        y = tf.reduce_sum(log1mexp_of_log(x))
    assert np.all(np.isfinite(tape.gradient(y, x).numpy()))


def test_temperature_and_seed():
    rng = np.random.default_rng(7)
    dist = DiscretizedLogisticMixture(**_random_params(rng, (4, 4), 3, 3, log_scale_shift=-2.0))
    seed = tf.constant([3, 4])
    a = dist.sample(200, seed=seed).numpy()
    np.testing.assert_array_equal(a, dist.sample(200, seed=seed).numpy())
    cold = dist.sample(200, seed=seed, temperature=0.05).numpy()
    hot = dist.sample(200, seed=seed, temperature=3.0).numpy()
    assert cold.std(axis=0).mean() < a.std(axis=0).mean() < hot.std(axis=0).mean()


def test_sample_channel_needs_a_seed_or_noise():
    params = _random_params(np.random.default_rng(6), (1, 1), 2, 1)
    dist = DiscretizedLogisticMixture(**params)
    with pytest.raises(ValueError, match="seed or the uniform noise"):
        dist.sample_channel(np.zeros((1, 1, 1), np.int32), 0)
    drawn = dist.sample_channel(np.zeros((1, 1, 1), np.int32), 0, uniform=np.full((1, 1, 2), 0.5))
    assert drawn.shape == (1, 1)
