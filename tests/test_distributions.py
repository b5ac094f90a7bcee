import numpy as np
import pytest
import tensorflow as tf
from scipy import stats

from keras_pixel.distributions import pixel_categorical, sample_subpixel, subpixel_log_prob


def _reference_log_softmax(logits):
    logits = np.asarray(logits, np.float64)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def test_log_prob_matches_float64_reference():
    rng = np.random.default_rng(0)
    logits = rng.normal(scale=4.0, size=(3, 4, 5, 3, 256)).astype(np.float32)
    images = rng.integers(0, 256, (3, 4, 5, 3))
    ref = np.take_along_axis(_reference_log_softmax(logits), images[..., None], -1)[..., 0]
    dist = pixel_categorical(logits)
    assert dist.event_shape == (4, 5, 3)
    np.testing.assert_allclose(dist.distribution.log_prob(images), ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dist.log_prob(images), ref.sum(axis=(1, 2, 3)), rtol=1e-5)
    np.testing.assert_allclose(subpixel_log_prob(logits, images), ref, rtol=1e-5, atol=1e-5)


def test_probabilities_over_all_256_values_sum_to_one():
    logits = tf.random.normal((7, 256), stddev=10.0)
    values = tf.range(256)[:, None] * tf.ones((1, 7), tf.int32)
    probs = tf.exp(subpixel_log_prob(logits[None], values)).numpy()
    np.testing.assert_allclose(probs.sum(axis=0), 1.0, rtol=1e-5)


def test_temperature_divides_logits():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(2, 256)).astype(np.float32)
    lp = pixel_categorical(logits, temperature=0.5, event_ndims=0).log_prob([3, 7])
    ref = _reference_log_softmax(logits / 0.5)[[0, 1], [3, 7]]
    np.testing.assert_allclose(lp, ref, rtol=1e-5)
    with pytest.raises(ValueError, match="temperature"):
        pixel_categorical(logits, temperature=0.0)


def test_samples_follow_the_probabilities():
    rng = np.random.default_rng(2)
    logits = rng.normal(scale=1.5, size=(256,)).astype(np.float32)
    draws = sample_subpixel(np.tile(logits, (20000, 1)), seed=tf.constant([1, 2])).numpy()
    probs = np.exp(_reference_log_softmax(logits))
    top = np.argsort(probs)[::-1][:20]
    observed = np.array([np.sum(draws == v) for v in top] + [np.sum(~np.isin(draws, top))])
    expected = np.append(probs[top], 1 - probs[top].sum()) * len(draws)
    assert stats.chisquare(observed, expected).pvalue > 1e-3


def test_seeded_draws_repeat():
    logits = tf.random.normal((16, 256))
    a = sample_subpixel(logits, seed=tf.constant([5, 6]))
    b = sample_subpixel(logits, seed=tf.constant([5, 6]))
    c = sample_subpixel(logits, seed=tf.constant([5, 7]))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_rejects_wrong_number_of_values():
    with pytest.raises(ValueError, match="K >= 2"):
        pixel_categorical(tf.zeros((2, 2, 2, 1, 1)))
