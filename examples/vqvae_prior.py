"""A PixelCNN prior over a VQ-VAE's codes on MNIST, with keras-pixel.

    python examples/vqvae_prior.py --data-dir ../shared/data/mnist [--output vqvae_prior.png]

The VQ-VAE (van den Oord et al. 2017) compresses a 28x28 digit into a 7x7 map
of codes from a codebook of ``--codebook-size`` vectors; its decoder turns a
code map back into a digit. A model of the package with ``num_values`` = the
codebook size is then a prior over code maps: fitted with plain ``model.fit`` on
the codes of the training digits, sampled with cached sampling, and decoded,
it draws new digits. This is the use the keras-io VQ-VAE example makes of its
hand-written PixelCNN.

Data: MNIST idx files in ``--data-dir`` (or Keras's cached ``mnist.npz``). The
script prints the reconstruction error, the prior's bits per code on the test
codes and the wall time, and writes one PNG: test digits, their
reconstructions, and decoded prior samples (rows of 10).
"""

import argparse
import time

import keras
import numpy as np
from keras import ops

from keras_pixel import data
from keras_pixel.images import save_image_grid
from keras_pixel.models import GatedPixelCNN
from keras_pixel.validation import image_dtype


class VectorQuantizer(keras.layers.Layer):
    """Replaces each latent vector by its nearest codebook vector.

    ``[B, h, w, D]`` -> the same shape, quantized; the gradient passes straight
    through to the encoder, and the codebook and commitment losses (the VQ-VAE
    paper's equation 3, ``beta`` = 0.25) are added with ``add_loss``.
    """

    def __init__(self, num_codes, code_dim, beta=0.25, **kwargs):
        super().__init__(**kwargs)
        self.num_codes, self.code_dim, self.beta = num_codes, code_dim, beta
        self.codebook = self.add_weight(
            shape=(code_dim, num_codes),
            initializer=keras.initializers.RandomUniform(-1.0, 1.0),
            name="codebook",
        )

    def codes(self, latents):
        """``[B, h, w, D]`` -> int32 ``[B, h, w]``, the nearest codebook index."""
        flat = ops.reshape(latents, (-1, self.code_dim))
        distances = (
            ops.sum(flat**2, axis=1, keepdims=True)
            - 2 * ops.matmul(flat, self.codebook)
            + ops.sum(self.codebook**2, axis=0, keepdims=True)
        )
        indices = ops.argmin(distances, axis=1)
        return ops.cast(ops.reshape(indices, ops.shape(latents)[:-1]), "int32")

    def lookup(self, codes):
        """int ``[B, h, w]`` -> the codebook vectors ``[B, h, w, D]``."""
        return ops.take(ops.transpose(self.codebook), codes, axis=0)

    def call(self, latents):
        quantized = self.lookup(self.codes(latents))
        commitment = ops.mean((ops.stop_gradient(quantized) - latents) ** 2)
        codebook = ops.mean((quantized - ops.stop_gradient(latents)) ** 2)
        self.add_loss(self.beta * commitment + codebook)
        return latents + ops.stop_gradient(quantized - latents)


def build_vqvae(num_codes, code_dim, width):
    """The encoder ``[B, 28, 28, 1] -> [B, 7, 7, D]``, the quantizer, the decoder
    ``[B, 7, 7, D] -> [B, 28, 28, 1]`` (in [0, 1]) and the trainable VQ-VAE."""
    encoder = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            keras.layers.Conv2D(width, 4, strides=2, padding="same", activation="relu"),
            keras.layers.Conv2D(2 * width, 4, strides=2, padding="same", activation="relu"),
            keras.layers.Conv2D(code_dim, 1),
        ],
        name="encoder",
    )
    decoder = keras.Sequential(
        [
            keras.Input((7, 7, code_dim)),
            keras.layers.Conv2DTranspose(2 * width, 4, 2, padding="same", activation="relu"),
            keras.layers.Conv2DTranspose(width, 4, 2, padding="same", activation="relu"),
            keras.layers.Conv2D(1, 3, padding="same", activation="sigmoid"),
        ],
        name="decoder",
    )
    quantizer = VectorQuantizer(num_codes, code_dim, name="quantizer")
    inputs = keras.Input((28, 28, 1))
    vqvae = keras.Model(inputs, decoder(quantizer(encoder(inputs))), name="vqvae")
    return encoder, quantizer, decoder, vqvae


def to_uint8(images):
    return np.clip(np.round(np.asarray(images) * 255.0), 0, 255).astype(np.uint8)


def run(
    data_dir=None,
    output="vqvae_prior.png",
    train_images=20000,
    codebook_size=64,
    code_dim=16,
    width=32,
    vqvae_epochs=4,
    prior_epochs=10,
    prior_layers=6,
    prior_filters=64,
    num_samples=30,
    seed=0,
    verbose=2,
):
    """Trains the VQ-VAE and its prior, writes the PNG; returns the figures."""
    start = time.monotonic()
    keras.utils.set_random_seed(seed)
    x_train = data.load("mnist", "train", data_dir=data_dir)[0][:train_images]
    x_test = data.load("mnist", "test", data_dir=data_dir)[0][: max(1000, num_samples)]
    train, test = x_train.astype("float32") / 255.0, x_test.astype("float32") / 255.0

    encoder, quantizer, decoder, vqvae = build_vqvae(codebook_size, code_dim, width)
    # The codebook starts at latents of training digits (not at random vectors far
    # from them, which most latents would never pick: a collapsed codebook).
    latents = ops.convert_to_numpy(encoder(train[:2048])).reshape(-1, code_dim)
    start_codes = np.random.default_rng(seed).choice(len(latents), codebook_size, replace=False)
    quantizer.codebook.assign(latents[start_codes].T)
    vqvae.compile(optimizer=keras.optimizers.Adam(2e-3), loss="mse")
    vqvae.fit(train, train, batch_size=128, epochs=vqvae_epochs, verbose=verbose)
    reconstructions = vqvae.predict(test, batch_size=256, verbose=0)
    mse = float(np.mean((reconstructions - test) ** 2))

    def encode(x):
        codes = [quantizer.codes(encoder(x[k : k + 500])) for k in range(0, len(x), 500)]
        codes = np.concatenate([ops.convert_to_numpy(c) for c in codes])[..., None]
        return codes.astype(image_dtype(codebook_size))

    def decode(codes):
        return decoder.predict(quantizer.lookup(codes[..., 0]), verbose=0)

    train_codes, test_codes = encode(train), encode(test)
    used = len(np.unique(train_codes))

    prior = GatedPixelCNN(
        image_shape=(7, 7, 1),
        num_layers=prior_layers,
        filters=prior_filters,
        output_filters=2 * prior_filters,
        num_values=codebook_size,
    )
    prior.compile(optimizer=keras.optimizers.Adam(1e-3))
    prior.fit(
        data.make_dataset(train_codes, batch_size=64, seed=seed),
        validation_data=data.make_dataset(test_codes, batch_size=256, shuffle=False),
        epochs=prior_epochs,
        verbose=verbose,
    )
    bits_per_code = float(prior.bits_per_dim(test_codes))
    sampled_codes = prior.sample(num_samples, seed=seed)  # cached sampling, exact
    samples = decode(np.asarray(sampled_codes, np.int32))

    rows = [x_test[:10], to_uint8(reconstructions[:10]), to_uint8(samples)]
    save_image_grid(
        np.concatenate(rows),
        output,
        ncols=10,
        row_labels=["test", "recon."] + ["prior"] * (-(-num_samples // 10)),
    )
    figures = {
        "reconstruction_mse": mse,
        "codes_used": used,
        "codebook_size": codebook_size,
        "prior_bits_per_code": bits_per_code,
        "uniform_bits_per_code": float(np.log2(codebook_size)),
        "wall_seconds": time.monotonic() - start,
        "output": output,
    }
    return figures


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=None, help="MNIST idx folder")
    parser.add_argument("--output", default="vqvae_prior.png")
    parser.add_argument("--train-images", type=int, default=20000)
    parser.add_argument("--codebook-size", type=int, default=64)
    parser.add_argument("--vqvae-epochs", type=int, default=4)
    parser.add_argument("--prior-epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    figures = run(
        data_dir=args.data_dir,
        output=args.output,
        train_images=args.train_images,
        codebook_size=args.codebook_size,
        vqvae_epochs=args.vqvae_epochs,
        prior_epochs=args.prior_epochs,
        seed=args.seed,
    )
    for key, value in figures.items():
        print(f"{key}: {value:.4f}" if isinstance(value, float) else f"{key}: {value}")


if __name__ == "__main__":
    main()
