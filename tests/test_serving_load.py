"""The exported SavedModel under load: 8 threads call ``serving_default`` and
``sample`` for a bounded time (in process, no network); every answer is checked
against the Keras model and resident memory must stop growing."""

import threading
import time

import numpy as np
import tensorflow as tf

from keras_pixel import zoo
from keras_pixel.export import export_saved_model

THREADS = 8
SECONDS = 8.0
MAX_REQUESTS_PER_THREAD = 400
SEEDS = (0, 1, 2, 3)


def _rss_mib():
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    import resource

    return pages * resource.getpagesize() / 2**20


def test_eight_threads_get_the_keras_models_answers_and_memory_levels_off(tmp_path):
    model = zoo.load("pixelcnn_digits", weights=None, num_layers=1, filters=4)
    images = np.random.default_rng(0).integers(0, 256, (4, 8, 8, 1), np.uint8)
    expected_log_prob = model.log_prob(images)
    expected_samples = {seed: model.sample(2, seed=seed) for seed in SEEDS}
    path = export_saved_model(model, tmp_path, "m", 1, jit_compile=False)
    signatures = tf.saved_model.load(path).signatures
    score, sample = signatures["serving_default"], signatures["sample"]

    def request(k):
        if k % 2:
            got = score(images=tf.constant(images))["log_prob"].numpy()
            np.testing.assert_allclose(got, expected_log_prob, rtol=1e-5)
        else:
            seed = SEEDS[(k // 2) % len(SEEDS)]
            got = sample(
                num_images=tf.constant(2),
                seed=tf.constant(seed, tf.int64),
                temperature=tf.constant(1.0),
            )["images"].numpy()
            np.testing.assert_array_equal(got, expected_samples[seed])

    for k in range(2 * len(SEEDS)):  # warm up: every traced path once
        request(k)
    rss = [_rss_mib()]
    counts, errors = [0] * THREADS, []
    start = time.monotonic()
    halfway = threading.Event()

    def worker(t):
        try:
            k = t
            while time.monotonic() - start < SECONDS and counts[t] < MAX_REQUESTS_PER_THREAD:
                request(k)
                counts[t] += 1
                k += 1
                if t == 0 and not halfway.is_set() and time.monotonic() - start > SECONDS / 2:
                    rss.append(_rss_mib())
                    halfway.set()
        except Exception as error:  # reported below, with the thread that saw it
            errors.append((t, repr(error)))

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=SECONDS + 120)
    elapsed = time.monotonic() - start
    rss.append(_rss_mib())
    assert not errors, errors[:3]
    assert not any(thread.is_alive() for thread in threads)
    assert all(c > 0 for c in counts), counts
    print(
        f"\nload: {sum(counts)} requests from {THREADS} threads in {elapsed:.1f} s; "
        f"RSS MiB after warm-up {rss[0]:.0f}, halfway {rss[1] if len(rss) > 2 else rss[0]:.0f}, "
        f"end {rss[-1]:.0f}"
    )
    # Memory levels off: the second half of the run adds (almost) nothing.
    if len(rss) > 2:
        assert rss[-1] - rss[1] < 64, rss
    assert rss[-1] - rss[0] < 256, rss
