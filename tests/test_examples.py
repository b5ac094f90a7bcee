"""The examples run end to end (tiny sizes), on real data: scikit-learn's digits
framed as 28x28 MNIST-like images, served from a Keras dataset cache."""

import importlib.util
import pathlib

import numpy as np
import pytest
from PIL import Image

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _example(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def mnist_like_cache(tmp_path, monkeypatch):
    digits_28 = _example("fine_tune_digits").digits_28
    (tmp_path / "datasets").mkdir()
    np.savez(
        tmp_path / "datasets" / "mnist.npz",
        x_train=digits_28("train")[..., 0],
        y_train=np.zeros(1500, np.int64),
        x_test=digits_28("test")[..., 0],
        y_test=np.zeros(297, np.int64),
    )
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.delenv("KERAS_PIXEL_MNIST_DIR", raising=False)


def test_vqvae_prior_example_end_to_end(mnist_like_cache, tmp_path):
    figures = _example("vqvae_prior").run(
        output=str(tmp_path / "vq.png"),
        train_images=1500,
        codebook_size=16,
        code_dim=8,
        width=8,
        vqvae_epochs=3,
        prior_epochs=2,
        prior_layers=2,
        prior_filters=16,
        num_samples=10,
        verbose=0,
    )
    grid = np.asarray(Image.open(tmp_path / "vq.png"))
    assert grid.shape[0] == 3 * (28 * 3 + 1) + 1  # test, reconstructions, one row of samples
    assert 0 < figures["reconstruction_mse"] < 0.1
    assert figures["codes_used"] >= 2
    assert 0 < figures["prior_bits_per_code"] < figures["uniform_bits_per_code"]
