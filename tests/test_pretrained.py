"""The zoo for real: cards, pretrained weights shipped in the package, URL loading."""

import dataclasses
import functools
import http.server
import os
import pathlib
import shutil
import subprocess
import sys
import threading
import warnings

import numpy as np
import pytest

from keras_pixel import data, zoo
from keras_pixel.zoo import cards, registry

ROOT = pathlib.Path(__file__).resolve().parents[1]
TRAINED_ON_MNIST = [
    "pixelcnn_mnist",
    "gated_pixelcnn_mnist",
    "gated_pixelcnn_mnist_conditional",
    "row_lstm_mnist",
    "pixelcnn_pp_mnist",
    "pixelcnn_binarized_mnist",
]


@pytest.mark.parametrize("name", zoo.list_models())
def test_every_entry_has_a_current_card_naming_its_commands(name):
    path = ROOT / "zoo" / f"{name}.md"
    assert path.exists(), f"no card for {name}: run python -m keras_pixel.zoo.cards zoo/"
    text = path.read_text(encoding="utf-8")
    assert text == cards.render_card(name), f"{path} is stale: re-render the cards"
    assert f"keras-pixel train {name} " in text and f"keras-pixel evaluate {name} " in text
    if zoo.info(name)["pretrained"]:
        assert (ROOT / "zoo" / f"{name}.png").exists()
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    assert f"      - {name}: zoo/{name}.md\n" in nav, f"{name}'s card is not in the docs' nav"


def test_readme_zoo_table_is_current():
    assert cards.zoo_table() in (ROOT / "README.md").read_text(encoding="utf-8")


@pytest.mark.large
@pytest.mark.parametrize(
    "name",
    [n for n in zoo.list_models() if n != "gated_pixelcnn_cifar"],  # 128M: too big here
)
def test_parameter_counts_of_the_registry(name):
    assert zoo.load(name, weights=None).count_params() == zoo.info(name)["parameters"]


def _same_weights(a, b):
    return all(np.array_equal(x, y) for x, y in zip(a.get_weights(), b.get_weights(), strict=True))


def test_load_gives_the_shipped_weights_by_default_and_fresh_ones_on_request():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        default = zoo.load("pixelcnn_mnist")
        fresh = zoo.load("pixelcnn_mnist", weights=None)
        same_shapes = zoo.load("pixelcnn_mnist", dtype="float32")
    assert _same_weights(default, zoo.load("pixelcnn_mnist", weights="pretrained"))
    assert _same_weights(same_shapes, default)
    assert not _same_weights(fresh, default)


def test_an_entry_without_weights_warns_that_it_is_untrained():
    with pytest.warns(UserWarning, match=r"No pretrained weights.*pixelcnn_digits.*weights=None"):
        model = zoo.load("pixelcnn_digits", num_layers=1)
    assert model.num_layers == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        zoo.load("pixelcnn_digits", weights=None, num_layers=1)


def test_overrides_that_change_the_shapes_give_fresh_weights_and_say_so():
    with pytest.warns(UserWarning, match=r"do not fit the overridden configuration"):
        model = zoo.load("pixelcnn_mnist", num_layers=2)
    assert model.num_layers == 2
    with pytest.raises(ValueError, match="different architecture"):
        zoo.load("pixelcnn_mnist", weights="pretrained", num_layers=2)


def test_info_gives_the_cards_facts():
    facts = zoo.info("pixelcnn_cifar")
    assert facts["paper_result"].startswith("3.14 bits/dim")
    assert facts["pretrained"] is False and facts["measured"] is None
    assert facts["config"]["num_layers"] == 15 and facts["dataset"] == "cifar10"
    with pytest.raises(zoo.UnknownModelError):
        zoo.info("pixelcnn_cifar10")


def test_the_mnist_entries_ship_trained_weights():
    assert set(TRAINED_ON_MNIST) <= set(zoo.list_models(pretrained=True))
    sizes = []
    for name in zoo.list_models(pretrained=True):
        measured = zoo.info(name)["measured"]
        sizes.append(os.path.getsize(zoo.pretrained_path(name)))
        assert sizes[-1] < 8e6, f"{name}'s weights are too large to ship in the package"
        assert measured["test_bits_per_dim"] > 0 and measured["train_seconds"] > 0
    assert sum(sizes) < 20e6, "the package's weights together should stay under 20 MB"
    with pytest.raises(ValueError, match="No pretrained weights.*Entries with weights: "):
        zoo.load("pixelcnn_cifar", weights="pretrained")


def test_pretrained_weights_are_checked_against_their_sha256(monkeypatch, tmp_path):
    name = "pixelcnn_mnist"
    preset = zoo.get_preset(name)
    wrong = dataclasses.replace(preset, trained={**preset.trained, "sha256": "0" * 64})
    monkeypatch.setitem(registry._REGISTRY, name, wrong)
    with pytest.raises(ValueError, match="corrupt or not the expected file"):
        zoo.load(name, weights="pretrained")
    monkeypatch.setitem(registry._REGISTRY, name, preset)
    truncated = tmp_path / "truncated.weights.h5"
    truncated.write_bytes(pathlib.Path(zoo.pretrained_path(name)).read_bytes()[:5000])
    with pytest.raises(ValueError, match="Could not load weights"):
        zoo.load(name, weights=truncated)
    with pytest.raises(ValueError):
        zoo.load(name, weights="pretrained", num_layers=3)


@pytest.mark.parametrize("name", TRAINED_ON_MNIST)
def test_pretrained_log_likelihood_matches_the_card(name, mnist_dir):
    measured = zoo.info(name)["measured"]
    preset = zoo.get_preset(name)
    images, labels = data.load_mnist_idx(mnist_dir, "test")
    count = measured["slice"]["images"]
    if preset.train.get("binarize"):
        images = data.binarize(images, seed=0, num_values=preset.config.get("num_values", 256))
    labels = labels[:count] if preset.config.get("num_classes") else None
    model = zoo.load(name, weights="pretrained")
    nats = -model.log_prob(images[:count], labels=labels).astype(np.float64).mean()
    np.testing.assert_allclose(nats, measured["slice"]["nats"], rtol=2e-4)


@pytest.fixture()
def weights_server(tmp_path):
    """A loopback HTTP server over a folder; counts the requests it answers."""
    served = tmp_path / "served"
    served.mkdir()
    hits = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            super().do_GET()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Handler, directory=str(served))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield served, f"http://127.0.0.1:{server.server_address[1]}", hits
    server.shutdown()


def test_url_weights_are_downloaded_once_and_hash_checked(weights_server, tmp_path, monkeypatch):
    served, base, hits = weights_server
    monkeypatch.setattr(registry, "CACHE_DIR", str(tmp_path / "cache"))
    model = zoo.load("pixelcnn_digits", weights=None, num_layers=1)
    model.save_weights(served / "digits.weights.h5")
    digest = zoo.sha256_of(served / "digits.weights.h5")
    x = np.random.default_rng(0).integers(0, 256, (2, 8, 8, 1), dtype=np.uint8)
    cached = tmp_path / "cache" / "keras_pixel" / "digits.weights.h5"
    assert not cached.exists()
    url = f"{base}/digits.weights.h5"
    loaded = zoo.load("pixelcnn_digits", weights=url, file_hash=digest, num_layers=1)
    np.testing.assert_array_equal(loaded.log_prob(x), model.log_prob(x))
    assert cached.exists() and zoo.sha256_of(cached) == digest
    # The server no longer has the file: the second load must come from the cache.
    shutil.move(served / "digits.weights.h5", served / "other.weights.h5")
    loaded = zoo.load("pixelcnn_digits", weights=url, file_hash=digest, num_layers=1)
    np.testing.assert_array_equal(loaded.log_prob(x), model.log_prob(x))
    assert "/digits.weights.h5" not in hits[1:]
    upper = zoo.load("pixelcnn_digits", weights=url, file_hash=digest.upper(), num_layers=1)
    np.testing.assert_array_equal(upper.log_prob(x), model.log_prob(x))
    with pytest.raises(ValueError, match="sha256"):
        zoo.load("pixelcnn_digits", weights=f"{base}/other.weights.h5", file_hash="0" * 64)
    with pytest.raises(ValueError, match="file_hash"):
        zoo.load("pixelcnn_digits", weights=f"{base}/other.weights.h5")


@pytest.mark.slow
def test_a_plain_install_loads_pretrained_weights_from_anywhere(tmp_path):
    """``pip install .`` (not editable) into a fresh venv, run from another folder:
    the weights travel inside the package. The venv borrows this environment's
    dependencies through a .pth file, so nothing is downloaded."""
    import sysconfig

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    pathlib.Path(site, "borrowed_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    build = tmp_path / "src"
    shutil.copytree(
        ROOT, build, ignore=shutil.ignore_patterns(".venv", ".git", "runs", "site", "__pycache__")
    )
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", build],
        check=True,
        capture_output=True,
    )
    shutil.rmtree(build)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    script = (
        "import keras_pixel, numpy as np\n"
        "from keras_pixel import zoo\n"
        "model = zoo.load('pixelcnn_mnist', weights='pretrained')\n"
        "x = np.zeros((1, 28, 28, 1), np.uint8)\n"
        "print(keras_pixel.__file__)\n"
        "print(float(model.log_prob(x)[0]))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run(
        [str(python), "-c", script],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        env={**env, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    where, value = out.stdout.strip().splitlines()[-2:]
    assert where.startswith(site), where
    expected = zoo.load("pixelcnn_mnist", weights="pretrained").log_prob(
        np.zeros((1, 28, 28, 1), np.uint8)
    )[0]
    np.testing.assert_allclose(float(value), expected, rtol=1e-6)
