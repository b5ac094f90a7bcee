"""Converting a full-size openai/pixel-cnn PixelCNN++ checkpoint: time and peak memory.

    python benchmarks/bench_convert.py [--folder /tmp/pxpp_bench]

Writes a synthetic checkpoint with the published CIFAR-10 model's variable list
(nr_resnet 5, nr_filters 160, nr_logistic_mix 10: 53.7M parameters; random
values; their Polyak averages; Adam's two moments outside ``model/``, as the
reference ``train.py`` saves them), then runs ``keras-pixel convert
openai-pixelcnn-pp`` on it in a fresh process, and, for comparison, a process
that only builds ``pixelcnn_pp_cifar``. Prints wall time and peak RSS of each.
"""

import argparse
import os
import sys
import tempfile
import time

from common import cpu_name, peak_rss_mib, run_worker, worker_main

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))


def write(prefix):
    from openai_pixelcnn_pp_reference import random_params, variable_shapes, write_checkpoint

    start = time.perf_counter()
    params = random_params(variable_shapes(nr_resnet=5, nr_filters=160, nr_logistic_mix=10))
    write_checkpoint(prefix, params)
    size = sum(
        os.path.getsize(os.path.join(os.path.dirname(prefix), f))
        for f in os.listdir(os.path.dirname(prefix))
    )
    count = sum(v.size for v in params.values())
    return dict(seconds=time.perf_counter() - start, bytes=size, parameters=int(count))


def build():
    from keras_pixel import zoo

    start = time.perf_counter()
    zoo.load("pixelcnn_pp_cifar", weights=None)
    return dict(seconds=time.perf_counter() - start, peak_rss_mib=peak_rss_mib())


def convert(prefix, output):
    from keras_pixel.cli import main

    start = time.perf_counter()
    if main(["convert", "openai-pixelcnn-pp", prefix, output, "--overwrite"]):
        raise RuntimeError("conversion failed")
    return dict(seconds=time.perf_counter() - start, peak_rss_mib=peak_rss_mib())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", default=None, help="where the checkpoint goes (a temp dir)")
    args = parser.parse_args()
    folder = args.folder or tempfile.mkdtemp(prefix="pxpp_bench_")
    os.makedirs(folder, exist_ok=True)
    prefix = os.path.join(folder, "params_cifar.ckpt")
    script = os.path.abspath(__file__)
    print(f"CPU: {cpu_name()}")
    written = run_worker(script, dict(kind="write", prefix=prefix))
    print(
        f"synthetic checkpoint: {written['parameters']:,} model parameters, "
        f"{written['bytes'] / 2**20:,.0f} MiB on disk (with averages and Adam's moments), "
        f"written in {written['seconds']:.1f} s"
    )
    built = run_worker(script, dict(kind="build"))
    output = os.path.join(folder, "pixelcnn_pp_cifar.weights.h5")
    converted = run_worker(script, dict(kind="convert", prefix=prefix, output=output))
    print("| process | wall s | peak RSS MiB |")
    print("|---|---|---|")
    print(
        f"| build pixelcnn_pp_cifar only | {built['seconds']:.1f} | {built['peak_rss_mib']:,.0f} |"
    )
    print(
        f"| keras-pixel convert (build + read + write) | {converted['seconds']:.1f} | "
        f"{converted['peak_rss_mib']:,.0f} |"
    )
    print(f"output: {output} ({os.path.getsize(output) / 2**20:,.0f} MiB)")


if __name__ == "__main__":
    if not worker_main(dict(write=write, build=build, convert=convert)):
        main()
