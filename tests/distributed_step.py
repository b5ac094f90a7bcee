"""Run as a script: one training step under MirroredStrategy on 2 logical CPUs
(a compiled step) against the single-device step (eager, for speed) on the same
global batch, for one small model per family. Prints one JSON line:
``{name: {"update": ..., "diff": ..., "loss": [...]}}``.

A separate process because logical devices must be set before TensorFlow starts.
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from keras_pixel import training  # noqa: E402

training.use_logical_cpus(2)

import keras  # noqa: E402
import numpy as np  # noqa: E402
from zoo_sizes import SMALL  # noqa: E402

from keras_pixel import zoo  # noqa: E402

FAMILIES = {
    "pixelcnn_mnist": {},
    "gated_pixelcnn_mnist_conditional": {},
    "row_lstm_mnist": {},
    "diagonal_bilstm_mnist": {},
    "pixelcnn_pp_mnist": {"dropout": 0.0},
}
GLOBAL_BATCH = 8


def step(model, images, labels, run_eagerly=False):
    model.compile(optimizer=keras.optimizers.SGD(0.05), run_eagerly=run_eagerly)
    before = [w.copy() for w in model.get_weights()]
    history = model.fit(
        images, labels, batch_size=GLOBAL_BATCH, epochs=1, shuffle=False, verbose=0
    ).history
    return before, model.get_weights(), history["loss"][0]


def main(names):
    strategy = training.get_strategy("mirrored")
    assert strategy.num_replicas_in_sync == 2, strategy.num_replicas_in_sync
    results = {}
    rng = np.random.default_rng(0)
    for name in names:
        overrides = {**SMALL[name], **FAMILIES[name]}
        keras.utils.set_random_seed(0)
        single = zoo.load(name, weights=None, **overrides)
        with strategy.scope():
            mirrored = zoo.load(name, weights=None, **overrides)
        mirrored.set_weights(single.get_weights())
        images = rng.integers(0, 256, (GLOBAL_BATCH, *single.image_shape), np.uint8)
        labels = rng.integers(0, 10, GLOBAL_BATCH) if single.conditional else None
        before, after_single, loss_single = step(single, images, labels, run_eagerly=True)
        _, after_mirrored, loss_mirrored = step(mirrored, images, labels)
        update = max(float(np.abs(a - b).max()) for a, b in zip(after_single, before, strict=True))
        diff = max(
            float(np.abs(a - b).max()) for a, b in zip(after_single, after_mirrored, strict=True)
        )
        results[name] = {"update": update, "diff": diff, "loss": [loss_single, loss_mirrored]}
    print(json.dumps(results))


if __name__ == "__main__":
    main(sys.argv[1:] or list(FAMILIES))
