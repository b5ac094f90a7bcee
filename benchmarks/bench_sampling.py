"""Sampling time: cached vs naive vs tfp.distributions.PixelCNN.sample, side by side.

Run by hand:  python benchmarks/bench_sampling.py [--quick]

PixelCNN++ with the same hyperparameters as TFP's (num_resnet=1,
num_hierarchies=2, num_filters=32, num_logistic_mix=5; untrained weights: the
time does not depend on them) at 28x28x1 and 32x32x3, for 1, 16 and 64 images;
then the paper-size ``pixelcnn_pp_cifar`` at batch 16, cached sampling (the
faster of a second and third call) against one full forward pass (the fastest
of three after the first). Every measurement runs in a fresh process. "first
call" includes tracing and XLA compilation; "time" is a second call with
another seed (TFP: its only call).
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import peak_rss_mib, run_worker, worker_main  # noqa: E402

HPARAMS = dict(num_resnet=1, num_hierarchies=2, num_filters=32, num_logistic_mix=5)


def ours(shape, batch, method, preset=None, repeats=1):
    from keras_pixel import zoo
    from keras_pixel.models import PixelCNNPlusPlus

    if preset:
        model = zoo.load(preset, weights=None)
    else:
        model = PixelCNNPlusPlus(image_shape=tuple(shape), dropout=0.0, **HPARAMS)
    start = time.perf_counter()
    model.sample(batch, seed=1, method=method)
    first = time.perf_counter() - start
    times = []
    for seed in range(2, 2 + repeats):
        start = time.perf_counter()
        model.sample(batch, seed=seed, method=method)
        times.append(time.perf_counter() - start)
    return {
        "first_s": first,
        "time_s": min(times),
        "times_s": times,
        "params": model.count_params(),
        "peak_rss_mib": peak_rss_mib(),
    }


def forward_pass(batch, preset, repeats=3):
    """One full forward pass (the sampling lower bound), compiled: the fastest
    of ``repeats`` calls after the first."""
    import numpy as np
    import tensorflow as tf

    from keras_pixel import zoo

    model = zoo.load(preset, weights=None)
    images = np.random.default_rng(0).integers(0, 256, (batch, *model.image_shape), np.uint8)
    fn = tf.function(lambda x: model(x, training=False))
    fn(images).numpy()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(images).numpy()
        times.append(time.perf_counter() - start)
    return {"time_s": min(times), "times_s": times, "peak_rss_mib": peak_rss_mib()}


def tfp_reference(shape, batch):
    import tensorflow_probability as tfp

    dist = tfp.distributions.PixelCNN(
        image_shape=tuple(shape),
        num_resnet=HPARAMS["num_resnet"],
        num_hierarchies=HPARAMS["num_hierarchies"],
        num_filters=HPARAMS["num_filters"],
        num_logistic_mix=HPARAMS["num_logistic_mix"],
        dropout_p=0.0,
    )
    start = time.perf_counter()
    dist.sample(batch, seed=1).numpy()
    return {"time_s": time.perf_counter() - start, "peak_rss_mib": peak_rss_mib()}


def main():
    if worker_main({"ours": ours, "tfp": tfp_reference, "forward": forward_pass}):
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="batch 16 at 28x28x1 only")
    parser.add_argument("--no-paper-size", action="store_true")
    parser.add_argument("--images", nargs="+", help="only these image shapes, e.g. 32x32x3")
    parser.add_argument("--methods", nargs="+", help="only these of cached, naive, tfp")
    args = parser.parse_args()

    # (shape, batch) -> methods measured; naive and TFP take minutes at the larger sizes.
    plan = {
        ((28, 28, 1), 1): ["cached", "naive", "tfp"],
        ((28, 28, 1), 16): ["cached", "naive", "tfp"],
        ((28, 28, 1), 64): ["cached", "tfp"],
        ((32, 32, 3), 1): ["cached", "naive", "tfp"],
        ((32, 32, 3), 16): ["cached", "tfp"],
        ((32, 32, 3), 64): ["cached"],
    }
    if args.quick:
        plan = {((28, 28, 1), 16): ["cached", "naive", "tfp"]}
    plan = {
        (shape, batch): [m for m in methods if not args.methods or m in args.methods]
        for (shape, batch), methods in plan.items()
        if not args.images or "x".join(map(str, shape)) in args.images
    }
    print(f"# PixelCNN++ {HPARAMS}, untrained; seconds per call")
    print("| image | batch | method | first call s | time s | vs TFP | peak RSS MiB |")
    print("|---|---|---|---|---|---|---|")
    for (shape, batch), methods in plan.items():
        results = {}
        for method in reversed(methods):
            if method == "tfp":
                results[method] = run_worker(__file__, dict(kind="tfp", shape=shape, batch=batch))
            else:
                results[method] = run_worker(
                    __file__, dict(kind="ours", shape=shape, batch=batch, method=method)
                )
        for method in methods:
            r = results[method]
            speedup = f"{results['tfp']['time_s'] / r['time_s']:.1f}x" if "tfp" in results else "-"
            first = f"{r['first_s']:.2f}" if "first_s" in r else "-"
            name = "tfp.distributions.PixelCNN" if method == "tfp" else method
            print(
                f"| {'x'.join(map(str, shape))} | {batch} | {name} | {first} | "
                f"{r['time_s']:.2f} | {speedup} | {r['peak_rss_mib']:.0f} |",
                flush=True,
            )
    if not args.quick and not args.no_paper_size:
        preset, batch = "pixelcnn_pp_cifar", 16
        forward = run_worker(__file__, dict(kind="forward", batch=batch, preset=preset))
        cached = run_worker(
            __file__,
            dict(kind="ours", shape=None, batch=batch, method="cached", preset=preset, repeats=2),
        )
        listed = lambda r: ", ".join(f"{t:.2f}" for t in r["times_s"])  # noqa: E731
        print(
            f"\n{preset} ({cached['params']:,} parameters), batch {batch}: one forward pass "
            f"{forward['time_s']:.2f} s (fastest of {listed(forward)}); cached sampling "
            f"{cached['time_s']:.2f} s (fastest of {listed(cached)}; first call "
            f"{cached['first_s']:.2f} s) = {cached['time_s'] / forward['time_s']:.2f}x one "
            f"forward pass; peak RSS {cached['peak_rss_mib']:.0f} MiB"
        )


if __name__ == "__main__":
    main()
