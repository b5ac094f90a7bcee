"""openai/pixel-cnn PixelCNN++ checkpoints into ``pixelcnn_pp_cifar``: checked
against a test-only reference of the published code (``openai_pixelcnn_pp_reference``),
on checkpoints written as its ``train.py`` would write them."""

import os
import shutil

import numpy as np
import pytest
import tensorflow as tf
from openai_pixelcnn_pp_reference import (
    Reference,
    discretized_mix_logistic_log_prob,
    random_params,
    variable_shapes,
    write_checkpoint,
)

from keras_pixel import zoo
from keras_pixel.cli import main
from keras_pixel.convert import (
    CheckpointMismatchError,
    convert_checkpoint,
    load_openai_checkpoint,
)
from keras_pixel.convert.openai_pixelcnn_pp import check_variables

NAME = "pixelcnn_pp_cifar"
REDUCED = dict(nr_resnet=1, nr_filters=16, nr_logistic_mix=3)
OVERRIDES = dict(num_resnet=1, num_filters=16, num_logistic_mix=3, image_shape=(8, 8, 3))


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A reduced checkpoint as the reference's ``train.py`` writes it:
    ``(prefix, raw values, Polyak averages)``."""
    folder = tmp_path_factory.mktemp("pxpp")
    params = random_params(variable_shapes(**REDUCED))
    prefix = str(folder / "params_cifar.ckpt")
    ema = write_checkpoint(prefix, params)
    return prefix, params, ema


def reference_log_prob(params, images):
    x = tf.constant(images, tf.float64) / 127.5 - 1.0
    out = Reference(**REDUCED, params=params)(x)
    return discretized_mix_logistic_log_prob(x, out, REDUCED["nr_logistic_mix"]).numpy()


def images(n=4, seed=0):
    # both edge bins (0 and 255) and the interior
    values = np.random.default_rng(seed).integers(0, 256, (n, 8, 8, 3))
    values[:, 0, :3] = [0, 255, 17]
    return values.astype(np.uint8)


def test_converted_model_gives_the_reference_log_likelihood(checkpoint):
    prefix, params, ema = checkpoint
    x = images()
    model = zoo.load(NAME, weights=prefix, **OVERRIDES)
    ours = model.log_prob(x)
    expected = reference_log_prob(ema, x)
    np.testing.assert_allclose(ours, expected, rtol=1e-5)
    # Polyak averages by default; use_ema=False: the raw weights
    assert not np.allclose(ours, reference_log_prob(params, x), rtol=1e-5)
    raw = zoo.load(NAME, weights=None, **OVERRIDES)
    assert load_openai_checkpoint(raw, prefix, use_ema=False) == len(raw.weights)
    np.testing.assert_allclose(raw.log_prob(x), reference_log_prob(params, x), rtol=1e-5)


def test_checkpoint_found_from_its_index_file_or_its_folder(checkpoint, tmp_path):
    prefix, _, _ = checkpoint
    x = images(2, seed=1)
    expected = zoo.load(NAME, weights=prefix, **OVERRIDES).log_prob(x)
    for path in (prefix + ".index", os.path.dirname(prefix)):
        got = zoo.load(NAME, weights=path, **OVERRIDES).log_prob(x)
        np.testing.assert_array_equal(got, expected)
    with pytest.raises(FileNotFoundError, match="one TensorFlow checkpoint"):
        zoo.load(NAME, weights=str(tmp_path), **OVERRIDES)


def test_the_paper_configuration_maps_completely():
    """The full model's variable list (names and shapes, generated from the
    reference's structure) covers pixelcnn_pp_cifar exactly, parameter for parameter."""
    shapes = variable_shapes(nr_resnet=5, nr_filters=160, nr_logistic_mix=10)
    model = zoo.load(NAME, weights=None)
    with_ema = {**shapes, **{k + "/ExponentialMovingAverage": v for k, v in shapes.items()}}
    reads = check_variables(model, with_ema)
    assert len(reads) == len(shapes) == len(model.weights)
    assert {key.rsplit("/", 1)[0] for key, _, _ in reads} == set(shapes)
    count = sum(int(np.prod(shape)) for shape in shapes.values())
    assert count == model.count_params() == zoo.info(NAME)["parameters"] == 53_659_080


def test_another_configuration_is_refused_naming_the_variables(checkpoint):
    prefix, _, _ = checkpoint
    model = zoo.load(NAME, weights=None, **{**OVERRIDES, "num_resnet": 2})
    before = [w.numpy() for w in model.weights]
    with pytest.raises(CheckpointMismatchError, match=r"missing: model/conv2d_\d+/V"):
        load_openai_checkpoint(model, prefix)
    wider = zoo.load(NAME, weights=None, **{**OVERRIDES, "num_filters": 8})
    with pytest.raises(CheckpointMismatchError, match=r"wrong shape: model/conv2d_0/V"):
        load_openai_checkpoint(wider, prefix)
    for weight, value in zip(model.weights, before, strict=True):
        np.testing.assert_array_equal(weight.numpy(), value)


def test_foreign_truncated_and_incomplete_checkpoints_are_refused(checkpoint, tmp_path):
    prefix, params, _ = checkpoint
    model = zoo.load(NAME, weights=None, **OVERRIDES)
    before = [w.numpy() for w in model.weights]

    foreign = tf.train.Checkpoint(step=tf.Variable(3), kernel=tf.Variable(tf.ones((3, 3))))
    foreign_prefix = foreign.write(str(tmp_path / "foreign" / "ckpt"))
    with pytest.raises(CheckpointMismatchError, match="no variable under 'model/'"):
        load_openai_checkpoint(model, foreign_prefix)

    shadow = list(params)[5] + "/ExponentialMovingAverage"
    incomplete = str(tmp_path / "incomplete" / "ckpt")
    write_checkpoint(incomplete, params, skip=[shadow])
    with pytest.raises(CheckpointMismatchError, match=f"1 missing: {shadow}.*use_ema=False"):
        load_openai_checkpoint(model, incomplete)
    raw = zoo.load(NAME, weights=None, **OVERRIDES)
    assert load_openai_checkpoint(raw, incomplete, use_ema=False) == len(raw.weights)

    truncated = tmp_path / "truncated"
    shutil.copytree(os.path.dirname(prefix), truncated)
    [data] = truncated.glob("*.data-*")
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    with pytest.raises(ValueError, match="corrupt or truncated|not a readable"):
        load_openai_checkpoint(model, str(truncated / "params_cifar.ckpt"))
    for weight, value in zip(model.weights, before, strict=True):
        np.testing.assert_array_equal(weight.numpy(), value)


def test_convert_writes_the_weights_file_only_when_it_succeeds(checkpoint, tmp_path, capsys):
    prefix, _, ema = checkpoint
    overrides = [
        "--override", "num_resnet=1", "--override", "num_filters=16",
        "--override", "num_logistic_mix=3", "--override", "image_shape=(8,8,3)",
    ]  # fmt: skip
    out = tmp_path / "pxpp.weights.h5"
    assert main(["convert", "openai-pixelcnn-pp", prefix, str(out), *overrides]) == 0
    assert "wrote" in capsys.readouterr().out
    x = images(2, seed=2)
    model = zoo.load(NAME, weights=str(out), **OVERRIDES)
    np.testing.assert_allclose(model.log_prob(x), reference_log_prob(ema, x), rtol=1e-5)

    assert main(["convert", "openai-pixelcnn-pp", prefix, str(out), *overrides]) == 2
    assert "already exists" in capsys.readouterr().err
    bad = tmp_path / "bad.weights.h5"
    wrong = [*overrides, "--override", "num_resnet=2"]
    assert main(["convert", "openai-pixelcnn-pp", prefix, str(bad), *wrong]) == 2
    assert "does not fit" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pxpp.weights.h5"]
    with pytest.raises(ValueError, match=".weights.h5"):
        convert_checkpoint(model, prefix, tmp_path / "x.h5")


def test_converted_model_samples_completes_and_exports(checkpoint, tmp_path):
    from keras_pixel.export import export

    prefix, _, _ = checkpoint
    model = zoo.load(NAME, weights=prefix, **OVERRIDES)
    cached = model.sample(2, seed=5, method="cached")
    np.testing.assert_array_equal(cached, model.sample(2, seed=5, method="naive"))
    completed = model.complete(images(2), num_known_rows=4, seed=5)
    np.testing.assert_array_equal(np.asarray(completed)[:, :4], images(2)[:, :4])
    [folder] = export(model, tmp_path, model_name="pxpp")
    served = tf.saved_model.load(folder).signatures["serving_default"]
    got = served(images=tf.constant(images(2)))["log_prob"].numpy()
    np.testing.assert_allclose(got, model.log_prob(images(2)), rtol=1e-5)
