"""Exported artifacts, each run in its own runtime in a subprocess, give the Keras
model's numbers: SavedModel (plain TensorFlow), LiteRT (ai-edge-litert) and ONNX
(onnxruntime), for a small model of every family, conditional ones included."""

import importlib.util
import json
import os
import pathlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf
from zoo_sizes import SMALL

from keras_pixel import zoo
from keras_pixel.cli import main
from keras_pixel.export import export, export_saved_model
from keras_pixel.models import PixelCNNPlusPlus

ROOT = pathlib.Path(__file__).resolve().parents[1]
BATCH = 3

FAMILIES = {
    "pixelcnn": ("pixelcnn_cifar", {}),
    "gated_conditional": ("gated_pixelcnn_mnist_conditional", {}),
    "row_lstm": ("row_lstm_mnist", {}),
    "diagonal_bilstm": ("diagonal_bilstm_cifar", {}),
    "pixelcnn_pp": ("pixelcnn_pp_cifar", {}),
}


#: Families whose SavedModel ``sample`` and ``complete`` are checked against Keras
#: (each costs two XLA compilations on each side; the signatures share one
#: sampler driver, and the per-family cached steps are checked against naive
#: sampling in test_cached_sampling.py): the softmax, class-conditional gated
#: and vector-conditional mixture paths.
SAMPLED = ("pixelcnn", "gated_conditional", "pixelcnn_pp_vector_conditional")


def _models():
    models = {
        family: zoo.load(name, weights=None, **{**SMALL[name], **extra})
        for family, (name, extra) in FAMILIES.items()
    }
    models["pixelcnn_pp_vector_conditional"] = PixelCNNPlusPlus(
        num_resnet=1,
        num_hierarchies=2,
        num_filters=8,
        num_logistic_mix=2,
        image_shape=(4, 4, 1),
        condition_dim=3,
        dropout=0.0,
    )
    return models


def _labels(model, batch=BATCH):
    if not model.conditional:
        return None
    if model.num_classes is not None:
        return np.arange(batch, dtype=np.int32) % model.num_classes
    return np.random.default_rng(1).normal(size=(batch, model.condition_dim)).astype(np.float32)


def _feeds(model, images, labels):
    feeds = {"images": images}
    if labels is not None:
        feeds["labels"] = labels
    return feeds


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Every model exported in all three formats, with real-looking inputs and the
    Keras model's own numbers for them."""
    out = tmp_path_factory.mktemp("exported")
    cases = {}
    rng = np.random.default_rng(0)
    for family, model in _models().items():
        images = rng.integers(0, 256, (BATCH, *model.image_shape)).astype(np.uint8)
        labels = _labels(model)
        paths = {}
        for fmt in ("saved_model", "litert", "onnx"):
            paths[fmt] = export(model, out / fmt, format=fmt, model_name=family)
        np.savez(out / f"{family}_inputs.npz", **_feeds(model, images, labels))
        cases[family] = dict(model=model, images=images, labels=labels, paths=paths)
    return out, cases


def _run(script, *args):
    """Runs ``script`` in a fresh Python; returns its stdout."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script), *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def _close(actual, expected, rtol=1e-4):
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=0)


SAVED_MODEL_SCRIPT = """
    import json, sys
    import numpy as np
    import tensorflow as tf

    out, cases, sampled = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
    results = {}
    for family, path in cases.items():
        serve = tf.saved_model.load(path).signatures
        feeds = {k: tf.constant(v) for k, v in np.load(f"{out}/{family}_inputs.npz").items()}
        labels = {"labels": feeds["labels"]} if "labels" in feeds else {}
        scores = serve["serving_default"](**feeds)
        results[f"{family}/log_prob"] = scores["log_prob"].numpy()
        results[f"{family}/bits_per_dim"] = scores["bits_per_dim"].numpy()
        if family not in sampled:
            continue
        sampling = dict(seed=tf.constant(7, tf.int64), temperature=tf.constant(0.9))
        first = serve["sample"](num_images=tf.constant(3), **sampling, **labels)["images"]
        again = serve["sample"](num_images=tf.constant(3), **sampling, **labels)["images"]
        completed = serve["complete"](
            images=feeds["images"], num_known_rows=tf.constant(2), **sampling, **labels
        )["images"]
        for key, value in dict(sample=first, again=again, complete=completed).items():
            results[f"{family}/{key}"] = value.numpy()
    assert "keras_pixel" not in sys.modules
    np.savez(f"{out}/saved_model_results.npz", **results)
"""


def test_saved_model_in_plain_tensorflow_matches_keras(exported):
    out, cases = exported
    paths = {family: case["paths"]["saved_model"][0] for family, case in cases.items()}
    _run(SAVED_MODEL_SCRIPT, out, json.dumps(paths), json.dumps(SAMPLED))
    results = np.load(out / "saved_model_results.npz")
    for family, case in cases.items():
        model, images, labels = case["model"], case["images"], case["labels"]
        expected = model.log_prob(images, labels=labels)
        _close(results[f"{family}/log_prob"], expected)
        _close(results[f"{family}/bits_per_dim"], -expected / (model.num_dims * np.log(2.0)))
        if family not in SAMPLED:
            continue
        sample = results[f"{family}/sample"]
        assert sample.dtype == np.uint8 and sample.shape == (BATCH, *model.image_shape)
        np.testing.assert_array_equal(sample, results[f"{family}/again"])
        np.testing.assert_array_equal(
            sample, model.sample(BATCH, temperature=0.9, seed=7, labels=labels), err_msg=family
        )
        completed = results[f"{family}/complete"]
        np.testing.assert_array_equal(completed[:, :2], images[:, :2])
        np.testing.assert_array_equal(
            completed, model.complete(images, 2, temperature=0.9, seed=7, labels=labels)
        )


LITERT_SCRIPT = """
    import json, sys
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter

    out, cases = sys.argv[1], json.loads(sys.argv[2])
    results = {}
    for family, (log_likelihood, step, positions) in cases.items():
        feeds = dict(np.load(f"{out}/{family}_inputs.npz"))
        runner = Interpreter(log_likelihood).get_signature_runner()
        fixed = runner.get_input_details()["images"]["shape_signature"][0]
        groups = [slice(None)] if fixed == -1 else [slice(b, b + 1) for b in range(3)]
        results[f"{family}/log_prob"] = np.concatenate(
            [list(runner(**{k: v[g] for k, v in feeds.items()}).values())[0] for g in groups]
        )
        runner = Interpreter(step).get_signature_runner()
        feeds["canvas"] = feeds.pop("images")
        for t in positions:
            position = np.array(t, np.int32)
            parts = [
                list(runner(position=position, **{k: v[g] for k, v in feeds.items()}).values())[0]
                for g in groups
            ]
            results[f"{family}/step{t}"] = np.concatenate(parts)
    assert "tensorflow" not in sys.modules
    np.savez(f"{out}/litert_results.npz", **results)
"""


def _positions(model):
    height, width, channels = model.image_shape
    total = height * width * channels
    return [0, total // 2 + 1, total - 1]


def test_litert_in_its_interpreter_matches_keras(exported):
    out, cases = exported
    jobs = {
        family: [*case["paths"]["litert"], _positions(case["model"])]
        for family, case in cases.items()
    }
    _run(LITERT_SCRIPT, out, json.dumps(jobs))
    results = np.load(out / "litert_results.npz")
    for family, case in cases.items():
        model, images, labels = case["model"], case["images"], case["labels"]
        _close(results[f"{family}/log_prob"], model.log_prob(images, labels=labels))
        per_subpixel = model.log_prob(images, reduce=False, labels=labels).reshape(BATCH, -1)
        for t in _positions(model):
            log_probs = results[f"{family}/step{t}"]
            assert log_probs.shape == (BATCH, model.num_values)
            np.testing.assert_allclose(np.exp(log_probs).sum(-1), 1.0, atol=1e-4)
            # The value the canvas holds at t: its log-prob is the model's own.
            seen = images.reshape(BATCH, -1)[:, t]
            _close(log_probs[np.arange(BATCH), seen], per_subpixel[:, t], rtol=1e-4)


ONNX_SCRIPT = """
    import json, sys
    import numpy as np
    import onnxruntime

    out, cases = sys.argv[1], json.loads(sys.argv[2])
    results = {}
    for family, path in cases.items():
        session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
        feeds = dict(np.load(f"{out}/{family}_inputs.npz"))
        assert {i.name for i in session.get_inputs()} == set(feeds), session.get_inputs()
        results[family] = session.run(None, feeds)[0]
    assert "tensorflow" not in sys.modules
    np.savez(f"{out}/onnx_results.npz", **results)
"""


def test_onnx_in_onnxruntime_matches_keras(exported):
    out, cases = exported
    paths = {family: case["paths"]["onnx"][0] for family, case in cases.items()}
    _run(ONNX_SCRIPT, out, json.dumps(paths))
    results = np.load(out / "onnx_results.npz")
    for family, case in cases.items():
        model = case["model"]
        _close(results[family], model.log_prob(case["images"], labels=case["labels"]))


def test_litert_step_graph_drives_a_sampling_loop(exported):
    """The on-device loop of export/litert_sample.py, fed the noise keras_pixel
    draws from a seed, reproduces model.sample for that seed."""
    _, cases = exported
    spec = importlib.util.spec_from_file_location("litert_sample", ROOT / "export/litert_sample.py")
    litert_sample = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(litert_sample)
    from keras_pixel import sampling

    for family in ("pixelcnn", "gated_conditional"):
        model, labels = cases[family]["model"], cases[family]["labels"]
        noise = sampling.draw_noise(model, sampling.make_seed(11), BATCH).numpy()[..., 0]
        images = litert_sample.sample(cases[family]["paths"]["litert"][1], noise, labels=labels)
        np.testing.assert_array_equal(images, model.sample(BATCH, seed=11, labels=labels))


def test_saved_model_cli_lists_the_signatures(exported):
    _, cases = exported
    path = cases["gated_conditional"]["paths"]["saved_model"][0]
    cli = pathlib.Path(sys.executable).parent / "saved_model_cli"
    shown = subprocess.run(
        [str(cli), "show", "--dir", path, "--all"], capture_output=True, text=True, check=True
    ).stdout
    for name in ("serving_default", "sample", "complete"):
        assert f"signature_def['{name}']" in shown
    for tensor in ("images", "labels", "num_images", "seed", "temperature", "num_known_rows"):
        assert f"['{tensor}'] tensor_info" in shown
    assert "dtype: DT_UINT8" in shown and "(-1, 7, 7, 1)" in shown


def test_signatures_reject_bad_inputs_with_clear_errors(exported):
    _, cases = exported
    case = cases["gated_conditional"]
    serve = tf.saved_model.load(case["paths"]["saved_model"][0]).signatures
    images, labels = tf.constant(case["images"]), tf.constant(case["labels"])
    rejected = (TypeError, ValueError, tf.errors.InvalidArgumentError)
    with pytest.raises(rejected, match="uint8"):
        serve["serving_default"](images=tf.cast(images, tf.float32), labels=labels)
    with pytest.raises(rejected, match="shape"):
        serve["serving_default"](images=images[:, :6], labels=labels)
    with pytest.raises(tf.errors.InvalidArgumentError, match="labels must be class ids < 10"):
        serve["serving_default"](images=images, labels=labels + 10)
    sampling = dict(seed=tf.constant(1, tf.int64), temperature=tf.constant(1.0))
    with pytest.raises(tf.errors.InvalidArgumentError, match="num_known_rows must be <= 7"):
        serve["complete"](images=images, num_known_rows=tf.constant(8), labels=labels, **sampling)
    with pytest.raises(tf.errors.InvalidArgumentError, match="one entry per image"):
        serve["sample"](num_images=tf.constant(5), labels=labels, **sampling)
    with pytest.raises(tf.errors.InvalidArgumentError, match="temperature must be >= 0.0001"):
        serve["sample"](
            num_images=tf.constant(3), labels=labels, seed=sampling["seed"], temperature=0.0
        )


def test_export_refuses_to_overwrite_a_version_unless_told(tmp_path):
    model = zoo.load("pixelcnn_mnist", weights=None, **SMALL["pixelcnn_mnist"])
    first = export_saved_model(model, tmp_path, "m", version=3)
    assert first == str(tmp_path / "m" / "3")
    stamp = os.path.getmtime(os.path.join(first, "saved_model.pb"))
    with pytest.raises(FileExistsError, match="already exists"):
        export_saved_model(model, tmp_path, "m", version=3)
    assert os.path.getmtime(os.path.join(first, "saved_model.pb")) == stamp
    export_saved_model(model, tmp_path, "m", version=3, overwrite=True)
    assert sorted(os.listdir(tmp_path / "m")) == ["3"]
    with pytest.raises(FileExistsError):
        export(model, tmp_path, format="saved_model", model_name="m", version=3)


def test_each_signature_is_traced_once(tmp_path):
    """Tracing a sampler is most of an export: ExportArchive and tf.saved_model.save
    must not each trace it. The written signatures still give the model's numbers."""
    from keras_pixel.export.graphs import serving_functions
    from keras_pixel.export.saved_model import write_signatures

    model = zoo.load("pixelcnn_mnist", weights=None, **SMALL["pixelcnn_mnist"])
    traces = {}

    def counted(name, fn):
        def traced(*args):
            traces[name] = traces.get(name, 0) + 1
            return fn(*args)

        return traced

    functions = serving_functions(model)
    write_signatures(
        model, {name: (counted(name, fn), spec) for name, (fn, spec) in functions.items()}, tmp_path
    )
    assert traces == {name: 1 for name in functions}
    loaded = tf.saved_model.load(str(tmp_path))
    images = np.random.default_rng(0).integers(0, 256, (2, *model.image_shape)).astype(np.uint8)
    _close(loaded.signatures["serving_default"](images=images)["log_prob"], model.log_prob(images))
    sample = loaded.signatures["sample"](
        num_images=tf.constant(2), seed=tf.constant(3, tf.int64), temperature=tf.constant(1.0)
    )["images"]
    np.testing.assert_array_equal(sample, model.sample(2, seed=3))


def test_a_failed_export_leaves_no_version_folder(tmp_path, monkeypatch):
    model = zoo.load("pixelcnn_mnist", weights=None, **SMALL["pixelcnn_mnist"])
    from keras.src.export.saved_model_export_archive import SavedModelExportArchive

    real_write_out = SavedModelExportArchive.write_out

    def write_then_fail(self, path, *args, **kwargs):
        real_write_out(self, path, *args, **kwargs)
        raise OSError("disk full")

    monkeypatch.setattr(SavedModelExportArchive, "write_out", write_then_fail)
    with pytest.raises(OSError, match="disk full"):
        export_saved_model(model, tmp_path, "m", version=1)
    assert os.listdir(tmp_path / "m") == []
    with pytest.raises(OSError, match="disk full"):
        export(model, tmp_path / "lite", format="litert", model_name="m")
    assert os.listdir(tmp_path / "lite") == []


def test_export_checks_its_arguments(tmp_path):
    model = zoo.load("pixelcnn_mnist", weights=None, **SMALL["pixelcnn_mnist"])
    with pytest.raises(ValueError, match="version must be a positive int"):
        export_saved_model(model, tmp_path, "m", version=0)
    with pytest.raises(ValueError, match="model_name"):
        export_saved_model(model, tmp_path, "../m")
    with pytest.raises(ValueError, match="Unknown export format"):
        export(model, tmp_path, format="torchscript")
    assert not any(tmp_path.iterdir())


def test_cli_export(tmp_path, capsys):
    args = ["export", "pixelcnn_digits", str(tmp_path), "--weights", "none"]
    args += ["--override", "num_layers=1"]
    assert main([*args, "--version", "2"]) == 0
    assert (tmp_path / "pixelcnn_digits" / "2" / "saved_model.pb").exists()
    assert main([*args, "--version", "2"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main([*args, "--format", "onnx"]) == 0
    assert (tmp_path / "pixelcnn_digits.onnx").exists()


def test_onnx_export_without_its_extra_names_the_extra(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tf2onnx", None)  # as if not installed
    args = ["export", "pixelcnn_digits", str(tmp_path), "--weights", "none", "--format", "onnx"]
    assert main([*args, "--override", "num_layers=1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ONNX export needs tf2onnx") and "keras-pixel[export]" in err
    assert not list(tmp_path.iterdir())


def test_model_export_the_keras_way_gives_the_packages_artifacts(tmp_path):
    """``model.export(path, format=...)`` in each of Keras's formats writes what
    ``keras_pixel.export`` writes, and each gives the model's log-likelihoods."""
    import onnxruntime
    from ai_edge_litert.interpreter import Interpreter

    name = "gated_pixelcnn_mnist_conditional"
    model = zoo.load(name, weights=None, **SMALL[name])
    images = np.random.default_rng(3).integers(0, 256, (2, *model.image_shape), np.uint8)
    labels = np.array([4, 1], np.int32)
    expected = model.log_prob(images, labels=labels)

    [folder] = model.export(str(tmp_path / "sm"), format="tf_saved_model", jit_compile=False)
    signatures = tf.saved_model.load(folder).signatures
    assert {"serving_default", "sample", "complete"} <= set(signatures)
    got = signatures["serving_default"](images=tf.constant(images), labels=tf.constant(labels))
    _close(got["log_prob"].numpy(), expected)

    paths = model.export(str(tmp_path / "m.tflite"), format="litert")
    assert [os.path.basename(p) for p in paths] == ["m.tflite", "m_next_subpixel.tflite"]
    runner = Interpreter(paths[0]).get_signature_runner()
    _close(list(runner(images=images, labels=labels).values())[0], expected)

    [onnx_path] = model.export(str(tmp_path / "m.onnx"), format="onnx")
    session = onnxruntime.InferenceSession(onnx_path)
    feeds = dict(zip([i.name for i in session.get_inputs()], [images, labels], strict=True))
    _close(session.run(None, feeds)[0], expected)

    with pytest.raises(ValueError, match="input_signature"):
        model.export(str(tmp_path / "x"), input_signature=[tf.TensorSpec((None, 28, 28, 1))])
    with pytest.raises(ValueError, match="Unknown export format"):
        model.export(str(tmp_path / "x"), format="torchscript")
    with pytest.raises(FileExistsError):
        model.export(str(tmp_path / "m.onnx"), format="onnx", overwrite=False)
