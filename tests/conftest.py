import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# No test writes to the user's compiled-sampler cache or starts its builder;
# tests/test_sampler_cache.py points it at a temporary folder. Its builder
# compiles no sampler ahead of time but in tests/test_sampler_aot.py, and no
# sampling server is started but in tests/test_sampler_server.py.
os.environ["KERAS_PIXEL_CACHE_DIR"] = "off"
os.environ["KERAS_PIXEL_AOT"] = "off"
os.environ["KERAS_PIXEL_SERVER_TIMEOUT"] = "0"
# The shifted convolutions' backward pass by the documented rule, untimed, so that
# no test spends seconds timing shapes; tests/test_conv_backward.py and
# tests/test_pixelcnn_pp.py time and force the other ways.
os.environ["KERAS_PIXEL_CONV_BACKWARD"] = "rule"

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from keras_pixel import data  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)


MNIST_DIR = Path(os.environ.get("KERAS_PIXEL_MNIST_DIR", ROOT.parent / "shared" / "data" / "mnist"))


@pytest.fixture(scope="session")
def mnist_dir():
    """The real MNIST idx files (``../shared/data/mnist``); skips where they are absent."""
    if not (MNIST_DIR / "t10k-images-idx3-ubyte.gz").exists():
        pytest.skip(f"real MNIST is not at {MNIST_DIR} (set KERAS_PIXEL_MNIST_DIR)")
    return MNIST_DIR


@pytest.fixture(scope="session")
def digits():
    """scikit-learn's real 8x8 digits rescaled to 8 bits: (train, test) uint8 images."""
    return data.load_digits("train")[0], data.load_digits("test")[0]


@pytest.fixture(scope="session")
def rgb_patches():
    """Real 8x8 RGB patches cut from scikit-learn's sample photos, uint8 [N, 8, 8, 3]."""
    from sklearn.datasets import load_sample_images

    photos = load_sample_images().images
    patches = [
        photo[r : r + 8, c : c + 8]
        for photo in photos
        for r in range(0, 400, 57)
        for c in range(0, 600, 83)
    ]
    return np.stack(patches).astype(np.uint8)


@pytest.fixture
def builder_in_process(monkeypatch):
    """`keras-pixel sample`'s background builder runs in this process, at once."""
    from keras_pixel import sampler_builder, sampler_cache

    monkeypatch.setattr(
        sampler_cache,
        "spawn_builder",
        lambda argv, key: sampler_builder.main([*argv, "--key", key]),
    )


@pytest.fixture
def tiny_weights(tmp_path):
    """Saves an untrained one-layer, 8-filter zoo model NAME (built) as
    ``tmp_path/NAME.keras``, for `--weights` with `--override num_layers=1
    --override filters=8`; returns the path."""
    from keras_pixel import zoo

    def save(name="pixelcnn_digits"):
        model = zoo.load(name, weights=None, num_layers=1, filters=8)
        labels = [0] if model.conditional else None
        model.log_prob(np.zeros((1, *model.image_shape), np.uint8), labels=labels)
        path = tmp_path / f"{name}.keras"
        model.save(path)
        return str(path)

    return save


@pytest.fixture
def sample_command():
    """Runs `keras-pixel sample ARGS` in a fresh process (``env``: its
    environment); with ``tensorflow_free`` it fails unless the command imported
    neither TensorFlow nor Keras. Returns the ``CompletedProcess``."""
    import subprocess
    import sys

    def run(args, tensorflow_free=True, env=None):
        script = (
            "import sys; sys.argv = ['keras-pixel', *sys.argv[1:]]; "
            "from keras_pixel import cli; code = cli.main(sys.argv[1:]); "
        )
        if tensorflow_free:
            script += (
                "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, "
                "'imported'; "
            )
        return subprocess.run(
            [sys.executable, "-c", script + "sys.exit(code)", "sample", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
        )

    return run
