"""PixelCNN training throughput, peak memory and a short MNIST run.

Run by hand:  python benchmarks/bench_pixelcnn.py [--mnist-dir ../shared/data/mnist]

Each measurement runs in its own subprocess so that its peak resident memory
(``ru_maxrss``) is its own. Prints one table; nothing here is asserted.
"""

import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_MNIST = os.path.join(HERE, "..", "..", "shared", "data", "mnist")


def _peak_mib():
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker_throughput(name, batch_size, steps, xla):
    import keras
    import numpy as np

    from keras_pixel import data, zoo

    model = zoo.load(name)
    h, w, c = model.image_shape
    images = np.random.default_rng(0).integers(0, 256, (batch_size * 4, h, w, c), np.uint8)
    ds = data.make_dataset(images, batch_size=batch_size, repeat=True, drop_remainder=True)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=xla)
    model.fit(ds, epochs=1, steps_per_epoch=3, verbose=0)
    start = time.perf_counter()
    model.fit(ds, epochs=1, steps_per_epoch=steps, verbose=0)
    seconds = time.perf_counter() - start
    return {
        "model": name,
        "image": f"{h}x{w}x{c}",
        "params": model.count_params(),
        "xla": xla,
        "batch": batch_size,
        "images_per_s": steps * batch_size / seconds,
        "peak_rss_mib": _peak_mib(),
    }


def worker_mnist(mnist_dir, steps, batch_size, xla):
    import keras

    from keras_pixel import data, zoo

    train, _ = data.load_mnist_idx(mnist_dir, "train")
    test, _ = data.load_mnist_idx(mnist_dir, "test")
    model = zoo.load("pixelcnn_mnist")
    model.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=xla)
    ds = data.make_dataset(train, batch_size=batch_size, seed=0, repeat=True)
    start = time.perf_counter()
    model.fit(ds, epochs=1, steps_per_epoch=steps, verbose=0)
    seconds = time.perf_counter() - start
    return {
        "model": "pixelcnn_mnist",
        "steps": steps,
        "batch": batch_size,
        "xla": xla,
        "train_s": seconds,
        "test_images": len(test),
        "test_bits_per_dim": model.bits_per_dim(test, batch_size=256),
        "peak_rss_mib": _peak_mib(),
    }


def _run(args):
    out = subprocess.run(
        [sys.executable, __file__, "--worker", json.dumps(args)],
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    if out.returncode:
        raise RuntimeError(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, default=20, help="timed training steps")
    parser.add_argument("--mnist-dir", default=DEFAULT_MNIST)
    parser.add_argument("--mnist-steps", type=int, default=300)
    parser.add_argument("--mnist-batch", type=int, default=32)
    args = parser.parse_args()
    if args.worker:
        job = json.loads(args.worker)
        kind = job.pop("kind")
        result = worker_throughput(**job) if kind == "throughput" else worker_mnist(**job)
        print(json.dumps(result))
        return

    import platform

    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    print("| model | image | params | batch | XLA | train images/s | peak RSS MiB |")
    print("|---|---|---|---|---|---|---|")
    for name, batch in (("pixelcnn_mnist", 32), ("pixelcnn_cifar", 16)):
        for xla in (False, True):
            steps = args.steps if name == "pixelcnn_mnist" else max(3, args.steps // 4)
            r = _run(dict(kind="throughput", name=name, batch_size=batch, steps=steps, xla=xla))
            print(
                f"| {r['model']} | {r['image']} | {r['params']:,} | {r['batch']} | "
                f"{'on' if xla else 'off'} | {r['images_per_s']:.1f} | {r['peak_rss_mib']:.0f} |",
                flush=True,
            )
    if not os.path.isdir(args.mnist_dir):
        print(f"\nMNIST not found at {args.mnist_dir}: skipping the bits/dim run.")
        return
    r = _run(
        dict(
            kind="mnist",
            mnist_dir=args.mnist_dir,
            steps=args.mnist_steps,
            batch_size=args.mnist_batch,
            xla=False,
        )
    )
    print(
        f"\npixelcnn_mnist on real MNIST: {r['steps']} Adam steps (lr 1e-3, batch "
        f"{r['batch']}) in {r['train_s']:.0f} s -> test bits/dim {r['test_bits_per_dim']:.4f} "
        f"on {r['test_images']} test images (peak RSS {r['peak_rss_mib']:.0f} MiB)"
    )


if __name__ == "__main__":
    main()
