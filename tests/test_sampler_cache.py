"""The compiled-sampler cache behind `keras-pixel sample` (keras_pixel.sampler_cache)."""

import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from keras_pixel import cli, sampler_builder, sampler_cache, zoo
from keras_pixel.cli import main
from keras_pixel.models import AutoregressiveModel

TINY = {"num_layers": 1, "filters": 8}
TINY_ARGS = ["--override", "num_layers=1", "--override", "filters=8"]


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A temporary cache folder whose builder runs in this process, at once."""
    root = tmp_path / "cache"
    monkeypatch.setenv(sampler_cache.ENV, str(root))
    started = []

    def spawn(argv, key):
        started.append(argv)
        assert sampler_builder.main([*argv, "--key", key]) == 0

    monkeypatch.setattr(sampler_cache, "spawn_builder", spawn)
    return root, started


@pytest.mark.parametrize(
    "name, labels",
    [("pixelcnn_digits", None), ("gated_pixelcnn_digits_conditional", [3, 0, 9])],
)
def test_the_cached_sampler_draws_the_images_model_sample_draws(tmp_path, name, labels):
    model = zoo.load(name, weights=None, **TINY)
    model.log_prob(
        np.zeros((1, *model.image_shape), np.uint8), labels=None if labels is None else [0]
    )
    key = "k" * 64
    path = sampler_cache.write(model, key, "cached", root=str(tmp_path))
    assert sampler_cache.find(key, root=str(tmp_path)) == path
    cached = sampler_cache.sample(path, 3, 0.8, 7, labels)
    direct = model.sample(3, temperature=0.8, seed=7, labels=labels)
    assert cached.dtype == direct.dtype
    np.testing.assert_array_equal(cached, direct)
    assert not np.array_equal(cached, sampler_cache.sample(path, 3, 0.8, 8, labels))


def test_the_key_follows_the_request(tmp_path):
    model = zoo.load("pixelcnn_digits", weights=None, **TINY)
    model.log_prob(np.zeros((1, *model.image_shape), np.uint8))
    first, second = tmp_path / "a.weights.h5", tmp_path / "b.weights.h5"
    model.save_weights(first)
    model.save_weights(second)
    key = sampler_cache.request_key("pixelcnn_digits", str(first), None, ["filters=8"])
    assert sampler_cache.request_key("pixelcnn_digits", str(second), None, ["filters=8"]) == key
    others = [
        sampler_cache.request_key("pixelcnn_digits", str(first), None, ["filters=9"]),
        sampler_cache.request_key("pixelcnn_digits", str(first), None, ["filters=8"], "naive"),
        sampler_cache.request_key("pixelcnn_mnist", str(first), None, ["filters=8"]),
    ]
    weights = model.get_weights()
    weights[0] = weights[0] + 1e-7
    model.set_weights(weights)
    model.save_weights(second)
    others.append(sampler_cache.request_key("pixelcnn_digits", str(second), None, ["filters=8"]))
    assert len({key, *others}) == 5
    shipped = sampler_cache.request_key("pixelcnn_mnist")
    assert (
        shipped is not None and sampler_cache.request_key("pixelcnn_mnist", "pretrained") == shipped
    )
    for uncached in [("pixelcnn_mnist", "none"), ("pixelcnn_digits", None),
                     ("pixelcnn_mnist", str(tmp_path / "missing.keras")),
                     ("pixelcnn_mnist", "https://example.com/w.keras")]:  # fmt: skip
        assert sampler_cache.request_key(*uncached) is None
    url = sampler_cache.request_key("pixelcnn_mnist", "https://example.com/w.keras", "ab" * 32)
    assert url is not None


def test_the_cache_folder_and_switching_it_off(monkeypatch, tmp_path):
    monkeypatch.setenv(sampler_cache.ENV, str(tmp_path / "c"))
    assert sampler_cache.cache_dir() == str(tmp_path / "c")
    monkeypatch.setenv(sampler_cache.ENV, "off")
    assert sampler_cache.cache_dir() is None and sampler_cache.entry_path("k") is None
    monkeypatch.delenv(sampler_cache.ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert sampler_cache.cache_dir() == str(tmp_path / "xdg" / "keras_pixel")
    monkeypatch.setenv("TF_XLA_FLAGS", "--tf_xla_auto_jit=0")
    assert sampler_cache.enable_xla_cache() == str(tmp_path / "xdg" / "keras_pixel" / "xla")
    import os

    assert os.environ["TF_XLA_FLAGS"] == (
        "--tf_xla_auto_jit=0 --tf_xla_persistent_cache_directory="
        + str(tmp_path / "xdg" / "keras_pixel" / "xla")
    )
    assert sampler_cache.enable_xla_cache() is None


@pytest.fixture
def weights_file(tmp_path):
    model = zoo.load("pixelcnn_digits", weights=None, **TINY)
    model.log_prob(np.zeros((1, *model.image_shape), np.uint8))
    path = tmp_path / "m.keras"
    model.save(path)
    return str(path)


def _sample(weights_file, out, seed="5"):
    args = ["sample", "pixelcnn_digits", "--weights", weights_file, "--num", "4"]
    return main([*args, "--seed", seed, "--output", str(out), *TINY_ARGS])


def _grid(path):
    return np.asarray(Image.open(path))


def test_the_second_sample_command_loads_the_cached_sampler(
    cache, weights_file, tmp_path, monkeypatch
):
    root, started = cache
    assert _sample(weights_file, tmp_path / "a.png") == 0
    assert len(started) == 1
    assert len(list((root / "samplers").glob("*/saved_model.pb"))) == 1
    assert list((root / "samplers").glob(".*")) == []

    def refuse(*args, **kwargs):
        raise AssertionError("model.sample ran although a cached sampler exists")

    monkeypatch.setattr(AutoregressiveModel, "sample", refuse)
    monkeypatch.setattr(cli, "_load_model", refuse)
    assert _sample(weights_file, tmp_path / "b.png") == 0
    assert len(started) == 1
    np.testing.assert_array_equal(_grid(tmp_path / "a.png"), _grid(tmp_path / "b.png"))
    assert _sample(weights_file, tmp_path / "c.png", seed="6") == 0
    assert not np.array_equal(_grid(tmp_path / "a.png"), _grid(tmp_path / "c.png"))


def test_an_unreadable_cached_sampler_is_removed_and_skipped(cache, weights_file, tmp_path):
    root, started = cache
    assert _sample(weights_file, tmp_path / "a.png") == 0
    (entry,) = (root / "samplers").glob("*/saved_model.pb")
    entry.write_bytes(b"not a SavedModel")
    with pytest.warns(UserWarning, match="could not be read"):
        assert _sample(weights_file, tmp_path / "b.png") == 0
    np.testing.assert_array_equal(_grid(tmp_path / "a.png"), _grid(tmp_path / "b.png"))
    assert len(started) == 2 and entry.exists()


def test_no_cache_no_builder(monkeypatch, weights_file, tmp_path):
    monkeypatch.setenv(sampler_cache.ENV, "off")
    monkeypatch.setattr(sampler_cache, "spawn_builder", lambda *a: pytest.fail("spawned"))
    assert _sample(weights_file, tmp_path / "a.png") == 0


def test_the_builder_refuses_a_key_its_model_does_not_have(cache, weights_file):
    argv = ["pixelcnn_digits", "--weights", weights_file, "--num", "2", *TINY_ARGS]
    assert sampler_builder.main([*argv, "--key", "0" * 64]) == 1
    root, _ = cache
    assert not (root / "samplers").exists() or not any((root / "samplers").iterdir())


def test_a_cache_that_cannot_be_written_still_gives_the_samples(
    monkeypatch, weights_file, tmp_path
):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setenv(sampler_cache.ENV, str(blocker / "cache"))
    with pytest.warns(UserWarning, match="not cached"):
        assert _sample(weights_file, tmp_path / "a.png") == 0
    assert Image.open(tmp_path / "a.png").format == "PNG"


@pytest.mark.parametrize("verbose", [False, True])
def test_sampling_keeps_native_log_lines_off_a_quiet_command(monkeypatch, capfd, verbose):
    """TensorFlow's C++ writes straight to file descriptor 2 (XLA's persistent
    cache logs an "Error parsing text-format" line for each entry it reads, a
    harmless fallback): a quiet ``keras-pixel sample`` drops those and keeps
    Python's stderr (progress bars, warnings); ``--verbose`` keeps both."""
    from keras_pixel import _native_stderr_to_devnull

    argv = ["keras-pixel", *(["--verbose"] if verbose else []), "sample", "pixelcnn_mnist"]
    monkeypatch.setattr(sys, "argv", argv)
    before = sys.stderr
    with _native_stderr_to_devnull():
        os.write(2, b"native line\n")
        print("python line", file=sys.stderr)
    assert sys.stderr is before
    os.write(2, b"after\n")
    err = capfd.readouterr().err
    assert "python line" in err and "after" in err
    assert ("native line" in err) is verbose


def test_one_builder_per_entry(cache, weights_file, monkeypatch):
    """While a builder holds an entry's lock, another builder of it returns at once
    without writing, and `keras-pixel sample` starts none; once it is released,
    the builder writes the entry."""
    root, _ = cache
    argv = ["pixelcnn_digits", "--weights", weights_file, "--num", "2", *TINY_ARGS]
    key = sampler_cache.request_key("pixelcnn_digits", weights_file, None, TINY_ARGS[1::2])
    with sampler_cache.building(key) as mine, monkeypatch.context() as patch:
        patch.setattr(
            sampler_cache.subprocess, "Popen", lambda *a, **k: pytest.fail("a builder started")
        )
        assert mine
        assert sampler_cache.builder_running(key)
        assert sampler_builder.main([*argv, "--key", key]) == 0
        assert sampler_cache.find(key) is None
        assert sampler_cache.spawn_builder(argv, key) is None
    assert not sampler_cache.builder_running(key)
    assert sampler_builder.main([*argv, "--key", key]) == 0
    assert sampler_cache.find(key) == str(root / "samplers" / key)


def test_a_builders_lock_is_held_across_processes_until_it_exits(tmp_path):
    hold = (
        "import sys, time; from keras_pixel import sampler_cache\n"
        "with sampler_cache.building('k' * 64, sys.argv[1]) as mine:\n"
        "    print(mine, flush=True); time.sleep(60)\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", hold, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "True"
        assert sampler_cache.builder_running("k" * 64, str(tmp_path))
    finally:
        holder.kill()
        holder.wait()
    assert not sampler_cache.builder_running("k" * 64, str(tmp_path))
