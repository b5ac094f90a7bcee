import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

from keras_pixel import data
from keras_pixel.cli import main
from keras_pixel.losses import nats_to_bits_per_dim

TINY = ["--override", "num_layers=1", "--override", "filters=8"]


def test_help_is_fast_and_explains_commands():
    out = subprocess.run(
        [sys.executable, "-m", "keras_pixel.cli", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for word in ("train", "evaluate", "sample", "complete", "list", "examples"):
        assert word in out


def test_list(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[:5] == ["NAME", "FAMILY", "SHAPE", "WEIGHTS", "DESCRIPTION"]
    assert "pixelcnn_mnist" in out and "pixelcnn_cifar" in out


def test_the_command_hides_tensorflows_start_up_lines_unless_verbose():
    script = Path(sys.executable).with_name("keras-pixel")
    if not script.exists():
        pytest.skip("the keras-pixel console script is not installed beside this Python")
    quiet = subprocess.run([str(script), "list"], capture_output=True, text=True, check=True)
    assert quiet.stderr == "" and quiet.stdout.startswith("NAME")
    loud = subprocess.run(
        [str(script), "--verbose", "list"], capture_output=True, text=True, check=True
    )
    assert loud.stdout == quiet.stdout


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    code = main(
        [
            "train",
            "pixelcnn_digits",
            "--dataset",
            "digits",
            "--epochs",
            "1",
            "--output",
            str(out),
            "--num-samples",
            "4",
            *TINY,
        ]
    )
    assert code == 0
    return out


def test_train_writes_model_samples_and_metrics(trained):
    metrics = json.loads((trained / "metrics.json").read_text())
    assert 0 < metrics["test_bits_per_dim"] < 8
    assert (trained / "model.keras").exists()
    grid = np.asarray(Image.open(trained / "samples.png"))
    assert grid.ndim == 2 and grid.shape[0] >= 128


@pytest.mark.parametrize("seed", [None, 0])
def test_train_records_whether_xla_compiled_its_steps(seed, tmp_path, monkeypatch):
    """--seed makes TensorFlow's ops deterministic, which Keras does not compile
    with XLA: --jit-compile with --seed says so, and the summary and metrics.json
    give the setting the steps ran with (Keras would drop XLA quietly)."""
    import tensorflow as tf

    # The determinism itself is process-wide and not under test here.
    monkeypatch.setattr(tf.config.experimental, "enable_op_determinism", lambda: None)
    args = ["train", "pixelcnn_digits", "--dataset", "digits", "--epochs", "1",
            "--steps-per-epoch", "2", "--jit-compile", "--output", str(tmp_path),
            "--num-samples", "1", *TINY]  # fmt: skip
    if seed is not None:
        args += ["--seed", str(seed)]
    if seed is None:
        assert main(args) == 0
    else:
        with pytest.warns(UserWarning, match="--jit-compile is off with --seed"):
            assert main(args) == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["jit_compile"] is (seed is None)


def test_a_fine_tune_records_the_weights_it_started_from(trained, tmp_path):
    from keras_pixel import zoo

    start = str(trained / "model.keras")
    code = main(
        ["train", "pixelcnn_digits", "--dataset", "digits", "--epochs", "1",
         "--steps-per-epoch", "2", "--weights", start, "--output", str(tmp_path),
         "--num-samples", "1", *TINY]
    )  # fmt: skip
    assert code == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["initial_weights"] == start
    assert metrics["initial_weights_sha256"] == zoo.sha256_of(start)
    assert metrics["overrides"] == {"num_layers": 1, "filters": 8}


def test_a_mixed_precision_run_reports_the_float32_figure_users_will_measure(tmp_path, monkeypatch):
    """A run under mixed_bfloat16 is validated in bfloat16; metrics.json's
    test_bits_per_dim is the float32 figure (what zoo.load's float32 model
    measures), and the training policy's figure is kept beside it. On a CPU
    without bfloat16 instructions the run warns that float32 is faster."""
    from keras_pixel import cpu, zoo

    monkeypatch.setattr(cpu, "cpu_flags", lambda: frozenset({"avx", "avx2", "fma"}))
    try:
        with pytest.warns(UserWarning, match="no bfloat16 instructions"):
            code = main(
                ["train", "pixelcnn_digits", "--dataset", "digits", "--epochs", "1",
                 "--dtype-policy", "mixed_bfloat16", "--output", str(tmp_path),
                 "--num-samples", "2", *TINY]
            )  # fmt: skip
    finally:
        keras.config.set_dtype_policy("float32")
    assert code == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    saved = keras.saving.load_model(tmp_path / "model.keras", compile=False)
    assert saved.compute_dtype == "bfloat16"
    test, _ = data.load("digits", "test")
    assert metrics["test_bits_per_dim_in_compute_dtype"] == pytest.approx(
        saved.bits_per_dim(test), rel=1e-6
    )
    float32 = zoo.load("pixelcnn_digits", weights=None, num_layers=1, filters=8)
    float32.set_weights(saved.get_weights())
    assert float32.compute_dtype == "float32"
    assert metrics["test_bits_per_dim"] == pytest.approx(float32.bits_per_dim(test), rel=1e-6)
    assert metrics["test_bits_per_dim"] != metrics["test_bits_per_dim_in_compute_dtype"]


@pytest.mark.parametrize(
    "flags, policy, warned",
    [({"avx2"}, "mixed_bfloat16", True), ({"avx2", "avx512f", "avx512_bf16"}, "mixed_bfloat16",
      False), ({"avx2", "amx_bf16", "amx_tile"}, "mixed_bfloat16", False),
     ({"avx2"}, "float32", False), ({"avx2"}, "mixed_float16", False)],
)  # fmt: skip
def test_bfloat16_on_a_cpu_that_emulates_it_is_warned_of(monkeypatch, flags, policy, warned):
    import warnings

    from keras_pixel import cli, cpu

    monkeypatch.setattr(cpu, "cpu_flags", lambda: frozenset(flags))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cli._warn_if_bfloat16_is_emulated(policy)
        cli._warn_if_bfloat16_is_emulated(policy, tpu="local")
    messages = [str(w.message) for w in caught]
    assert len(messages) == (1 if warned else 0)
    assert all("this CPU has no bfloat16 instructions" in m for m in messages)


def test_evaluate(trained, capsys):
    assert (
        main(
            [
                "evaluate",
                "pixelcnn_digits",
                "--weights",
                str(trained / "model.keras"),
                "--max-images",
                "50",
                *TINY,
            ]
        )
        == 0
    )
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["images"] == 50 and 0 < result["bits_per_dim"] < 8


def test_evaluate_is_one_pass_in_batches_with_a_progress_bar(trained, capsys):
    weights = str(trained / "model.keras")
    args = ["evaluate", "pixelcnn_digits", "--weights", weights, "--max-images", "50"]
    assert main([*args, "--batch-size", "16", *TINY]) == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out.strip().splitlines()[-1])
    assert "evaluating" in captured.err and "50/50" in captured.err
    model = keras.saving.load_model(weights)
    images = data.load("digits", "test")[0][:50]
    nats = -model.log_prob(images).astype("float64").mean()
    assert abs(result["bits_per_dim"] - nats_to_bits_per_dim(nats, model.num_dims)) < 1e-6


def test_evaluate_takes_the_dataset_of_the_zoo_entry(tmp_path):
    """In a subprocess, as a user runs it: ``pixelcnn_mnist`` evaluates on MNIST
    without ``--dataset`` (here the ``mnist.npz`` of Keras's dataset cache), and a
    bad dataset is one ``error:`` line with exit code 2."""
    (tmp_path / "datasets").mkdir()
    digits = np.random.default_rng(0).integers(0, 256, (3, 28, 28), np.uint8)
    np.savez(tmp_path / "datasets" / "mnist.npz", x_test=digits, y_test=np.arange(3))
    env = {**os.environ, "KERAS_HOME": str(tmp_path)}
    env.pop("KERAS_PIXEL_MNIST_DIR", None)
    command = [sys.executable, "-m", "keras_pixel.cli", "evaluate", "pixelcnn_mnist"]
    command += ["--weights", "none", "--override", "num_layers=1"]
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["dataset"] == "mnist" and result["images"] == 3
    bad = subprocess.run([*command, "--dataset", "nosuch"], capture_output=True, text=True, env=env)
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.strip().splitlines()[-1].startswith("error: Unknown dataset 'nosuch'")


def test_sample_and_complete(trained, tmp_path):
    weights = str(trained / "model.keras")
    assert (
        main(
            [
                "sample",
                "pixelcnn_digits",
                "--weights",
                weights,
                "--num",
                "3",
                "--output",
                str(tmp_path / "s.png"),
                *TINY,
            ]
        )
        == 0
    )
    assert Image.open(tmp_path / "s.png").format == "PNG"
    assert (
        main(
            [
                "complete",
                "pixelcnn_digits",
                "--weights",
                weights,
                "--num",
                "2",
                "--known-rows",
                "4",
                "--output",
                str(tmp_path / "c.png"),
                *TINY,
            ]
        )
        == 0
    )
    assert Image.open(tmp_path / "c.png").size[1] > Image.open(tmp_path / "c.png").size[0]


def test_errors_are_reported_not_raised(capsys):
    assert main(["evaluate", "no_such_model"]) == 2
    assert "Unknown zoo model" in capsys.readouterr().err
    assert main(["evaluate", "pixelcnn_mnist", "--dataset", "digits"]) == 2
    err = capsys.readouterr().err
    assert "(8, 8, 1)" in err and "(28, 28, 1)" in err
    assert main(["train", "pixelcnn_digits", "--override", "oops"]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err


def test_conditional_model_from_the_command_line(tmp_path, capsys):
    name = "gated_pixelcnn_digits_conditional"
    tiny = ["--override", "num_layers=1", "--override", "filters=8"]
    assert (
        main(
            [
                "train",
                name,
                "--epochs",
                "1",
                "--output",
                str(tmp_path),
                "--num-samples",
                "10",
                *tiny,
            ]
        )
        == 0
    )
    weights = str(tmp_path / "model.keras")
    assert main(["evaluate", name, "--weights", weights, "--max-images", "20", *tiny]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert 0 < result["bits_per_dim"] < 8
    assert (
        main(
            [
                "sample",
                name,
                "--weights",
                weights,
                "--num",
                "4",
                "--labels",
                "3,7",
                "--output",
                str(tmp_path / "s.png"),
                *tiny,
            ]
        )
        == 0
    )
    grid = np.asarray(Image.open(tmp_path / "s.png"))  # rows "3" and "7", 2 digits each
    assert grid.shape[0] == 2 * 65 + 1 and grid.shape[1] > 2 * 65 + 1
    margin = grid[:, : grid.shape[1] - (2 * 65 + 1)]
    assert (margin[:65] < 128).any() and (margin[66:] < 128).any(), "each row is labelled"
    assert (
        main(
            [
                "complete",
                name,
                "--weights",
                weights,
                "--num",
                "2",
                "--known-rows",
                "3",
                "--output",
                str(tmp_path / "c.png"),
                *tiny,
            ]
        )
        == 0
    )
    assert Image.open(tmp_path / "s.png").format == "PNG"


def test_sample_methods_write_the_same_grid(trained, tmp_path):
    weights = str(trained / "model.keras")
    grids = {}
    for method in ("cached", "naive"):
        out = tmp_path / f"{method}.png"
        args = ["sample", "pixelcnn_digits", "--weights", weights, "--num", "2"]
        args += ["--seed", "3", "--method", method, "--output", str(out), *TINY]
        assert main(args) == 0
        grids[method] = np.asarray(Image.open(out))
    np.testing.assert_array_equal(grids["cached"], grids["naive"])


def test_commands_refuse_an_entry_without_weights_unless_told(capsys, tmp_path):
    for command in (
        ["sample", "pixelcnn_digits", "--num", "1", "--output", str(tmp_path / "s.png")],
        ["evaluate", "pixelcnn_digits", "--max-images", "4"],
        ["complete", "pixelcnn_digits", "--known-rows", "4", "--num", "1"],
        ["export", "pixelcnn_digits", str(tmp_path / "export")],
    ):
        assert main([*command, *TINY]) == 2, command
        err = capsys.readouterr().err
        assert "ships no pretrained weights" in err and "--weights none" in err, command
    assert not (tmp_path / "s.png").exists() and not (tmp_path / "export").exists()
    out = tmp_path / "fresh.png"
    assert main(["sample", "pixelcnn_digits", "--num", "1", "--weights", "none", "--output",
                 str(out), "--method", "naive", *TINY]) == 0  # fmt: skip
    assert out.exists()


def test_evaluate_uses_the_shipped_weights_by_default(capsys, tmp_path):
    from keras_pixel import zoo

    images = np.random.default_rng(0).integers(0, 256, (3, 28, 28, 1), np.uint8)
    np.savez(tmp_path / "d.npz", test_images=images)
    spec = f"npz:{tmp_path / 'd.npz'}"
    assert main(["evaluate", "pixelcnn_mnist", "--dataset", spec]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    expected = zoo.load("pixelcnn_mnist").bits_per_dim(images)
    np.testing.assert_allclose(result["bits_per_dim"], expected, rtol=1e-6)
    assert main(["evaluate", "pixelcnn_mnist", "--dataset", spec, "--weights", "none"]) == 0
    fresh = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert abs(fresh["bits_per_dim"] - expected) > 0.1


@pytest.mark.parametrize(
    "args",
    [
        ["train", "--epochs", "0"],
        ["train", "--epochs", "-1"],
        ["train", "--batch-size", "0"],
        ["train", "--learning-rate", "0"],
        ["train", "--steps-per-epoch", "0"],
        ["train", "--max-images", "0"],
        ["evaluate", "--max-images", "-1"],
        ["sample", "--num", "0"],
        ["sample", "--temperature", "-1"],
        ["sample", "--temperature", "nan"],
        ["complete", "--known-rows", "-1"],
    ],
)
def test_zero_and_negative_numbers_are_refused_by_name(args, capsys):
    command, *rest = args
    with pytest.raises(SystemExit) as info:
        main([command, "pixelcnn_digits", *rest])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert rest[0] in err and "is not" in err, err


def test_temperatures_below_the_minimum_are_refused():
    from keras_pixel import zoo
    from keras_pixel.validation import MIN_TEMPERATURE

    model = zoo.load("pixelcnn_digits", weights=None, num_layers=1, filters=4)
    with pytest.raises(ValueError, match="at least"):
        model.sample(1, temperature=MIN_TEMPERATURE / 10, seed=0)
    images = model.sample(2, temperature=MIN_TEMPERATURE, seed=0, method="naive")
    assert images.shape == (2, 8, 8, 1) and images.max() > 0


def _error_line(capsys, argv):
    assert main(argv) == 2, argv
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def test_known_failures_are_one_error_line_and_exit_code_two(capsys, tmp_path):
    fresh = ["--weights", "none", *TINY]
    empty = tmp_path / "empty.npz"
    np.savez(empty, test_images=np.zeros((0, 8, 8, 1), np.uint8))
    assert "holds no images" in _error_line(
        capsys, ["evaluate", "pixelcnn_digits", "--dataset", f"npz:{empty}", *fresh]
    )
    folder = tmp_path / "folder"
    folder.mkdir()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(folder / "good.png")
    (folder / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    assert "bad.png is not a readable image" in _error_line(
        capsys, ["evaluate", "pixelcnn_digits", "--dataset", f"folder:{folder}", *fresh]
    )
    idx = tmp_path / "idx"
    idx.mkdir()
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        (idx / name).write_bytes(b"\x1f\x8b\x08\x00truncated")
    assert "not a readable gzip file" in _error_line(
        capsys, ["evaluate", "pixelcnn_mnist", "--dataset", f"idx:{idx}", "--weights", "none"]
    )
    url = "http://127.0.0.1:9/x.weights.h5"  # the discard port: nothing listens
    assert "Could not download" in _error_line(
        capsys, ["sample", "pixelcnn_digits", "--weights", url, "--weights-sha256", "0" * 64, *TINY]
    )
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    assert "is a file" in _error_line(capsys, ["export", "pixelcnn_digits", str(blocker), *fresh])
    assert blocker.read_text() == "x"
    with pytest.raises(ValueError, match="holds no images"):
        main(["--debug", "evaluate", "pixelcnn_digits", "--dataset", f"npz:{empty}", *fresh])


def test_resuming_a_backup_of_another_model_is_refused(capsys, tmp_path):
    output = tmp_path / "run"
    (output / "backup").mkdir(parents=True)
    (output / "run.json").write_text(json.dumps({"model": "pixelcnn_mnist", "weights": [[1]]}))
    message = _error_line(
        capsys,
        ["train", "pixelcnn_digits", "--dataset", "digits", "--epochs", "1", "--output",
         str(output), *TINY],
    )  # fmt: skip
    assert "interrupted run of pixelcnn_mnist" in message and "--overwrite" in message


def test_sample_grids_are_readable_by_everyone_the_umask_allows(tmp_path):
    import os

    from keras_pixel.images import save_image_grid

    path = save_image_grid(np.zeros((1, 8, 8, 1), np.uint8), tmp_path / "g.png")
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~umask


def test_labels_for_an_unconditional_model_are_an_error(capsys, tmp_path):
    message = _error_line(
        capsys,
        ["sample", "pixelcnn_digits", "--labels", "1,2", "--weights", "none", "--output",
         str(tmp_path / "s.png"), *TINY],
    )  # fmt: skip
    assert "unconditional" in message and not (tmp_path / "s.png").exists()
