"""Achieved FLOP/s on live kernel taps while training, ours and tfp.distributions.PixelCNN,
float32 and bfloat16, beside this machine's measured matrix-product peak.

Run by hand:  python benchmarks/bench_flops.py [--steps 20] [--batch-size 32] [--only NAME ...]

**Live multiply-adds** (:func:`live_macs`): every convolution and matrix product
of one forward pass (``Conv2D``, transposed convolution, ``MatMul``,
``BatchMatMulV2``; inside a loop, times its trip count), where a kernel entry
counts only if it is nonzero: the taps a mask A / B zeroes do no useful work.
The ops are read from the traced graph, the kernels' values from the graph
itself, so the count needs no per-family formula and applies to TFP's network
too. A training step counts 3x its forward pass (forward, gradient with respect
to the inputs, gradient with respect to the weights); achieved FLOP/s =
2 x 3 x live MACs per image x training images per second.

**Peak**: the best of 10 ``[2048, 2048] x [2048, 2048]`` products in float32 and
in bfloat16 (in a ``tf.function``, all cores). The per-FLOP ratio ours / TFP compares
achieved FLOP/s at TFP's hyperparameters (``PixelCNNPlusPlus`` with
``num_resnet=1, num_hierarchies=2, num_filters=32, num_logistic_mix=5``,
MNIST-sized): the same architecture, but TFP's gated resnets convolve with
3 x 3 kernels and it resamples with 4 x 4 ones where ours (as the paper's code)
use 2 x 3 and 2 x 2 shifted kernels, so TFP does more work per image. Every measurement runs in a
fresh process; the CPU model and its ISA flags are printed first.
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import cpu_name, run_worker, worker_main  # noqa: E402

ENTRIES = [
    "pixelcnn_mnist",
    "gated_pixelcnn_mnist",
    "row_lstm_mnist",
    "diagonal_bilstm_mnist",
    "pixelcnn_pp_mnist",
    "pixelcnn_pp_tfp_size",
    "tfp",
]
TFP_HPARAMS = dict(num_resnet=1, num_hierarchies=2, num_filters=32, num_logistic_mix=5)
SHAPE = (28, 28, 1)


def _op_macs(op, shape_of):
    """Dense multiply-adds of one op and the input index of its kernel-like
    operand(s), or ``None`` for an op that is not a product; ``shape_of(tensor)``
    gives a tensor's shape as a list."""
    shape = [shape_of(t) for t in op.inputs]
    out = shape_of(op.outputs[0]) if op.outputs else None
    if op.type == "Conv2D":
        kh, kw, cin, cout = shape[1]
        return _prod(out[:-1]) * kh * kw * cin * cout, (1,)
    if op.type == "Conv2DBackpropInput":
        kh, kw, cout, cin = shape[1]
        return _prod(shape[2][:-1]) * kh * kw * cin * cout, (1,)
    if op.type in ("MatMul", "BatchMatMulV2", "BatchMatMul"):
        a, b = shape[0], shape[1]
        if None in a and op.inputs[0].op.type == "Reshape":
            # A Tensordot (tf_keras's Dense on [B, H, W, C]): [B * H * W, C].
            flat = shape_of(op.inputs[0].op.inputs[0])
            a = [_prod(flat[:-1]), flat[-1]]
        adj_a = op.get_attr("transpose_a" if op.type == "MatMul" else "adj_x")
        m, k = (a[-1], a[-2]) if adj_a else (a[-2], a[-1])
        n = b[-2] if op.get_attr("transpose_b" if op.type == "MatMul" else "adj_y") else b[-1]
        return _prod(out[:-2]) * m * k * n, (0, 1)
    return None


def _prod(values):
    result = 1
    for v in values:
        result *= int(v)
    return result


def _functions(graph):
    """Every function defined in ``graph``, by name (loop bodies, branches)."""
    return dict(getattr(graph, "_functions", {}))


def _count(graph, functions, evaluate, dependent, batch, scale=1, shapes=None):
    """``(live, dense, uncounted)`` MACs of ``graph``'s ops, recursing into called
    functions, loop bodies (times their trip count) and branches (the cheaper
    one: TFP's weight normalization initializes in a branch that runs once)."""
    live = dense = 0
    uncounted = set()
    shapes = shapes or {}

    def shape_of(tensor):
        """The shape, from the caller where a function's input is not static; an
        unknown leading dimension is the batch."""
        static = tensor.shape
        dims = shapes.get(tensor.name) or (static.as_list() if static.rank is not None else [])
        return [batch if d is None and k == 0 else d for k, d in enumerate(dims)]

    def called(function, op):
        pairs = zip(function.inputs, op.inputs, strict=True)
        return {t.name: shape_of(o) for t, o in pairs}

    for op in graph.get_operations():
        if op.type in ("While", "StatelessWhile"):
            trips = evaluate(op.inputs[1]) if evaluate else None
            if trips is None or trips < 0:
                uncounted.add(op.type)
                continue
            body = functions[op.get_attr("body").name].graph
            found = _count(body, functions, None, None, batch, scale * int(trips))
        elif op.type in ("If", "StatelessIf"):
            names = (op.get_attr(b).name for b in ("then_branch", "else_branch"))
            branches = [functions[name].graph for name in names]
            found = min(_count(b, functions, None, None, batch, scale) for b in branches)
        elif op.type in ("PartitionedCall", "StatefulPartitionedCall"):
            function = functions[op.get_attr("f").name].graph
            found = _count(function, functions, None, None, batch, scale, called(function, op))
        else:
            try:
                product = _op_macs(op, shape_of)
            except TypeError:  # a dimension unknown even so
                uncounted.add(op.type)
                continue
            if product is None:
                if op.type in ("Einsum", "DepthwiseConv2dNative", "Conv3D"):
                    uncounted.add(op.type)
                continue
            macs, operands = product
            fraction = 1.0
            # In the top graph, a kernel computed from the weights alone (a masked
            # or weight-normalized kernel) is evaluated: its zeros are dead taps.
            # In loop bodies (the LSTMs' state-to-state kernels) every tap is live.
            if evaluate is not None:
                for index in operands:
                    tensor = op.inputs[index]
                    if tensor.op not in dependent:
                        value = evaluate(tensor)
                        fraction = min(fraction, float((value != 0).mean()))
            found = (macs * fraction * scale, macs * scale, set())
        live, dense = live + found[0], dense + found[1]
        uncounted |= found[2]
    return live, dense, uncounted


def live_macs(fn, spec):
    """Live and dense multiply-adds of one forward pass of ``fn`` on a batch of
    ``spec`` (a ``tf.TensorSpec``), per image: ``{"live", "dense", "uncounted"}``."""
    import numpy as np
    import tensorflow as tf

    wrapped = tf.compat.v1.wrap_function(fn, [spec])
    graph = wrapped.graph
    placeholder = wrapped.inputs[0].op
    dependent, frontier = {placeholder}, [placeholder]
    while frontier:
        op = frontier.pop()
        for output in op.outputs:
            for consumer in output.consumers():
                if consumer not in dependent:
                    dependent.add(consumer)
                    frontier.append(consumer)
    dummy = tf.zeros(spec.shape, spec.dtype)

    def evaluate(tensor):
        value = wrapped.prune(feeds=wrapped.inputs, fetches=[tensor])(dummy)[0]
        return np.asarray(value)

    batch = spec.shape[0]
    live, dense, uncounted = _count(graph, _functions(graph), evaluate, dependent, batch)
    return {"live": live / batch, "dense": dense / batch, "uncounted": sorted(uncounted)}


def matmul_peak(dtype, n=2048, repeats=10):
    """Best FLOP/s of an ``n x n x n`` matrix product in ``dtype``."""
    import tensorflow as tf

    a = tf.cast(tf.random.normal((n, n)), dtype)
    b = tf.cast(tf.random.normal((n, n)), dtype)
    product = tf.function(lambda a, b: tf.reduce_sum(tf.cast(tf.matmul(a, b)[:1, :1], "float32")))
    product(a, b)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        product(a, b).numpy()
        best = min(best, time.perf_counter() - start)
    return {"flops": 2 * n**3 / best}


def _ours(entry, policy):
    import keras

    from keras_pixel import zoo
    from keras_pixel.models import PixelCNNPlusPlus

    keras.config.set_dtype_policy(policy)
    if entry == "pixelcnn_pp_tfp_size":
        model = PixelCNNPlusPlus(image_shape=SHAPE, dropout=0.5, **TFP_HPARAMS)
    else:
        model = zoo.load(entry, weights=None)
    xla = bool(model.xla_faster and SHAPE[0] * SHAPE[1] >= 256)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=xla)
    return model, xla, lambda x: model(x)


def _tfp(policy):
    import tensorflow as tf
    import tensorflow_probability as tfp
    import tf_keras

    tf_keras.mixed_precision.set_global_policy(policy)
    dist = tfp.distributions.PixelCNN(image_shape=SHAPE, dropout_p=0.5, **TFP_HPARAMS)
    image = tf_keras.layers.Input(shape=SHAPE)
    log_prob = dist.log_prob(image)
    model = tf_keras.Model(inputs=image, outputs=log_prob)
    model.add_loss(-tf.reduce_mean(log_prob))
    model.compile(optimizer=tf_keras.optimizers.Adam(1e-3), jit_compile=False)
    return model, False, lambda x: dist.log_prob(x)


def train_rate(entry, policy, batch_size, steps, warmup=3):
    """Training images per second of ``entry`` under ``policy`` (random MNIST-shaped
    batches) and its live MACs per image."""
    import numpy as np
    import tensorflow as tf

    model, xla, forward = _tfp(policy) if entry == "tfp" else _ours(entry, policy)
    dtype = np.float32 if entry == "tfp" else np.uint8
    rng = np.random.default_rng(0)
    batches = [rng.integers(0, 256, (batch_size, *SHAPE)).astype(dtype) for _ in range(steps)]
    for batch in batches[:warmup]:
        model.train_on_batch(batch)
    start = time.perf_counter()
    for batch in batches[warmup:]:
        model.train_on_batch(batch)
    seconds = time.perf_counter() - start
    spec = tf.TensorSpec((2, *SHAPE), tf.float32 if entry == "tfp" else tf.uint8)
    macs = live_macs(forward, spec)
    return {
        "params": int(model.count_params()),
        "xla": xla,
        "images_per_s": (steps - warmup) * batch_size / seconds,
        **macs,
    }


def main():
    if worker_main({"train": train_rate, "peak": matmul_peak}):
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=20, help="training steps (3 warm-up)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--only", nargs="+", choices=ENTRIES, default=ENTRIES)
    parser.add_argument("--policies", nargs="+", default=["float32", "mixed_bfloat16"])
    args = parser.parse_args()
    script = os.path.abspath(__file__)
    print(f"# {cpu_name()}, {os.cpu_count()} logical CPUs")
    peak = {}
    for dtype in ("float32", "bfloat16"):
        peak[dtype] = run_worker(script, {"kind": "peak", "dtype": dtype})["flops"]
        print(f"# matmul peak {dtype}: {peak[dtype] / 1e9:.1f} GFLOP/s")
    print(
        "\n| model | params | policy | XLA | train images/s | live GFLOP / image (fwd+bwd) "
        "| dense GFLOP / image | achieved GFLOP/s | of peak |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    achieved = {}
    for policy in args.policies:
        for entry in args.only:
            job = dict(kind="train", entry=entry, policy=policy)
            job.update(batch_size=args.batch_size, steps=args.steps)
            try:
                r = run_worker(script, job)
            except RuntimeError as error:
                lines = [line for line in str(error).splitlines() if "Error" in line.split(":")[0]]
                reason = (lines or str(error).splitlines())[-1].strip()[:120]
                print(f"| {entry} | - | {policy} | - | failed: {reason} |")
                continue
            flop = 6 * r["live"]
            achieved[entry, policy] = flop * r["images_per_s"]
            of_peak = achieved[entry, policy] / peak[policy.replace("mixed_", "")]
            note = f" (uncounted: {', '.join(r['uncounted'])})" if r["uncounted"] else ""
            print(
                f"| {entry} | {r['params']:,} | {policy} | {'on' if r['xla'] else 'off'} "
                f"| {r['images_per_s']:.1f} | {flop / 1e9:.4f}{note} | {6 * r['dense'] / 1e9:.4f} "
                f"| {achieved[entry, policy] / 1e9:.1f} | {of_peak:.1%} |",
                flush=True,
            )
    for policy in args.policies:
        ours, tfp = achieved.get(("pixelcnn_pp_tfp_size", policy)), achieved.get(("tfp", policy))
        if ours and tfp:
            print(f"\nper-FLOP ratio ours / TFP ({policy}): {ours / tfp:.2f}x")


if __name__ == "__main__":
    main()
