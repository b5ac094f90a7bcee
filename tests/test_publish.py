"""Exports publish whole or not at all and never lose the version they replace
(fault injection: a failing write, a failing rename, a full disk)."""

import errno
import os

import numpy as np
import pytest

import keras_pixel.export as export_module
from keras_pixel import zoo
from keras_pixel.export import publish_all
from keras_pixel.export import saved_model as saved_model_module


def _writer(text):
    def write(path):
        with open(path, "w") as f:
            f.write(text)

    return write


def _failing_writer(path):
    with open(path, "w") as f:
        f.write("half")
    raise OSError(errno.ENOSPC, "No space left on device")


def _leftovers(folder):
    return sorted(p for p in os.listdir(folder) if p.startswith("."))


def test_a_failed_write_in_a_set_publishes_none_of_it(tmp_path):
    a, b = tmp_path / "a.bin", tmp_path / "b.bin"
    with pytest.raises(OSError, match="No space"):
        publish_all({a: _writer("new a"), b: _failing_writer})
    assert not a.exists() and not b.exists() and _leftovers(tmp_path) == []
    publish_all({a: _writer("new a"), b: _writer("new b")})
    assert a.read_text() == "new a" and b.read_text() == "new b"


def test_a_failed_swap_puts_the_old_versions_back(tmp_path, monkeypatch):
    a, b = tmp_path / "a.bin", tmp_path / "b.bin"
    publish_all({a: _writer("old a"), b: _writer("old b")})
    real_rename = os.rename

    def rename(src, dst):
        if os.path.basename(src).startswith(".tmp-") and dst == str(b):
            raise OSError(errno.EIO, "rename failed")
        return real_rename(src, dst)

    monkeypatch.setattr(saved_model_module.os, "rename", rename)
    with pytest.raises(OSError, match="rename failed"):
        publish_all({a: _writer("new a"), b: _writer("new b")}, overwrite=True)
    assert a.read_text() == "old a" and b.read_text() == "old b"
    assert _leftovers(tmp_path) == []
    monkeypatch.setattr(saved_model_module.os, "rename", real_rename)
    publish_all({a: _writer("new a"), b: _writer("new b")}, overwrite=True)
    assert a.read_text() == "new a" and b.read_text() == "new b"
    assert _leftovers(tmp_path) == []


def test_a_litert_export_that_fails_midway_leaves_no_half_set(tmp_path, monkeypatch):
    model = zoo.load("pixelcnn_digits", weights=None, num_layers=1, filters=4)
    real_writer = export_module.litert_writer

    def writer(model, path, graph="log_likelihood", batch_size=None):
        if graph == "next_subpixel":
            return _failing_writer
        return real_writer(model, path, graph, batch_size)

    monkeypatch.setattr(export_module, "litert_writer", writer)
    with pytest.raises(OSError, match="No space"):
        export_module.export(model, tmp_path, format="litert", model_name="d")
    assert sorted(os.listdir(tmp_path)) == []
    monkeypatch.setattr(export_module, "litert_writer", real_writer)
    paths = export_module.export(model, tmp_path, format="litert", model_name="d")
    assert sorted(os.path.basename(p) for p in paths) == ["d.tflite", "d_next_subpixel.tflite"]


def test_an_export_target_under_a_file_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(NotADirectoryError, match="is a file"):
        publish_all({blocker / "m.onnx": _writer("x")})
    assert blocker.read_text() == "not a folder"


def test_a_failed_saved_model_overwrite_keeps_version_one(tmp_path, monkeypatch):
    model = zoo.load("pixelcnn_digits", weights=None, num_layers=1, filters=4)
    path = export_module.export_saved_model(model, tmp_path, "m", 1, jit_compile=False)
    before = sorted(os.listdir(path))
    real_rename = os.rename

    def rename(src, dst):
        if os.path.basename(src).startswith(".tmp-"):
            raise OSError(errno.EIO, "rename failed")
        return real_rename(src, dst)

    monkeypatch.setattr(saved_model_module.os, "rename", rename)
    with pytest.raises(OSError, match="rename failed"):
        export_module.export_saved_model(model, tmp_path, "m", 1, overwrite=True, jit_compile=False)
    assert sorted(os.listdir(path)) == before
    assert _leftovers(os.path.dirname(path)) == []
    import tensorflow as tf

    images = np.zeros((1, 8, 8, 1), np.uint8)
    served = tf.saved_model.load(path).signatures["serving_default"]
    np.testing.assert_allclose(
        served(images=tf.constant(images))["log_prob"].numpy(), model.log_prob(images), rtol=1e-5
    )


def test_saved_model_requests_are_capped_at_max_images(tmp_path):
    import tensorflow as tf

    model = zoo.load("pixelcnn_digits", weights=None, num_layers=1, filters=4)
    path = export_module.export_saved_model(
        model, tmp_path, "m", 1, jit_compile=False, max_images=3
    )
    signatures = tf.saved_model.load(path).signatures
    sampling = {"seed": tf.constant(0, tf.int64), "temperature": tf.constant(1.0)}
    for num in (4, 10**9):
        with pytest.raises(tf.errors.InvalidArgumentError, match="at most 3 images"):
            signatures["sample"](num_images=tf.constant(num), **sampling)
    images = np.zeros((4, 8, 8, 1), np.uint8)
    with pytest.raises(tf.errors.InvalidArgumentError, match="at most 3 images"):
        signatures["complete"](
            images=tf.constant(images), num_known_rows=tf.constant(2), **sampling
        )
    out = signatures["sample"](num_images=tf.constant(3), **sampling)["images"].numpy()
    np.testing.assert_array_equal(out, model.sample(3, seed=0))
    with pytest.raises(ValueError, match="max_images"):
        export_module.export_saved_model(model, tmp_path, "m", 2, max_images=0)
