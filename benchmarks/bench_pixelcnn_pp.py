"""PixelCNNPlusPlus against tfp.distributions.PixelCNN, same hyperparameters, same MNIST batches.

Run by hand:  python benchmarks/bench_pixelcnn_pp.py [--mnist-dir ../shared/data/mnist]

Prints training throughput (compiled, with and without XLA), peak memory and
test bits/dim after the same number of Adam steps, for both, and the ratios.
``--seeds N`` repeats the bits/dim runs with N seeds and reports their mean:
one 300-step run moves by about 0.03 bits/dim.
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
    """Trains on every batch; returns the seconds of each step but the first WARMUP
    (which include tracing and compiling)."""
    for batch in batches[:WARMUP]:
        model.train_on_batch(batch)
    times = []
    for batch in batches[WARMUP:]:
        start = time.perf_counter()
        model.train_on_batch(batch)
        times.append(time.perf_counter() - start)
    return times


def _timing(times, batch_size):
    return {
        "step_s": times,
        "train_s": sum(times),
        "images_per_s": len(times) * batch_size / sum(times),
    }


def _test_images(mnist_dir, limit):
    from keras_pixel import data

    return data.load_mnist_idx(mnist_dir, "test")[0][:limit]


def ours(mnist_dir, batch_size, steps, xla, eval_images, timed_only, seed=0):
    import keras

    from keras_pixel.models import PixelCNNPlusPlus

    keras.utils.set_random_seed(seed)
    _, batches = _batches(mnist_dir, batch_size, steps)
    model = PixelCNNPlusPlus(image_shape=(28, 28, 1), **HPARAMS)
    model.data_dependent_init(batches[0])
    model.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=xla)
    result = {"params": model.count_params(), **_timing(_timed_steps(model, batches), batch_size)}
    if not timed_only:
        test = _test_images(mnist_dir, eval_images)
        result["test_bits_per_dim"] = model.bits_per_dim(test, batch_size=250)
    result["peak_rss_mib"] = peak_rss_mib()
    return result


def tfp_reference(mnist_dir, batch_size, steps, xla, eval_images, timed_only, seed=0):
    import numpy as np
    import tensorflow as tf
    import tensorflow_probability as tfp
    import tf_keras

    tf_keras.utils.set_random_seed(seed)
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
    result = {
        "params": int(model.count_params()),
        **_timing(_timed_steps(model, batches), batch_size),
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


NAMES = {"ours": "PixelCNNPlusPlus", "tfp": "tfp.distributions.PixelCNN"}


def _median(values):
    values = sorted(values)
    n = len(values)
    return (values[n // 2] + values[(n - 1) // 2]) / 2


def main():
    if worker_main({"ours": ours, "tfp": tfp_reference}):
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist-dir", default=DEFAULT_MNIST)
    parser.add_argument("--steps", type=int, default=300, help="Adam steps for bits/dim")
    parser.add_argument(
        "--timed-steps", type=int, default=60, help="steps of the second (reversed-order) round"
    )
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--eval-images", type=int, default=10000)
    parser.add_argument(
        "--seeds",
        type=int,
        default=1,
        help="bits/dim runs per model, seeds 0..N-1 (one run moves by about 0.03 bits/dim)",
    )
    parser.add_argument("--models", nargs="+", default=["ours", "tfp"], choices=["ours", "tfp"])
    parser.add_argument("--no-xla", action="store_true", help="skip the XLA rows")
    parser.add_argument(
        "--tfp-xla-steps",
        type=int,
        default=12,
        help="TFP recompiles every step under XLA: keep this small",
    )
    args = parser.parse_args()
    if args.seeds < 1:
        parser.error(f"--seeds must be at least 1, got {args.seeds}")
    if not os.path.isdir(args.mnist_dir):
        sys.exit(f"MNIST not found at {args.mnist_dir}")
    print(f"# {HPARAMS}, batch {args.batch}, 28x28x1 real MNIST, Adam lr 1e-3")

    def job(kind, steps, xla, full, seed=0):
        return run_worker(
            __file__,
            dict(
                kind=kind,
                mnist_dir=args.mnist_dir,
                batch_size=args.batch,
                steps=steps,
                xla=xla,
                eval_images=args.eval_images,
                timed_only=not full,
                seed=seed,
            ),
        )

    # Without XLA: the bits/dim runs in order A B, then a timing round in order B A,
    # so a drift of the machine's speed during the run hits both models alike.
    runs = {
        kind: [job(kind, args.steps, False, True, seed) for seed in range(args.seeds)]
        for kind in args.models
    }
    for kind in reversed(args.models):
        runs[kind].append(job(kind, args.timed_steps, False, False))
    if not args.no_xla:
        for kind in args.models:
            steps = args.tfp_xla_steps if kind == "tfp" else args.timed_steps
            runs[(kind, "xla")] = [job(kind, steps, True, False)]

    print(
        "| model | XLA | timed steps | params | train images/s (median step) | "
        "images/s (mean) | peak RSS MiB | test bits/dim |"
    )
    print("|---|---|---|---|---|---|---|---|")
    speed = {}
    per_seed = []
    for key, results in runs.items():
        kind, xla = (key, False) if isinstance(key, str) else (key[0], True)
        steps = [t for r in results for t in r["step_s"]]
        speed[key] = args.batch / _median(steps)
        mean = args.batch * len(steps) / sum(steps)
        bpds = [r["test_bits_per_dim"] for r in results if "test_bits_per_dim" in r]
        bpd = sum(bpds) / len(bpds) if bpds else None
        print(
            f"| {NAMES[kind]} | {'on' if xla else 'off'} | {len(steps)} | "
            f"{results[0]['params']:,} | {speed[key]:.1f} | {mean:.1f} | "
            f"{max(r['peak_rss_mib'] for r in results):.0f} | "
            f"{'-' if bpd is None else f'{bpd:.4f}'} |",
            flush=True,
        )
        if len(bpds) > 1:
            per_seed.append(f"{NAMES[kind]}: " + ", ".join(f"{b:.4f}" for b in bpds))
    for line in per_seed:
        print(f"test bits/dim by seed (the table gives their mean): {line}")
    if len(args.models) == 2:
        print(f"throughput ratio ours/TFP, XLA off: {speed['ours'] / speed['tfp']:.2f}x")
        if not args.no_xla:
            ratio = speed[("ours", "xla")] / speed[("tfp", "xla")]
            print(f"throughput ratio ours/TFP, XLA on: {ratio:.2f}x")
            best = max(speed["ours"], speed[("ours", "xla")]) / max(
                speed["tfp"], speed[("tfp", "xla")]
            )
            print(f"best ours vs best TFP: {best:.2f}x")


if __name__ == "__main__":
    main()
