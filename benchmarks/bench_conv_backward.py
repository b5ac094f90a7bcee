"""Each way of computing the shifted convolutions' gradients, timed on this CPU for
every stride-1 convolution shape of a PixelCNN++ model, and what the timed choice
saves per training step against TensorFlow's own backward pass ("stock").

Run by hand:  python benchmarks/bench_conv_backward.py [--entry pixelcnn_pp_tfp_size]
[--batch-size 32] [--dtype float32] [--rounds 7]

The shapes are read from the model itself: one gradient of its loss is traced
with :func:`keras_pixel.layers.conv_backward.choose_backward` recording what it
is asked. Each shape is then timed by
:func:`~keras_pixel.layers.conv_backward.time_backwards` (the forward
convolution plus one gradient, the median of ``--rounds`` interleaved runs), the
same measurement ``keras-pixel train`` makes once per machine. A shape that
occurs ``n`` times in the network counts ``n`` times in the totals.
"""

import argparse
import collections
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_flops import TFP_HPARAMS  # noqa: E402
from common import cpu_name  # noqa: E402


def model_shapes(entry, batch_size, dtype):
    """``Counter`` of ``(input_shape, kernel_shape, pads)`` over the stride-1
    shifted convolutions whose gradients one training step of ``entry`` takes."""
    import keras
    import numpy as np
    import tensorflow as tf

    from keras_pixel import zoo
    from keras_pixel.layers import conv_backward
    from keras_pixel.models import PixelCNNPlusPlus

    keras.config.set_dtype_policy("float32" if dtype == "float32" else f"mixed_{dtype}")
    if entry == "pixelcnn_pp_tfp_size":
        model = PixelCNNPlusPlus(image_shape=(28, 28, 1), dropout=0.5, **TFP_HPARAMS)
    else:
        model = zoo.load(entry, weights=None)
    x = np.random.default_rng(0).integers(0, 256, (batch_size, *model.image_shape), np.uint8)
    model(x[:1])
    shapes = collections.Counter()

    def record(input_shape, kernel_shape, pads, dtype=tf.float32):
        shapes[(tuple(input_shape), tuple(kernel_shape), pads)] += 1
        return ("stock", "stock")

    conv_backward.choose_backward, original = record, conv_backward.choose_backward

    @tf.function
    def gradient(x):
        with tf.GradientTape() as tape:
            loss = -tf.reduce_mean(model.likelihood.log_prob(model(x, training=True), x))
        return tape.gradient(loss, model.trainable_weights)

    gradient.get_concrete_function(tf.TensorSpec(x.shape, tf.uint8))
    conv_backward.choose_backward = original
    return shapes


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entry", default="pixelcnn_pp_tfp_size")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from keras_pixel.layers import conv_backward

    print(f"# {cpu_name()}, {os.cpu_count()} logical CPUs")
    print(f"# {args.entry}, batch {args.batch_size}, {args.dtype}, median of {args.rounds}")
    shapes = model_shapes(args.entry, args.batch_size, args.dtype)
    print(
        "\n| input | kernel | n | input gradient: stock / gemm / forward (ms) | chosen "
        "| kernel gradient: stock / gemm / forward (ms) | chosen |"
    )
    print("|---|---|---|---|---|---|---|")
    totals = collections.Counter()
    for (input_shape, kernel_shape, pads), n in shapes.items():
        batch_shape = (args.batch_size, *input_shape[1:])
        times = conv_backward.time_backwards(
            batch_shape, kernel_shape, pads, args.dtype, rounds=args.rounds
        )
        cells = []
        for gradient in ("input", "kernel"):
            ms = times[gradient]
            best = min(ms, key=ms.get)
            totals[f"{gradient} stock"] += n * ms["stock"]
            totals[f"{gradient} chosen"] += n * ms[best]
            cells += [" / ".join(f"{ms[way]:.1f}" for way in conv_backward.BACKWARDS), best]
        row = [
            "x".join(map(str, input_shape[1:])),
            "x".join(map(str, kernel_shape)),
            str(n),
            *cells,
        ]
        print("| " + " | ".join(row) + " |")
    print()
    for gradient in ("input", "kernel"):
        stock, chosen = totals[f"{gradient} stock"], totals[f"{gradient} chosen"]
        print(
            f"# {gradient} gradients (each with its forward pass), summed over the network: "
            f"stock {stock:.1f} ms, chosen {chosen:.1f} ms, {stock / chosen:.2f}x"
        )


if __name__ == "__main__":
    main()
