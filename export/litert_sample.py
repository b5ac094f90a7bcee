"""Sample on a device with the LiteRT one-step graph (``*_next_subpixel.tflite``).

Needs only numpy and ``ai-edge-litert``: the loop an app runs. Each step runs the
graph on the canvas, gets the log-probs of every value of the next subpixel and
draws it by inverting the CDF at a uniform number (as ``keras_pixel`` does, so
the same uniforms give the same images as ``model.sample(..., method="naive")``
for the softmax families, up to float rounding at CDF boundaries).

    python export/litert_sample.py serving/litert/pixelcnn_mnist_next_subpixel.tflite \
        --num 4 --seed 0 --output samples.npy
"""

import argparse

import numpy as np
from ai_edge_litert.interpreter import Interpreter


def draw(log_probs, uniform, temperature=1.0):
    """Inverse-CDF draws: log-probs ``[B, V]``, uniforms ``[B]`` -> int ``[B]``."""
    logits = log_probs.astype(np.float32) / np.float32(temperature)
    probs = np.exp(logits - logits.max(axis=-1, keepdims=True))
    probs /= probs.sum(axis=-1, keepdims=True)
    cdf = np.cumsum(probs, axis=-1)
    count = (cdf <= (uniform[:, None] * cdf[:, -1:])).sum(axis=-1)
    return np.minimum(count, log_probs.shape[-1] - 1)


def sample(step_path, uniforms, temperature=1.0, labels=None, canvas=None, start=0):
    """Fills ``canvas`` from raster position ``start`` on.

    Args:
        step_path: the ``*_next_subpixel.tflite`` file.
        uniforms: float ``[H * W * C, B]`` in ``[0, 1)``, one per subpixel and image.
        temperature: > 0; divides the log-probs.
        labels: class ids ``[B]`` (int32) or vectors ``[B, D]`` for conditional models.
        canvas: uint8 ``[B, H, W, C]`` to complete (default: blank).
        start: first raster position to draw.

    Returns:
        uint8 ``[B, H, W, C]``.
    """
    runner = Interpreter(step_path).get_signature_runner()
    details = runner.get_input_details()["canvas"]
    height, width, channels = (int(d) for d in details["shape_signature"][1:])
    fixed = int(details["shape_signature"][0])
    batch = uniforms.shape[1]
    if canvas is None:
        canvas = np.zeros((batch, height, width, channels), np.uint8)
    canvas = canvas.copy()
    groups = (
        [slice(0, batch)] if fixed == -1 else [slice(b, b + fixed) for b in range(0, batch, fixed)]
    )
    for t in range(start, height * width * channels):
        i, j, c = t // (width * channels), (t // channels) % width, t % channels
        for rows in groups:
            feeds = {"canvas": canvas[rows], "position": np.array(t, np.int32)}
            if labels is not None:
                feeds["labels"] = np.asarray(labels)[rows]
            (log_probs,) = runner(**feeds).values()
            canvas[rows, i, j, c] = draw(log_probs, uniforms[t, rows], temperature)
    return canvas


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("step_model", help="the *_next_subpixel.tflite file")
    parser.add_argument("--num", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--labels", default=None, help="comma-separated class ids")
    parser.add_argument("--output", default="samples.npy")
    args = parser.parse_args()
    details = Interpreter(args.step_model).get_signature_runner().get_input_details()
    shape = details["canvas"]["shape_signature"][1:]
    uniforms = np.random.default_rng(args.seed).random((int(np.prod(shape)), args.num))
    labels = None
    if args.labels:
        labels = np.resize(np.array([int(x) for x in args.labels.split(",")], np.int32), args.num)
    images = sample(args.step_model, uniforms.astype(np.float32), args.temperature, labels)
    np.save(args.output, images)
    print(f"wrote {args.output}: {images.shape} uint8")


if __name__ == "__main__":
    main()
