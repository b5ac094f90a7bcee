"""Training throughput, peak memory and a short real-MNIST run, for zoo models side by side.

Run by hand:

    python benchmarks/bench_training.py --suite pixelcnn   # PixelCNN at 28x28x1 and 32x32x3
    python benchmarks/bench_training.py --suite gated      # Gated vs plain PixelCNN, equal size
    python benchmarks/bench_training.py --suite pixelrnn   # Row LSTM, Diagonal BiLSTM, PixelCNN
    python benchmarks/bench_training.py --suite families --skip-mnist \
        --policies float32 mixed_bfloat16 --devices 1 2    # every family: XLA, bf16, 2 devices

Each measurement runs in its own subprocess so that its peak resident memory
(``ru_maxrss``) is its own. Prints markdown tables; nothing here is asserted.
"""

import argparse
import os
import platform
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import peak_rss_mib, run_worker, worker_main  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_MNIST = os.path.join(HERE, "..", "..", "shared", "data", "mnist")

# Each suite: (label, zoo name, overrides, batch) for throughput; the models of the
# MNIST run are the 28x28x1 ones.
SUITES = {
    "pixelcnn": [
        ("pixelcnn_mnist", "pixelcnn_mnist", {}, 32),
        ("pixelcnn_cifar", "pixelcnn_cifar", {}, 16),
    ],
    "gated": [
        ("gated_pixelcnn_mnist", "gated_pixelcnn_mnist", {}, 32),
        ("pixelcnn_mnist (h=40)", "pixelcnn_mnist", {"filters": 40}, 32),
    ],
    "pixelrnn_cifar": [
        ("row_lstm_cifar", "row_lstm_cifar", {}, 4),
        ("diagonal_bilstm_cifar", "diagonal_bilstm_cifar", {}, 4),
        ("pixelcnn_cifar (h=189)", "pixelcnn_cifar", {"filters": 189}, 4),
    ],
    "families": [
        ("pixelcnn_mnist", "pixelcnn_mnist", {}, 32),
        ("gated_pixelcnn_mnist", "gated_pixelcnn_mnist", {}, 32),
        ("row_lstm_mnist", "row_lstm_mnist", {}, 32),
        ("diagonal_bilstm_mnist", "diagonal_bilstm_mnist", {}, 32),
        ("pixelcnn_pp_mnist", "pixelcnn_pp_mnist", {}, 32),
    ],
    "pixelrnn": [
        ("row_lstm_mnist", "row_lstm_mnist", {}, 32),
        ("diagonal_bilstm_mnist", "diagonal_bilstm_mnist", {}, 32),
        ("pixelcnn_mnist (h=26)", "pixelcnn_mnist", {"filters": 26, "output_filters": 64}, 32),
    ],
}


def _fake_labels(model, n):
    import numpy as np

    return np.arange(n) % model.num_classes if model.conditional else None


def worker_throughput(name, overrides, batch_size, steps, xla, policy="float32", devices=1):
    from keras_pixel import training

    if devices > 1:
        training.use_logical_cpus(devices)
    import keras
    import numpy as np

    from keras_pixel import data, zoo

    keras.config.set_dtype_policy(policy)
    strategy = training.get_strategy("mirrored" if devices > 1 else "default")
    with strategy.scope():
        model = zoo.load(name, weights=None, **overrides)
        model.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=xla)
    h, w, c = model.image_shape
    images = np.random.default_rng(0).integers(0, 256, (batch_size * 4, h, w, c), np.uint8)
    ds = data.make_dataset(
        images,
        _fake_labels(model, len(images)),
        batch_size=batch_size,
        repeat=True,
        drop_remainder=True,
    )
    model.fit(ds, epochs=1, steps_per_epoch=3, verbose=0)
    start = time.perf_counter()
    model.fit(ds, epochs=1, steps_per_epoch=steps, verbose=0)
    seconds = time.perf_counter() - start
    return {
        "image": f"{h}x{w}x{c}",
        "params": model.count_params(),
        "images_per_s": steps * batch_size / seconds,
        "peak_rss_mib": peak_rss_mib(),
    }


def worker_mnist(name, overrides, mnist_dir, steps, batch_size, xla):
    import keras

    from keras_pixel import data, zoo

    train, train_labels = data.load_mnist_idx(mnist_dir, "train")
    test, test_labels = data.load_mnist_idx(mnist_dir, "test")
    model = zoo.load(name, weights=None, **overrides)
    if not model.conditional:
        train_labels = test_labels = None
    model.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=xla)
    ds = data.make_dataset(train, train_labels, batch_size=batch_size, seed=0, repeat=True)
    start = time.perf_counter()
    model.fit(ds, epochs=1, steps_per_epoch=steps, verbose=0)
    seconds = time.perf_counter() - start
    return {
        "params": model.count_params(),
        "train_s": seconds,
        "test_images": len(test),
        "test_bits_per_dim": model.bits_per_dim(test, batch_size=256, labels=test_labels),
        "peak_rss_mib": peak_rss_mib(),
    }


def main():
    if worker_main({"throughput": worker_throughput, "mnist": worker_mnist}):
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", choices=sorted(SUITES), default="pixelcnn")
    parser.add_argument("--steps", type=int, default=20, help="timed training steps")
    parser.add_argument("--mnist-dir", default=DEFAULT_MNIST)
    parser.add_argument("--mnist-steps", type=int, default=300)
    parser.add_argument("--mnist-batch", type=int, default=32)
    parser.add_argument("--mnist-xla", action=argparse.BooleanOptionalAction, default=False)
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--skip-mnist", action="store_true")
    parser.add_argument("--only", nargs="+", default=None, help="labels of the suite to run")
    parser.add_argument(
        "--policies",
        nargs="+",
        default=["float32"],
        choices=["float32", "mixed_float16", "mixed_bfloat16"],
        help="Keras dtype policies to time",
    )
    parser.add_argument(
        "--devices",
        nargs="+",
        type=int,
        default=[1],
        help="logical CPU devices (above 1: MirroredStrategy over them, same global batch)",
    )
    parser.add_argument(
        "--xla",
        nargs="+",
        default=["off", "on"],
        choices=["off", "on"],
        help="which XLA settings to time",
    )
    args = parser.parse_args()

    entries = [e for e in SUITES[args.suite] if args.only is None or e[0] in args.only]
    print(f"# suite {args.suite}: {platform.machine()}, {os.cpu_count()} cores")
    print(
        "| model | image | params | batch | XLA | policy | devices | train images/s "
        "| vs float32, no XLA, 1 device | peak RSS MiB |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for label, name, overrides, batch in [] if args.skip_throughput else entries:
        steps = args.steps if batch >= 32 else max(3, args.steps // 4)
        base = None
        settings = [
            (policy, xla == "on", devices)
            for devices in args.devices
            for policy in args.policies
            for xla in args.xla
            if devices == 1 or (policy, xla) == (args.policies[0], args.xla[0])
        ]
        for policy, xla, devices in settings:
            r = run_worker(
                __file__,
                dict(
                    kind="throughput",
                    name=name,
                    overrides=overrides,
                    batch_size=batch,
                    steps=steps,
                    xla=xla,
                    policy=policy,
                    devices=devices,
                ),
            )
            base = base or r["images_per_s"]
            print(
                f"| {label} | {r['image']} | {r['params']:,} | {batch} | "
                f"{'on' if xla else 'off'} | {policy} | {devices} | {r['images_per_s']:.1f} | "
                f"{r['images_per_s'] / base:.2f}x | {r['peak_rss_mib']:.0f} |",
                flush=True,
            )
    if args.skip_mnist:
        return
    if not os.path.isdir(args.mnist_dir):
        print(f"\nMNIST not found at {args.mnist_dir}: skipping the bits/dim run.")
        return
    print(
        f"\nReal MNIST (8-bit): {args.mnist_steps} Adam steps, lr 1e-3, batch "
        f"{args.mnist_batch}, XLA {'on' if args.mnist_xla else 'off'}; all 10,000 test images."
    )
    print("| model | params | train s | test bits/dim | peak RSS MiB |")
    print("|---|---|---|---|---|")
    for label, name, overrides, _ in entries:
        r = run_worker(
            __file__,
            dict(
                kind="mnist",
                name=name,
                overrides=overrides,
                mnist_dir=args.mnist_dir,
                steps=args.mnist_steps,
                batch_size=args.mnist_batch,
                xla=args.mnist_xla,
            ),
        )
        print(
            f"| {label} | {r['params']:,} | {r['train_s']:.0f} | "
            f"{r['test_bits_per_dim']:.4f} | {r['peak_rss_mib']:.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
