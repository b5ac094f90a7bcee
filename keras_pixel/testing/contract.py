"""The contract every autoregressive model of the package keeps, as one check."""

import os
import tempfile

import keras
import numpy as np

from keras_pixel.testing.causality import assert_autoregressive
from keras_pixel.validation import image_dtype


def assert_model_contract(
    model,
    labels=None,
    num_positions=6,
    normalized_at=((0, 0, 0), (-1, -1, -1)),
    cached=True,
    seed=0,
):
    """Checks the properties every model of the package must have.

    * **causal**: a subpixel's log-prob depends on every earlier subpixel it
      should and on nothing at or after it (:func:`assert_autoregressive`);
    * **normalized**: at each of ``normalized_at`` (``(i, j, c)``, negative
      counting from the end), the probabilities of all ``num_values`` values sum
      to 1, in float64;
    * **serializable**: a ``.keras`` round trip rebuilds the same config and
      gives bit-for-bit the same log-probs;
    * **exact cached sampling** (``cached=True``, where the family has a cached
      sampler): the cached and the naive sampler draw the same images from the
      same seed.

    Args:
        model: an :class:`~keras_pixel.models.AutoregressiveModel` (keep it
            small: every check runs the network many times).
        labels: for a conditional model, one class id (or condition vector)
            used for every image.
        num_positions: subpixels perturbed in the causality check.
        normalized_at: subpixels whose distribution must sum to one.
        cached: also compare cached and naive sampling.
        seed: images, positions and sampling seed.

    Raises:
        AssertionError: naming the property that fails.
    """
    rng = np.random.default_rng(seed)
    k, shape = model.num_values, tuple(model.image_shape)
    images = rng.integers(0, k, (2, *shape)).astype(image_dtype(k))

    def per_image(n):
        if labels is None:
            return None
        array = np.asarray(labels)
        return np.broadcast_to(array, (n, *array.shape)) if array.ndim else np.full(n, array)

    def log_prob(x, reduce=False, on=model):
        return on.log_prob(x, reduce=reduce, labels=per_image(len(x)), batch_size=len(x))

    assert_autoregressive(
        model, images, num_positions=num_positions, seed=seed, log_prob_fn=log_prob
    )

    for position in normalized_at:
        i, j, c = (p % n for p, n in zip(position, shape, strict=True))
        batch = np.repeat(images[:1], k, axis=0)
        batch[:, i, j, c] = np.arange(k)
        total = np.exp(log_prob(batch)[:, i, j, c].astype(np.float64)).sum()
        if not abs(total - 1.0) < 1e-4:
            raise AssertionError(
                f"Not normalized: the {k} values of subpixel {(i, j, c)} have total "
                f"probability {total:.6f}."
            )

    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.keras")
        model.save(path)
        loaded = keras.saving.load_model(path)
    if loaded.get_config() != model.get_config():
        raise AssertionError("The .keras round trip changed the model's config.")
    if not np.array_equal(log_prob(images, True, loaded), log_prob(images, True)):
        raise AssertionError("The .keras round trip changed the log-probs.")

    if cached and model.supports_cached_sampling:
        kwargs = dict(seed=seed, labels=per_image(2))
        naive = model.sample(2, method="naive", **kwargs)
        if not np.array_equal(model.sample(2, method="cached", **kwargs), naive):
            raise AssertionError("Cached sampling drew other images than naive sampling.")
