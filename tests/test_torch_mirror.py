"""``zoo/torch_mirror.py`` (the PyTorch mirror used to train zoo entries on a lent
GPU) gives the Keras model's logits from the same weights, both ways."""

import importlib.util
import json
import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from keras_pixel import data  # noqa: E402
from keras_pixel.models import GatedPixelCNN, PixelCNN  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_spec = importlib.util.spec_from_file_location(
    "torch_mirror", os.path.join(ROOT, "zoo", "torch_mirror.py")
)
mirror = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(mirror)

CASES = [
    (PixelCNN, "pixelcnn", dict(num_layers=2, filters=8, output_filters=16, num_values=2), None),
    (PixelCNN, "pixelcnn", dict(num_layers=2, filters=8, output_filters=16, num_values=256), None),
    (GatedPixelCNN, "gated_pixelcnn", dict(num_layers=3, filters=8, output_filters=16), None),
    (GatedPixelCNN, "gated_pixelcnn", dict(num_layers=3, filters=8, output_filters=16), 10),
]


def _keras_arrays(model):
    return {w.path.split("/", 1)[1]: np.asarray(w) for w in model.weights}


@pytest.mark.parametrize("keras_cls,family,config,num_classes", CASES)
def test_mirror_gives_the_keras_logits(keras_cls, family, config, num_classes):
    extra = {} if num_classes is None else dict(num_classes=num_classes)
    model = keras_cls(image_shape=(10, 9, 1), **config, **extra)
    net = mirror.FAMILIES[family](
        config["num_layers"],
        config["filters"],
        config["output_filters"],
        config.get("num_values", 256),
        num_classes=num_classes,
    )
    arrays = _keras_arrays(model)
    assert set(arrays) == set(mirror.keras_arrays(net))
    mirror.load_keras_arrays(net, arrays)
    rng = np.random.default_rng(0)
    k = model.num_values
    images = rng.integers(0, k, (3, 10, 9, 1)).astype("uint8")
    labels = np.array([0, 3, 9])
    expected = np.asarray(model((images, labels) if num_classes else images))[..., 0, :]
    x = torch.from_numpy(images.transpose(0, 3, 1, 2).astype("float32")) * (2.0 / (k - 1)) - 1.0
    condition = (
        None
        if num_classes is None
        else torch.nn.functional.one_hot(torch.from_numpy(labels), num_classes).float()
    )
    got = net(x, condition).detach().numpy().transpose(0, 2, 3, 1)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
    back = mirror.keras_arrays(net)
    for key, value in arrays.items():
        np.testing.assert_array_equal(back[key], value)


def test_mirror_binarizes_the_test_set_as_the_package_does():
    images = np.random.default_rng(1).integers(0, 256, (7, 28, 28, 1)).astype("uint8")
    np.testing.assert_array_equal(
        mirror.binarize_test_set(images), data.binarize(images, seed=0, num_values=2)
    )


def test_mirror_refuses_missing_or_misshapen_weights():
    net = mirror.PixelCNN(1, 4, 8, 2)
    arrays = mirror.keras_arrays(net)
    with pytest.raises(ValueError, match="shape"):
        mirror.load_keras_arrays(net, {**arrays, "head/logits_conv/bias": np.zeros(3)})
    del arrays["input_conv/kernel"]
    with pytest.raises(ValueError, match="input_conv/kernel"):
        mirror.load_keras_arrays(net, arrays)


def test_auto_precision_is_bfloat16_only_where_it_pays():
    assert mirror.default_precision("cuda", cpu_flags=set()) == "bfloat16"
    assert mirror.default_precision("cpu", cpu_flags={"avx2", "amx_bf16", "amx_tile"}) == "bfloat16"
    assert mirror.default_precision("cpu", cpu_flags={"avx2", "fma"}) == "float32"
    assert mirror.default_precision("cpu", cpu_flags={"avx512f", "avx512_bf16"}) == "float32"
    assert mirror.default_precision("cpu") in ("bfloat16", "float32")


def test_mirror_trains_on_mnist_and_writes_keras_weights(mnist_dir, tmp_path, monkeypatch):
    """A whole (tiny) run: 300 steps, then the record says finished with a test
    figure below the untrained 8 bits/dim, and the weights fit the Keras model."""
    out = str(tmp_path / "run")
    argv = ["torch_mirror.py", "--model", "gated_pixelcnn", "--num-layers", "1"]
    argv += ["--filters", "4", "--output-filters", "8", "--num-classes", "10"]
    argv += ["--mnist-dir", str(mnist_dir), "--seconds", "1", "--batch-size", "8"]
    argv += ["--output", out]
    monkeypatch.setattr("sys.argv", argv)
    mirror.main()
    record = json.load(open(out + ".json"))
    assert record["finished"] and record["steps"] == 300
    assert record["args"]["precision"] == mirror.default_precision("cpu")
    assert record["device"].startswith("cpu")
    assert 0.0 < record["test_bits_per_dim"] < 7.0
    keras_model = GatedPixelCNN(
        image_shape=(28, 28, 1), num_layers=1, filters=4, output_filters=8, num_classes=10
    )
    arrays = dict(np.load(out + ".npz"))
    assert set(arrays) == set(_keras_arrays(keras_model))
    assert not (tmp_path / "run.partial.npz").exists()
