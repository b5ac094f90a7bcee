"""Samplers compiled ahead of time (keras_pixel.sampler_aot) and the NumPy copy
of TensorFlow's noise they are fed (keras_pixel.philox)."""

import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from keras_pixel import philox, sampler_aot, sampler_cache, sampling, zoo
from keras_pixel.cli import main

TINY = {"num_layers": 1, "filters": 8}
TINY_ARGS = ["--override", "num_layers=1", "--override", "filters=8"]


@pytest.mark.parametrize("seed", [0, 1, 2**31 - 1, 2**31, 2**62 + 12345])
def test_the_numpy_noise_is_tensorflows_bit_for_bit(seed):
    steps = np.array([0, 1, 2, 63, 783, 3071, 99999])
    for batch, per in [(1, 1), (16, 2), (7, 3), (300, 10)]:
        expected = sampling._noise(
            sampling.make_seed(seed), tf.constant(steps, tf.int32), batch, per
        ).numpy()
        got = philox.draw_noise(seed, steps, batch, per)
        assert got.dtype == np.float32 and got.shape == expected.shape
        np.testing.assert_array_equal(got, expected)


def test_fold_in_and_uniform_are_tensorflows_for_any_int32_seed():
    rng = np.random.default_rng(0)
    seeds = rng.integers(-(2**31), 2**31, size=(2, 20)).astype(np.int32)
    data = rng.integers(-(2**31), 2**31, size=20).astype(np.int32)
    uniform = philox.uniform(seeds, 9)
    for k in range(20):
        seed = tf.constant(seeds[:, k])
        np.testing.assert_array_equal(philox.uniform(seeds[:, k : k + 1], 9)[0], uniform[k])
        np.testing.assert_array_equal(uniform[k], tf.random.stateless_uniform([9], seed).numpy())
        folded = tf.random.experimental.stateless_fold_in(seed, int(data[k])).numpy()
        np.testing.assert_array_equal(philox.fold_in(seeds[:, k], [data[k]])[:, 0], folded)
    assert philox.seed_pair(2**40 + 3).tolist() == sampling.make_seed(2**40 + 3).numpy().tolist()


needs_compiler = pytest.mark.skipif(
    not (sampler_aot._compiler() and os.path.isdir(sampler_aot._runtime_sources(tf))),
    reason="no C++ compiler or no tfcompile runtime in this TensorFlow",
)


@pytest.fixture(scope="module")
def aot_root(tmp_path_factory):
    """One cache folder for this module: the AOT runtime is compiled once."""
    return tmp_path_factory.mktemp("aot-cache")


@pytest.fixture
def aot_on(monkeypatch):
    monkeypatch.setenv(sampler_aot.ENV, "on")
    assert sampler_aot.enabled()


@needs_compiler
def test_the_compiled_sampler_draws_the_images_model_sample_draws(aot_root, aot_on):
    """A class-conditional model (an unconditional one: the next test)."""
    name, labels = "gated_pixelcnn_digits_conditional", [3, 0, 9]
    model = zoo.load(name, weights=None, **TINY)
    model.log_prob(np.zeros((1, *model.image_shape), np.uint8), labels=[0])
    entry = str(aot_root / "samplers" / name)
    path = sampler_aot.entry_path(entry, 3)
    assert sampler_aot.compile_sampler(model, "cached", 3, path, str(aot_root)) == path
    assert sampler_aot.find(entry, 3) == path and sampler_aot.find(entry, 4) is None
    sampler = sampler_aot.CompiledSampler(path)
    for seed, temperature in [(7, 0.8), (8, 1.0)]:
        compiled = sampler.draw(temperature, seed, labels)
        direct = model.sample(3, temperature=temperature, seed=seed, labels=labels)
        assert compiled.dtype == direct.dtype and compiled.shape == direct.shape
        np.testing.assert_array_equal(compiled, direct)
    assert not np.array_equal(sampler.draw(1.0, 7, labels), sampler.draw(1.0, 9, labels))
    np.testing.assert_array_equal(
        sampler.draw(1.0, 7, 4), model.sample(3, temperature=1.0, seed=7, labels=4)
    )
    with pytest.raises(ValueError, match="labels"):
        sampler.draw(1.0, 7)
    with pytest.raises(ValueError, match="labels must be class ids"):
        sampler.draw(1.0, 7, [3, 0, 10])
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        sampler.draw(1.0, 7, [3, 0])
    with pytest.raises(ValueError, match="seed"):
        sampler.draw(1.0, -1, labels)
    with pytest.raises(ValueError, match="temperature"):
        sampler.draw(0.0, 7, labels)


@needs_compiler
def test_a_warm_sample_command_imports_no_tensorflow(
    aot_root, aot_on, builder_in_process, tiny_weights, sample_command, monkeypatch, tmp_path
):
    monkeypatch.setenv(sampler_cache.ENV, str(aot_root))
    weights = tiny_weights()
    args = ["sample", "pixelcnn_digits", "--weights", weights, "--num", "4", "--seed", "5"]
    assert main([*args, "--output", str(tmp_path / "a.png"), *TINY_ARGS]) == 0
    assert len(list((aot_root / "samplers").glob("*.aot/4/sampler.so"))) == 1
    out = tmp_path / "b.png"
    done = sample_command([*args[1:], "--output", str(out), *TINY_ARGS])
    assert done.returncode == 0, done.stderr[-2000:]
    assert "sampling (compiled)" in done.stderr
    np.testing.assert_array_equal(
        np.asarray(Image.open(tmp_path / "a.png")), np.asarray(Image.open(out))
    )
    env = {k: v for k, v in os.environ.items() if k != sampler_aot.ENV}
    default = sample_command(
        [*args[1:], "--output", str(tmp_path / "c.png"), *TINY_ARGS], tensorflow_free=False, env=env
    )
    assert default.returncode == 0, default.stderr[-2000:]
    assert "sampling (cached)" in default.stderr and "compiled" not in default.stderr
    assert "Error parsing" not in default.stderr
    np.testing.assert_array_equal(
        np.asarray(Image.open(tmp_path / "a.png")), np.asarray(Image.open(tmp_path / "c.png"))
    )


@pytest.mark.parametrize(
    "value,on",
    [(None, False), ("", False), ("off", False), ("0", False), ("on", True), ("1", True),
     ("TRUE", True), ("yes", True)],
)  # fmt: skip
def test_the_compiled_sampler_is_used_only_when_asked_for(monkeypatch, tmp_path, value, on):
    """Its images can differ from ``model.sample``'s (float32 rounding in other
    kernels), so ``$KERAS_PIXEL_AOT`` must turn it on: no builder compiles it
    and no ``sample`` command loads it otherwise."""
    if value is None:
        monkeypatch.delenv(sampler_aot.ENV, raising=False)
    else:
        monkeypatch.setenv(sampler_aot.ENV, value)
    assert sampler_aot.enabled() is on
    entry = tmp_path / "samplers" / "key.aot" / "4"
    entry.mkdir(parents=True)
    (entry / sampler_aot.INFO).write_text("{}")
    (entry / sampler_aot.LIBRARY).write_bytes(b"")
    assert sampler_aot.find(str(tmp_path / "samplers" / "key"), 4) == (str(entry) if on else None)
    if not on:
        assert not sampler_aot.available()


def test_an_unloadable_compiled_sampler_is_removed_and_skipped(aot_on, tmp_path):
    from keras_pixel import cli

    entry = tmp_path / "samplers" / "key.aot" / "4"
    entry.mkdir(parents=True)
    (entry / sampler_aot.INFO).write_text("{}")
    (entry / sampler_aot.LIBRARY).write_bytes(b"not a shared library")
    assert sampler_aot.find(str(tmp_path / "samplers" / "key"), 4) == str(entry)
    args = type("Args", (), {"num": 4, "temperature": 1.0, "labels": None, "model": "m"})()
    with pytest.warns(UserWarning, match="could not be read"):
        found = cli._cached_draw(args, 5, str(entry), cli._load_compiled, "compiled")
    assert found is None and not entry.exists()
