"""PixelCNNPlusPlus against tfp.distributions.PixelCNN, same hyperparameters, same MNIST batches.

Run by hand:  python benchmarks/bench_pixelcnn_pp.py [--mnist-dir ../shared/data/mnist]

Prints training throughput (compiled, with and without XLA), peak memory and
test bits/dim after the same number of Adam steps, for both, and the ratios.
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import peak_rss_mib, run_worker, worker_main  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_MNIST = os.path.join(HERE, "..", "..", "shared", "data", "mnist")
HPARAMS = dict(num_resnet=1, num_hierarchies=2, num_filters=32, num_logistic_mix=5, dropout=0.5)


def _batches(mnist_dir, batch_size, steps, seed=0):
    import numpy as np

    from keras_pixel import data

    train, _ = data.load_mnist_idx(mnist_dir, "train")
    rng = np.random.default_rng(seed)
    index = rng.integers(0, len(train), (steps, batch_size))
    return train, [train[i] for i in index]


WARMUP = 3


def _timed_steps(model, batches):
    """Trains on every batch; returns the seconds taken by all but the first WARMUP
    (which include tracing and compiling)."""
    for batch in batches[:WARMUP]:
        model.train_on_batch(batch)
    start = time.perf_counter()
    for batch in batches[WARMUP:]:
        model.train_on_batch(batch)
    return time.perf_counter() - start


def _test_images(mnist_dir, limit):
    from keras_pixel import data

    return data.load_mnist_idx(mnist_dir, "test")[0][:limit]


def ours(mnist_dir, batch_size, steps, xla, eval_images, timed_only):
    import keras

    from keras_pixel.models import PixelCNNPlusPlus

    _, batches = _batches(mnist_dir, batch_size, steps)
    model = PixelCNNPlusPlus(image_shape=(28, 28, 1), **HPARAMS)
    model.data_dependent_init(batches[0])
    model.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=xla)
    seconds = _timed_steps(model, batches)
    result = {
        "params": model.count_params(),
        "images_per_s": (steps - WARMUP) * batch_size / seconds,
        "train_s": seconds,
    }
    if not timed_only:
        test = _test_images(mnist_dir, eval_images)
        result["test_bits_per_dim"] = model.bits_per_dim(test, batch_size=250)
    result["peak_rss_mib"] = peak_rss_mib()
    return result


def tfp_reference(mnist_dir, batch_size, steps, xla, eval_images, timed_only):
    import numpy as np
    import tensorflow as tf
    import tensorflow_probability as tfp
    import tf_keras

    _, batches = _batches(mnist_dir, batch_size, steps)
    hp = dict(HPARAMS)
    dist = tfp.distributions.PixelCNN(
        image_shape=(28, 28, 1),
        num_resnet=hp["num_resnet"],
        num_hierarchies=hp["num_hierarchies"],
        num_filters=hp["num_filters"],
        num_logistic_mix=hp["num_logistic_mix"],
        dropout_p=hp["dropout"],
    )
    image = tf_keras.layers.Input(shape=(28, 28, 1))
    log_prob = dist.log_prob(image)
    model = tf_keras.Model(inputs=image, outputs=log_prob)
    model.add_loss(-tf.reduce_mean(log_prob))
    model.compile(optimizer=tf_keras.optimizers.Adam(1e-3), jit_compile=xla)
    batches = [b.astype(np.float32) for b in batches]
    seconds = _timed_steps(model, batches)
    result = {
        "params": int(model.count_params()),
        "images_per_s": (steps - WARMUP) * batch_size / seconds,
        "train_s": seconds,
    }
    if not timed_only:
        test = _test_images(mnist_dir, eval_images).astype(np.float32)
        lp = np.concatenate(
            [
                dist.log_prob(test[k : k + 250], training=False).numpy()
                for k in range(0, len(test), 250)
            ]
        )
        result["test_bits_per_dim"] = float(-lp.mean() / (784 * np.log(2)))
    result["peak_rss_mib"] = peak_rss_mib()
    return result


def main():
    if worker_main({"ours": ours, "tfp": tfp_reference}):
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist-dir", default=DEFAULT_MNIST)
    parser.add_argument("--steps", type=int, default=300, help="Adam steps for bits/dim")
    parser.add_argument("--timed-steps", type=int, default=60, help="steps for XLA timing")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--eval-images", type=int, default=10000)
    parser.add_argument("--models", nargs="+", default=["ours", "tfp"], choices=["ours", "tfp"])
    parser.add_argument(
        "--tfp-xla-steps",
        type=int,
        default=12,
        help="TFP recompiles every step under XLA: keep this small",
    )
    args = parser.parse_args()
    if not os.path.isdir(args.mnist_dir):
        sys.exit(f"MNIST not found at {args.mnist_dir}")
    print(f"# {HPARAMS}, batch {args.batch}, 28x28x1 real MNIST, Adam lr 1e-3")
    print("| model | XLA | steps | params | train images/s | peak RSS MiB | test bits/dim |")
    print("|---|---|---|---|---|---|---|")
    rows = {}
    for xla in (False, True):
        for kind in args.models:
            full = not xla
            steps = args.steps if full else args.timed_steps
            if xla and kind == "tfp":
                steps = args.tfp_xla_steps
            r = run_worker(
                __file__,
                dict(
                    kind=kind,
                    mnist_dir=args.mnist_dir,
                    batch_size=args.batch,
                    steps=steps,
                    xla=xla,
                    eval_images=args.eval_images,
                    timed_only=not full,
                ),
            )
            rows[(kind, xla)] = r
            name = "PixelCNNPlusPlus" if kind == "ours" else "tfp.distributions.PixelCNN"
            bpd = f"{r['test_bits_per_dim']:.4f}" if "test_bits_per_dim" in r else "-"
            print(
                f"| {name} | {'on' if xla else 'off'} | {steps} | {r['params']:,} | "
                f"{r['images_per_s']:.1f} | {r['peak_rss_mib']:.0f} | {bpd} |",
                flush=True,
            )
    if len(args.models) == 2:
        for xla in (False, True):
            ratio = rows[("ours", xla)]["images_per_s"] / rows[("tfp", xla)]["images_per_s"]
            print(f"throughput ratio ours/TFP, XLA {'on' if xla else 'off'}: {ratio:.2f}x")
        best = max(rows[("ours", x)]["images_per_s"] for x in (False, True))
        print(
            f"best ours vs best TFP: "
            f"{best / max(rows[('tfp', x)]['images_per_s'] for x in (False, True)):.2f}x"
        )


if __name__ == "__main__":
    main()
