"""Fine-tune the pretrained ``pixelcnn_mnist`` on scikit-learn's digits, the Keras way.

    python examples/fine_tune_digits.py [--epochs 3] [--freeze 4]

The 8x8 digits (8-bit, from scikit-learn's wheel) are resized to 28x28 and padded
like MNIST's 20x20-in-28x28 framing, so they are new data of the same shape. The
script loads the pretrained entry, freezes its input convolution and the first
``--freeze`` residual blocks (``layer.trainable = False``), compiles with a lower
learning rate and fits; it prints test bits/dim before and after, and the same
for a model trained from scratch with the same budget, for comparison.
"""

import argparse

import keras
import numpy as np
import tensorflow as tf

from keras_pixel import data, zoo


def digits_28(split):
    """scikit-learn digits as MNIST-like uint8 ``[N, 28, 28, 1]``: 8x8 -> 20x20, padded by 4."""
    images, _ = data.load_digits(split)
    resized = tf.image.resize(tf.cast(images, tf.float32), (20, 20), method="bilinear")
    padded = tf.pad(resized, [[0, 0], [4, 4], [4, 4], [0, 0]])
    return np.clip(np.round(padded.numpy()), 0, 255).astype(np.uint8)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--freeze", type=int, default=4, help="residual blocks to freeze")
    parser.add_argument("--learning-rate", type=float, default=3e-4)
    args = parser.parse_args()
    keras.utils.set_random_seed(0)
    train, test = digits_28("train"), digits_28("test")

    model = zoo.load("pixelcnn_mnist", weights="pretrained")
    before = model.bits_per_dim(test)
    model.input_conv.trainable = False
    for block in model.blocks[: args.freeze]:
        block.trainable = False
    model.compile(optimizer=keras.optimizers.Adam(args.learning_rate))
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    model.fit(data.make_dataset(train, batch_size=32, seed=0), epochs=args.epochs, verbose=2)
    after = model.bits_per_dim(test)

    scratch = zoo.load("pixelcnn_mnist", weights=None)
    scratch.compile(optimizer=keras.optimizers.Adam(1e-3))
    scratch.fit(data.make_dataset(train, batch_size=32, seed=0), epochs=args.epochs, verbose=2)
    print(
        f"digits at 28x28, {len(train)} training / {len(test)} test images, "
        f"{args.epochs} epochs\n"
        f"pretrained pixelcnn_mnist, before fine-tuning: {before:.4f} bits/dim\n"
        f"after fine-tuning ({trainable:,} of {model.count_params():,} weights trainable): "
        f"{after:.4f} bits/dim\n"
        f"from scratch, same budget: {scratch.bits_per_dim(test):.4f} bits/dim"
    )


if __name__ == "__main__":
    main()
