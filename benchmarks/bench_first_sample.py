"""Time to first sample: `keras-pixel sample MODEL --num N` end to end, in fresh
processes, with the compiled-sampler cache off (as before the cache), on its
first-ever call (empty cache), warm with the sampling server running
(keras_pixel.sampler_server, the default: the command imports no TensorFlow),
warm without a server (`KERAS_PIXEL_SERVER_TIMEOUT=0`: the command loads the
cached SavedModel sampler, keras_pixel.sampler_cache) and warm with the sampler
compiled ahead of time (keras_pixel.sampler_aot, opt-in with
`KERAS_PIXEL_AOT=on`: no TensorFlow import).

    python benchmarks/bench_first_sample.py [--model pixelcnn_pp_mnist] [--num 16]

Each figure is the wall time of one `keras-pixel sample` process (Python
start-up and imports included). After the first-ever call the script waits for
the background builder and for the server it starts, and reports how long each
took. The grids of the exact paths (cache off, first call, server, SavedModel)
must be the same image (same seed): the script fails otherwise. The compiled
sampler's grid is compared with them and the count of differing grid cells
printed: it can differ (float32 rounding in other kernels, see
keras_pixel.sampler_aot). The server is stopped at the end.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

from common import cpu_name


def _env(cache, aot="on", server="600"):
    return dict(
        os.environ,
        KERAS_PIXEL_CACHE_DIR=cache,
        KERAS_PIXEL_AOT=aot,
        KERAS_PIXEL_SERVER_TIMEOUT=server,
    )


def _run(command, cache, output, aot="on", server="600"):
    env = _env(cache, aot, server)
    start = time.perf_counter()
    subprocess.run(
        [*command, "--output", output], env=env, check=True, capture_output=True, text=True
    )
    return time.perf_counter() - start


def _differing_cells(path_a, path_b, num):
    """How many of the ``num`` images of two sample grids differ
    (``keras_pixel.images.image_grid``'s layout: about sqrt(num) columns, cells
    1 pixel apart)."""
    import math

    import numpy as np
    from PIL import Image

    a, b = (np.asarray(Image.open(p)) for p in (path_a, path_b))
    ncols = math.ceil(math.sqrt(num))
    nrows = math.ceil(num / ncols)
    h, w = (a.shape[0] - 1) // nrows, (a.shape[1] - 1) // ncols
    cells = [(slice(r * h, (r + 1) * h + 1), slice(q * w, (q + 1) * w + 1))
             for r, q in (divmod(k, ncols) for k in range(num))]  # fmt: skip
    return sum(not np.array_equal(a[cell], b[cell]) for cell in cells)


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


def _wait_for_server(cache, timeout=600):
    """Seconds until the server the builder started answers; its client."""
    from keras_pixel import sampler_server

    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        client = sampler_server.connect(cache, timeout=timeout)
        if client is not None:
            return time.perf_counter() - start, client
        time.sleep(0.25)
    raise TimeoutError("no sampling server answered")


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

        def timed(label, cache_dir, aot="on", server="600"):
            grids.append(os.path.join(tmp, f"{len(rows)}.png"))
            rows.append((label, _run(command, cache_dir, grids[-1], aot, server)))

        os.environ.update(_env(cache))
        timed("cache off (as before)", "off")
        timed("first-ever call (empty cache; its builder compiles ahead of time too)", cache)
        rows.append(("background builder, after the first call", _wait_for_builder(cache)))
        waited, client = _wait_for_server(cache)
        rows.append(("the server it started answers, after the builder", waited))
        entries = os.listdir(os.path.join(cache, "samplers"))
        compiled = any(name.endswith(".aot") for name in entries)
        compiled_grids = []
        try:
            for _ in range(args.repeats):
                timed("warm cache, server running (the default)", cache, "off")
                timed("warm cache, no server (`KERAS_PIXEL_SERVER_TIMEOUT=0`)", cache, "off", "0")
                if compiled:
                    timed("warm cache, compiled sampler (`KERAS_PIXEL_AOT=on`)", cache)
                    compiled_grids.append(grids.pop())
                timed("cache off (as before)", "off")
        finally:
            client.stop()
        exact = {open(path, "rb").read() for path in grids}
        aot = [_differing_cells(grids[0], path, args.num) for path in compiled_grids]
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
        f"\ncache: samplers {sizes['samplers'] / 2**20:.1f} MiB, "
        f"xla {sizes['xla'] / 2**20:.1f} MiB, aot-runtime {sizes['aot-runtime'] / 2**20:.1f} MiB"
        + ("" if compiled else "; no compiled sampler (no C++ compiler or tfcompile?)")
    )
    if aot:
        print(
            f"compiled sampler's grids: {', '.join(map(str, aot))} of {args.num} images differ "
            "from the exact paths' (float32 rounding in other kernels; keras_pixel.sampler_aot)"
        )
    if len(exact) != 1:
        raise SystemExit("the exact paths' grids differ: a cached sampler drew other images")
    print(f"the {len(grids)} grids of the exact paths are identical")


if __name__ == "__main__":
    main()
