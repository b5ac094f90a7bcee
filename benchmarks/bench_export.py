"""Exported artifacts against the Keras model, side by side in one run.

Run by hand:  python benchmarks/bench_export.py [--models pixelcnn_mnist pixelcnn_pp_mnist]

For each zoo model (full zoo size, fresh weights: speed does not depend on them)
and each format: artifact size, load time (fresh process with its runtime
already imported, to the first usable call object) and log-likelihood
throughput in images/s at batch 64 (median of timed calls after one warm-up
call), each runtime in its own process; then the SavedModel ``sample``
signature's time for 16 images (first call, with XLA compilation, and a second
call with another seed).
"""

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import run_worker, worker_main  # noqa: E402

BATCH = 64


def _size(path):
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)


def prepare(name, folder):
    import numpy as np

    from keras_pixel import zoo
    from keras_pixel.export import export

    model = zoo.load(name, weights=None)
    model.save_weights(os.path.join(folder, "model.weights.h5"))
    images = np.random.default_rng(0).integers(0, 256, (BATCH, *model.image_shape), np.uint8)
    np.save(os.path.join(folder, "images.npy"), images)
    paths, seconds = {}, {}
    for fmt in ("saved_model", "litert", "onnx"):
        start = time.perf_counter()
        paths[fmt] = export(model, folder, format=fmt, model_name=name)[0]
        seconds[fmt] = time.perf_counter() - start
    return {
        "params": int(model.count_params()),
        "paths": paths,
        "export_s": seconds,
        "size_mb": {fmt: _size(path) / 1e6 for fmt, path in paths.items()},
        "keras_weights_mb": _size(os.path.join(folder, "model.weights.h5")) / 1e6,
    }


def _throughput(call, repeats):
    call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return BATCH / sorted(times)[len(times) // 2]


def keras_model(name, folder, path, repeats):
    import numpy as np

    from keras_pixel import zoo

    start = time.perf_counter()
    model = zoo.load(name, weights=os.path.join(folder, "model.weights.h5"))
    load = time.perf_counter() - start
    images = np.load(os.path.join(folder, "images.npy"))
    return {"load_s": load, "img_s": _throughput(lambda: model.log_prob(images), repeats)}


def saved_model(name, folder, path, repeats):
    import numpy as np
    import tensorflow as tf

    start = time.perf_counter()
    signatures = tf.saved_model.load(path).signatures
    load = time.perf_counter() - start
    images = tf.constant(np.load(os.path.join(folder, "images.npy")))
    fn = signatures["serving_default"]
    result = {"load_s": load, "img_s": _throughput(lambda: fn(images=images), repeats)}
    sample = signatures["sample"]
    for key, seed in (("sample16_first_s", 1), ("sample16_s", 2)):
        start = time.perf_counter()
        sample(num_images=tf.constant(16), seed=tf.constant(seed, tf.int64), temperature=1.0)
        result[key] = time.perf_counter() - start
    return result


def litert(name, folder, path, repeats):
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter

    start = time.perf_counter()
    runner = Interpreter(path).get_signature_runner()
    load = time.perf_counter() - start
    images = np.load(os.path.join(folder, "images.npy"))
    return {"load_s": load, "img_s": _throughput(lambda: runner(images=images), repeats)}


def onnx(name, folder, path, repeats):
    import numpy as np
    import onnxruntime

    start = time.perf_counter()
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    load = time.perf_counter() - start
    images = np.load(os.path.join(folder, "images.npy"))
    return {
        "load_s": load,
        "img_s": _throughput(lambda: session.run(None, {"images": images}), repeats),
    }


HANDLERS = {
    "prepare": prepare,
    "keras": keras_model,
    "saved_model": saved_model,
    "litert": litert,
    "onnx": onnx,
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["pixelcnn_mnist", "pixelcnn_pp_mnist"])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    script = os.path.abspath(__file__)
    for name in args.models:
        with tempfile.TemporaryDirectory() as folder:
            info = run_worker(script, {"kind": "prepare", "name": name, "folder": folder})
            print(f"\n{name}: {info['params']:,} parameters, batch {BATCH}")
            header = ("format", "size MB", "export s", "load s", "img/s", "vs Keras")
            print("{:<12} {:>8} {:>9} {:>7} {:>8} {:>9}".format(*header))
            rows = {}
            for kind in ("keras", "saved_model", "litert", "onnx"):
                job = {"kind": kind, "name": name, "folder": folder, "repeats": args.repeats}
                job["path"] = info["paths"].get(kind, "")
                rows[kind] = run_worker(script, job)
            base = rows["keras"]["img_s"]
            for kind, row in rows.items():
                size = info["keras_weights_mb"] if kind == "keras" else info["size_mb"][kind]
                export_s = info["export_s"].get(kind)
                print(
                    f"{kind:<12} {size:8.2f} {export_s if export_s else 0:9.1f} "
                    f"{row['load_s']:7.2f} {row['img_s']:8.1f} {row['img_s'] / base:8.2f}x"
                )
            sm = rows["saved_model"]
            print(
                f"SavedModel sample, 16 images: first call {sm['sample16_first_s']:.2f} s "
                f"(with XLA compilation), second call {sm['sample16_s']:.2f} s"
            )


if __name__ == "__main__":
    if not worker_main(HANDLERS):
        main()
