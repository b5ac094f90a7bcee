"""Time to first sample: `keras-pixel sample MODEL --num N` end to end, in fresh
processes, with the compiled-sampler cache off (as before the cache), on its
first-ever call (empty cache), warm with the SavedModel sampler only
(keras_pixel.sampler_cache, `KERAS_PIXEL_AOT=off`) and warm with the sampler
compiled ahead of time (keras_pixel.sampler_aot: no TensorFlow import).

    python benchmarks/bench_first_sample.py [--model pixelcnn_pp_mnist] [--num 16]

Each figure is the wall time of one `keras-pixel sample` process (Python
start-up and imports included). After the first-ever call the script waits for
the background builder and reports how long it ran. All grids must be the same
image (same seed): the script says so, or fails.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

from common import cpu_name


def _run(command, cache, output, aot="on"):
    env = dict(os.environ, KERAS_PIXEL_CACHE_DIR=cache, KERAS_PIXEL_AOT=aot)
    start = time.perf_counter()
    subprocess.run(
        [*command, "--output", output], env=env, check=True, capture_output=True, text=True
    )
    return time.perf_counter() - start


def _wait_for_builder(cache, timeout=1800):
    start = time.perf_counter()
    samplers = os.path.join(cache, "samplers")
    while time.perf_counter() - start < timeout:
        done = any(
            os.path.isfile(os.path.join(samplers, e, "saved_model.pb"))
            for e in os.listdir(samplers)
        )
        builders = subprocess.run(
            ["pgrep", "-f", "keras_pixel.sampler_builder"], capture_output=True
        ).stdout
        if done and not builders:
            return time.perf_counter() - start
        time.sleep(0.25)
    raise TimeoutError("the background builder did not finish")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="pixelcnn_pp_mnist")
    parser.add_argument("--num", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    script = shutil.which("keras-pixel") or os.path.join(
        os.path.dirname(sys.executable), "keras-pixel"
    )
    command = [script, "sample", args.model, "--num", str(args.num), "--seed", "0"]
    print(f"# {cpu_name()}, {os.cpu_count()} logical CPUs; {' '.join(command[1:])}")
    with tempfile.TemporaryDirectory() as tmp:
        cache = os.path.join(tmp, "cache")
        grids, rows = [], []

        def timed(label, cache_dir, aot="on"):
            grids.append(os.path.join(tmp, f"{len(grids)}.png"))
            rows.append((label, _run(command, cache_dir, grids[-1], aot)))

        timed("cache off (as before)", "off")
        timed("first-ever call (empty cache)", cache)
        rows.append(("background builder, after the first call", _wait_for_builder(cache)))
        entries = os.listdir(os.path.join(cache, "samplers"))
        compiled = any(name.endswith(".aot") for name in entries)
        for _ in range(args.repeats):
            timed("warm cache, SavedModel sampler (KERAS_PIXEL_AOT=off)", cache, "off")
            if compiled:
                timed("warm cache, compiled sampler (no TensorFlow import)", cache)
            timed("cache off (as before)", "off")
        images = {open(path, "rb").read() for path in grids}
        if len(images) != 1:
            raise SystemExit("the grids differ: the cached sampler drew other images")
        sizes = {
            name: sum(
                os.path.getsize(os.path.join(root, f))
                for root, _, files in os.walk(os.path.join(cache, name))
                for f in files
            )
            for name in ("samplers", "xla", "aot-runtime")
        }
    print("\n| process | wall s |\n|---|---|")
    for label, seconds in rows:
        print(f"| {label} | {seconds:.2f} |")
    print(
        f"\nall {len(grids)} grids identical; cache: samplers {sizes['samplers'] / 2**20:.1f} MiB, "
        f"xla {sizes['xla'] / 2**20:.1f} MiB, aot-runtime {sizes['aot-runtime'] / 2**20:.1f} MiB"
        + ("" if compiled else "; no compiled sampler (no C++ compiler or tfcompile?)")
    )


if __name__ == "__main__":
    main()
