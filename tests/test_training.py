"""Training at scale: distribution, mixed precision, XLA, resume, EMA, callbacks."""

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from zoo_sizes import SMALL

from keras_pixel import training, zoo
from keras_pixel.images import image_grid

TESTS = Path(__file__).resolve().parent
#: One small entry per family (PixelCNN, Gated PixelCNN conditional, Row LSTM,
#: Diagonal BiLSTM, PixelCNN++).
FAMILIES = [
    "pixelcnn_mnist",
    "gated_pixelcnn_mnist_conditional",
    "row_lstm_mnist",
    "diagonal_bilstm_mnist",
    "pixelcnn_pp_mnist",
]
TINY_DIGITS = ["--override", "num_layers=1", "--override", "filters=8"]


def _env():
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}


#: PixelCNN++ smaller still than in SMALL: these tests train it three ways.
TINY_PP = {"num_filters": 8, "num_logistic_mix": 2}


def _small(name, **extra):
    extra = {**(TINY_PP if name == "pixelcnn_pp_mnist" else {}), **extra}
    return zoo.load(name, weights=None, **{**SMALL[name], **extra})


def _batch(model, n=4, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, *model.image_shape), np.uint8)
    labels = rng.integers(0, 10, n) if model.conditional else None
    return images, labels


def test_a_mirrored_step_is_the_single_device_step_on_the_global_batch():
    out = subprocess.run(
        [sys.executable, str(TESTS / "distributed_step.py")],
        capture_output=True,
        text=True,
        timeout=600,
        env=_env(),
    )
    assert out.returncode == 0, out.stderr[-3000:]
    results = json.loads(out.stdout.strip().splitlines()[-1])
    assert sorted(results) == sorted(FAMILIES)
    for name, r in results.items():
        assert r["update"] > 1e-4, (name, r)
        assert r["diff"] <= 1e-4 * r["update"], (name, r)
        np.testing.assert_allclose(r["loss"][1], r["loss"][0], rtol=1e-5, err_msg=name)


@pytest.mark.parametrize("name", FAMILIES)
def test_an_empty_batch_gives_empty_outputs_in_a_graph(name):
    """A replica's share of a last, partial batch may be empty. TensorFlow's oneDNN
    convolution (on by default on Intel CPUs with AVX512_VNNI/AMX) gets the output
    shape of an empty batch wrong, which crashed the multi-worker test there."""
    model = _small(name)
    images, labels = _batch(model, n=2)
    condition = None if labels is None else keras.ops.one_hot(labels, 10)

    @tf.function(reduce_retracing=True)
    def outputs(x, condition):
        return model(x if condition is None else (x, condition))

    # Under a distribution strategy (where empty shares happen) the batch size of
    # a traced step is unknown: the guard must be in the graph.
    with tf.distribute.OneDeviceStrategy("/cpu:0").scope():
        full = outputs(tf.constant(images), condition)
        empty = outputs(tf.constant(images[:0]), None if condition is None else condition[:0])
    for got, want in zip(keras.tree.flatten(empty), keras.tree.flatten(full), strict=True):
        assert tuple(got.shape) == (0, *want.shape[1:])
    empty_labels = None if labels is None else labels[:0]
    assert model.log_prob(images[:0], labels=empty_labels).shape == (0,)


@pytest.mark.parametrize("name", ["pixelcnn_mnist", "gated_pixelcnn_mnist_conditional"])
def test_xla_gradients_with_an_unknown_batch_size(name):
    """``fit`` on a ``tf.data`` pipeline traces the step with an unknown batch size,
    so the empty-batch guard is in the compiled graph: XLA must take its gradient."""
    model = _small(name)
    images, labels = _batch(model)
    spec = tf.TensorSpec([None, *model.image_shape], tf.uint8)

    @tf.function(jit_compile=True, input_signature=[spec, tf.TensorSpec([None, 10])])
    def gradients(x, condition):
        with tf.GradientTape() as tape:
            inputs = x if not model.conditional else (x, condition)
            loss = -tf.reduce_mean(model.likelihood.log_prob(model(inputs, training=True), x))
        return tape.gradient(loss, model.trainable_variables)

    condition = tf.one_hot(np.zeros(len(images), int) if labels is None else labels, 10)
    with tf.distribute.OneDeviceStrategy("/cpu:0").scope():
        grads = gradients(tf.constant(images), condition)
    assert all(np.all(np.isfinite(g)) for g in grads)
    assert any(np.abs(g).max() > 0 for g in grads)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_multiworker_processes_train_together_on_loopback(tmp_path):
    ports = [_free_port(), _free_port()]
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    command = [
        sys.executable, "-m", "keras_pixel.cli", "train", "pixelcnn_digits", "--dataset",
        "digits", "--strategy", "multiworker", "--epochs", "2", "--steps-per-epoch", "3",
        "--batch-size", "8", "--sample-every", "0", "--num-samples", "2",
        "--output", str(tmp_path / "run"), *TINY_DIGITS,
    ]  # fmt: skip
    workers = [
        subprocess.Popen(
            command,
            env={**_env(), "TF_CONFIG": json.dumps({"cluster": cluster, "task": task})},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for task in ({"type": "worker", "index": 0}, {"type": "worker", "index": 1})
    ]
    try:
        outputs = [w.communicate(timeout=400)[0] for w in workers]
    finally:
        for w in workers:
            w.kill()
    for w, out in zip(workers, outputs, strict=True):
        assert w.returncode == 0, out[-3000:]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["replicas"] == 2 and metrics["strategy"] == "multiworker"
    assert len(metrics["history"]["loss"]) == 2
    assert np.isfinite(metrics["test_bits_per_dim"])
    assert "over 2 replica(s)" in outputs[1]
    assert not (tmp_path / "run" / "worker_1" / "model.keras").exists()


def test_unknown_strategy_and_missing_cluster_are_clear_errors(monkeypatch):
    with pytest.raises(ValueError, match="Unknown strategy"):
        training.get_strategy("horovod")
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="TF_CONFIG"):
        training.get_strategy("multiworker")
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(ValueError, match="TF_CONFIG"):
        training.get_strategy("multiworker")


def test_tpu_strategy_without_a_tpu_says_so():
    with pytest.raises(ValueError, match="no TPU"):
        training.get_strategy("tpu")


def test_use_logical_cpus_rejects_bad_counts_and_late_calls():
    with pytest.raises(ValueError, match="positive int"):
        training.use_logical_cpus(0)
    keras.ops.zeros(1)  # TensorFlow's devices are initialized by now
    with pytest.raises(ValueError, match="before TensorFlow initializes"):
        training.use_logical_cpus(2)


def test_is_chief_follows_tf_config(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert training.is_chief()
    cluster = {"worker": ["a:1", "b:2"]}
    for index, chief in ((0, True), (1, False)):
        task = {"type": "worker", "index": index}
        monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": task}))
        assert training.is_chief() is chief
        assert training.task() == ("worker", index)
    cluster = {"chief": ["c:0"], "worker": ["a:1"]}
    task = {"type": "worker", "index": 0}
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": task}))
    assert not training.is_chief()


@pytest.fixture
def policy():
    """Sets a global dtype policy for one test and restores float32."""
    yield keras.config.set_dtype_policy
    keras.config.set_dtype_policy("float32")


@pytest.mark.parametrize("dtype_policy", ["mixed_float16", "mixed_bfloat16"])
@pytest.mark.parametrize("name", FAMILIES)
def test_mixed_precision_training_stays_finite_with_a_float32_likelihood(
    name, dtype_policy, policy
):
    policy(dtype_policy)
    model = _small(name)
    assert model.compute_dtype == dtype_policy.split("_")[1]
    # Eager: the same arithmetic without minutes of tracing for two steps.
    model.compile(optimizer=training.make_optimizer(1e-3), run_eagerly=True)
    images, labels = _batch(model)
    history = model.fit(images, labels, batch_size=2, epochs=1, verbose=0).history
    assert np.all(np.isfinite(history["loss"])) and np.all(np.isfinite(history["bits_per_dim"]))
    assert all(np.all(np.isfinite(w)) for w in model.get_weights())
    inputs = images if labels is None else (images, keras.ops.one_hot(labels, 10))
    per_subpixel = model.likelihood.log_prob(model(inputs), images)
    assert per_subpixel.dtype == "float32" and np.all(np.isfinite(per_subpixel))


@pytest.mark.parametrize("dtype_policy", ["mixed_float16", "mixed_bfloat16"])
@pytest.mark.parametrize("name", FAMILIES)
def test_mixed_precision_models_sample_with_the_cached_sampler(name, dtype_policy, policy):
    """The cached steps compute in the layers' compute dtype, as their calls do
    (they failed with a float16/float32 TypeError in four families)."""
    policy(dtype_policy)
    model = _small(name)
    labels = np.array([3, 7]) if model.conditional else None
    images = model.sample(2, seed=1, labels=labels, method="cached")
    assert images.dtype == model.image_dtype and images.shape == (2, *model.image_shape)
    assert images.max() < model.num_values
    completed = model.complete(images, 2, seed=2, labels=labels, method="cached")
    np.testing.assert_array_equal(completed[:, :2], images[:, :2])


@pytest.mark.parametrize("name", FAMILIES)
def test_xla_trains_and_evaluates_every_family_like_eager_execution(name):
    model = _small(name, **({"dropout": 0.0} if name == "pixelcnn_pp_mnist" else {}))
    images, labels = _batch(model)
    weights = model.get_weights()
    model.compile(optimizer=keras.optimizers.SGD(0.01), run_eagerly=True)
    eager_eval = model.evaluate(images, labels, batch_size=4, verbose=0, return_dict=True)
    eager_fit = model.fit(images, labels, batch_size=4, verbose=0).history["loss"][0]
    eager_weights = model.get_weights()
    model.set_weights(weights)
    model.compile(optimizer=keras.optimizers.SGD(0.01), jit_compile=True)
    xla_eval = model.evaluate(images, labels, batch_size=4, verbose=0, return_dict=True)
    xla_fit = model.fit(images, labels, batch_size=4, verbose=0).history["loss"][0]
    np.testing.assert_allclose(xla_eval["loss"], eager_eval["loss"], rtol=1e-4)
    np.testing.assert_allclose(xla_eval["bits_per_dim"], eager_eval["bits_per_dim"], rtol=1e-4)
    np.testing.assert_allclose(xla_fit, eager_fit, rtol=1e-4)
    for a, b in zip(model.get_weights(), eager_weights, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)


class _RawWeights(keras.callbacks.Callback):
    """Records the trained (not averaged) weights after every step."""

    def __init__(self):
        super().__init__()
        self.steps = []

    def on_train_batch_end(self, batch, logs=None):
        self.steps.append([w.copy() for w in self.model.get_weights()])


def test_the_moving_average_forgets_the_initial_weights(digits):
    """With a slow decay and a short run, Keras's constant-decay average stays
    near the random initial weights (0.9995**60 = 97% of them); the warmed-up
    average is near the trained ones."""
    model = zoo.load("pixelcnn_digits", weights=None, num_layers=1, filters=8)
    initial = model.get_weights()
    optimizer = training.make_optimizer(1e-2, ema=0.9995)
    assert isinstance(optimizer, training.PolyakAdam)
    model.compile(optimizer=optimizer)
    raw = _RawWeights()
    model.fit(digits[0][:240], batch_size=4, epochs=1, shuffle=False, verbose=0, callbacks=[raw])
    trained, average = raw.steps[-1], model.get_weights()  # fit leaves the average in

    def dist(xs, ys):
        return sum(float(np.square(x - y).sum()) for x, y in zip(xs, ys, strict=True))

    assert dist(average, trained) < 0.05 * dist(average, initial)


def test_ema_weights_are_the_ones_evaluate_and_sample_use(tmp_path, digits):
    decay = 0.8
    model = zoo.load("pixelcnn_digits", weights=None, num_layers=1, filters=8)
    model.compile(optimizer=training.make_optimizer(3e-2, ema=decay))
    images = digits[0][:64]
    raw = _RawWeights()
    callbacks = training.training_callbacks(
        tmp_path, ema=True, sample_every=2, num_samples=4, seed=3, tensorboard=False
    )
    history = model.fit(
        images,
        batch_size=16,
        epochs=2,
        shuffle=False,
        validation_data=(images,),
        callbacks=[raw, *callbacks],
        verbose=0,
    ).history
    average = raw.steps[0]
    for t, step in enumerate(raw.steps[1:], start=1):
        d = min(decay, (1 + t) / (10 + t))  # PolyakAdam's warm-up
        average = [d * a + (1 - d) * w for a, w in zip(average, step, strict=True)]
    for a, w in zip(average, model.get_weights(), strict=True):
        np.testing.assert_allclose(w, a, rtol=1e-4, atol=1e-6)
    final = model.get_weights()
    assert max(np.abs(a - b).max() for a, b in zip(raw.steps[-1], final, strict=True)) > 1e-3
    evaluated = model.evaluate(images, batch_size=16, verbose=0, return_dict=True)
    np.testing.assert_allclose(history["val_loss"][-1], evaluated["loss"], rtol=1e-5)
    grid = np.asarray(Image.open(tmp_path / "samples" / "samples_epoch_0002.png"))
    expected = image_grid(model.sample(4, seed=3))[..., 0]
    np.testing.assert_array_equal(grid, expected)
    checkpoint = zoo.load(
        "pixelcnn_digits",
        tmp_path / "checkpoints" / "epoch_0002.weights.h5",
        num_layers=1,
        filters=8,
    )
    for a, b in zip(checkpoint.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert not (tmp_path / "backup").exists()


def test_sample_grids_and_tensorboard_logs(tmp_path, digits):
    model = zoo.load("pixelcnn_digits", weights=None, num_layers=1, filters=8)
    model.compile(optimizer=training.make_optimizer(1e-3))
    callbacks = training.training_callbacks(tmp_path, sample_every=2, num_samples=4)
    model.fit(digits[0][:32], batch_size=16, epochs=3, callbacks=callbacks, verbose=0)
    written = sorted(p.name for p in (tmp_path / "samples").iterdir())
    assert written == ["samples_epoch_0002.png", "samples_epoch_0003.png"]
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    scalars = EventAccumulator(str(tmp_path / "logs" / "train")).Reload().Tags()["tensors"]
    assert "epoch_bits_per_dim" in scalars and "epoch_loss" in scalars
    images = EventAccumulator(str(tmp_path / "logs" / "samples")).Reload().Tags()["tensors"]
    assert "samples" in images


def test_paper_learning_rate_schedule():
    schedule = training.learning_rate_schedule(**{
        k: training.PIXELCNN_PP[k] for k in ("learning_rate", "lr_decay")
    })  # fmt: skip
    assert float(schedule(0)) == pytest.approx(1e-3)
    for step in (1, 100_000, 1_000_000):
        assert float(schedule(step)) == pytest.approx(1e-3 * 0.999995**step, rel=1e-5)
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(schedule))
    assert float(restored(1234)) == float(schedule(1234))
    assert training.learning_rate_schedule(1e-3) == 1e-3
    with pytest.raises(ValueError, match="lr_decay"):
        training.learning_rate_schedule(1e-3, lr_decay=1.5)
    with pytest.raises(ValueError, match="ema"):
        training.make_optimizer(ema=1.0)


def test_warmup_ramps_the_rate_linearly_then_decays():
    schedule = training.learning_rate_schedule(3e-4, lr_decay=0.999, warmup_steps=100)
    for step in (0, 49, 99, 100, 5000):
        expected = 3e-4 * min(1, (step + 1) / 100) * 0.999**step
        assert float(schedule(step)) == pytest.approx(expected, rel=1e-5)
    constant = training.learning_rate_schedule(3e-4, warmup_steps=10)
    assert float(constant(4)) == pytest.approx(1.5e-4)
    assert float(constant(10)) == pytest.approx(3e-4)
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(schedule))
    assert float(restored(42)) == float(schedule(42))
    old = {"learning_rate": 1e-3, "decay": 0.99}
    assert float(training.PerStepDecay.from_config(old)(0)) == pytest.approx(1e-3)
    with pytest.raises(ValueError, match="warmup_steps"):
        training.learning_rate_schedule(1e-3, warmup_steps=-1)


def test_a_killed_run_resumes_from_its_last_finished_epoch(tmp_path):
    output = tmp_path / "run"
    command = [
        sys.executable, "-m", "keras_pixel.cli", "train", "pixelcnn_digits", "--dataset",
        "digits", "--epochs", "4", "--steps-per-epoch", "40", "--batch-size", "16",
        "--ema", "0.9", "--warmup-steps", "100", "--sample-every", "0", "--num-samples", "2",
        "--verbose", "2", "--output", str(output), *TINY_DIGITS,
    ]  # fmt: skip
    first = subprocess.Popen(
        command, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    seen = []
    try:
        for line in first.stdout:
            seen.append(line)
            if line.startswith("Epoch 3/4"):
                first.send_signal(signal.SIGKILL)
                break
        first.wait(timeout=60)
    finally:
        first.kill()
    assert first.returncode == -signal.SIGKILL, "".join(seen)[-3000:]
    metadata = json.loads((output / "backup" / "training_metadata.json").read_text())
    assert metadata["epoch"] == 2
    assert not (output / "model.keras").exists()
    second = subprocess.run(command, env=_env(), capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert "Resuming an interrupted run: 2 of 4 epochs were done." in second.stdout
    assert "Epoch 3/4" in second.stdout and "Epoch 1/4" not in second.stdout
    metrics = json.loads((output / "metrics.json").read_text())
    assert metrics["resumed_after_epoch"] == 2 and len(metrics["history"]["loss"]) == 4
    assert metrics["warmup_steps"] == 100
    assert metrics["overrides"] == {"num_layers": 1, "filters": 8}
    assert metrics["initial_weights"] is None and metrics["initial_weights_sha256"] is None
    assert metrics["train_seconds"] > 0 and "epoch_seconds" not in metrics["history"]
    names = sorted(p.name for p in (output / "checkpoints").iterdir())
    assert names == [f"epoch_{k:04d}.weights.h5" for k in range(1, 5)]
    assert not (output / "backup").exists()


def _train_command(output, *extra):
    return [
        sys.executable, "-m", "keras_pixel.cli", "train", "pixelcnn_digits", "--dataset",
        "digits", "--steps-per-epoch", "3", "--batch-size", "8", "--sample-every", "1",
        "--num-samples", "2", "--output", str(output), *TINY_DIGITS, *extra,
    ]  # fmt: skip


def _run(command, **kwargs):
    out = subprocess.run(command, env=_env(), capture_output=True, text=True, timeout=600, **kwargs)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out.stdout


def test_a_finished_run_is_left_alone_unless_overwritten(tmp_path):
    output = tmp_path / "run"
    _run(_train_command(output, "--epochs", "2"))
    before = {p: p.stat().st_mtime_ns for p in output.rglob("*") if p.is_file()}
    assert output / "checkpoints" / "epoch_0002.weights.h5" in before
    again = _run(_train_command(output, "--epochs", "1"))
    assert "holds a finished run" in again and "--overwrite" in again
    assert {p: p.stat().st_mtime_ns for p in output.rglob("*") if p.is_file()} == before
    _run(_train_command(output, "--epochs", "1", "--overwrite"))
    metrics = json.loads((output / "metrics.json").read_text())
    assert metrics["epochs"] == 1 and len(metrics["history"]["loss"]) == 1
    assert not (output / "checkpoints" / "epoch_0002.weights.h5").exists()
    assert not (output / "samples" / "samples_epoch_0002.png").exists()
    assert not (output / "backup").exists()


KILL_AT_SAVE = """
import os, signal, sys
import keras
keras.Model.save = lambda self, *a, **k: os.kill(os.getpid(), signal.SIGKILL)
from keras_pixel.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_a_run_killed_at_its_final_save_loses_no_epoch(tmp_path):
    output = tmp_path / "run"
    command = _train_command(output, "--epochs", "2", "--ema", "0.9")
    killed = subprocess.run(
        [sys.executable, "-c", KILL_AT_SAVE, *command[3:]], env=_env(), capture_output=True,
        text=True, timeout=600,
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stdout[-3000:] + killed.stderr[-3000:]
    assert not (output / "model.keras").exists() and not (output / "metrics.json").exists()
    assert json.loads((output / "backup" / "training_metadata.json").read_text())["epoch"] == 2
    resumed = _run(command)
    assert "Resuming an interrupted run: 2 of 2 epochs were done." in resumed
    assert "Epoch 1/2" not in resumed and "Epoch 2/2" not in resumed
    metrics = json.loads((output / "metrics.json").read_text())
    assert len(metrics["history"]["loss"]) == 2
    model = keras.saving.load_model(output / "model.keras")
    checkpoint = str(output / "checkpoints" / "epoch_0002.weights.h5")  # the EMA weights
    averaged = zoo.load("pixelcnn_digits", weights=checkpoint, num_layers=1, filters=8)
    for a, b in zip(model.get_weights(), averaged.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert not (output / "backup").exists()


def test_the_same_seed_trains_the_same_run(tmp_path):
    runs = [tmp_path / "a", tmp_path / "b"]
    for output in runs:
        _run(_train_command(output, "--epochs", "2", "--seed", "3", "--sample-every", "0"))
    metrics = [json.loads((r / "metrics.json").read_text()) for r in runs]
    assert metrics[0]["history"] == metrics[1]["history"]
    assert metrics[0]["test_bits_per_dim"] == metrics[1]["test_bits_per_dim"]
    weights = [keras.saving.load_model(r / "model.keras").get_weights() for r in runs]
    for a, b in zip(*weights, strict=True):
        np.testing.assert_array_equal(a, b)


def test_out_of_range_class_ids_are_refused_everywhere():
    model = _small("gated_pixelcnn_mnist_conditional")
    model.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=False)
    images, _ = _batch(model)
    bad = np.array([0, 1, 2, 10])
    with pytest.raises(ValueError, match=r"class ids in \[0, 10\)"):
        model((images, bad))
    with pytest.raises(ValueError, match=r"class ids in \[0, 10\)"):
        model.fit(images, bad, epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"class ids in \[0, 10\)"):
        model.evaluate((images, bad), verbose=0)
    dataset = tf.data.Dataset.from_tensor_slices((images, bad)).batch(4)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"class ids in \[0, 10\)"):
        model.fit(dataset, epochs=1, verbose=0)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"class ids in \[0, 10\)"):
        model.evaluate(dataset.map(lambda x, y: (x, -y)), verbose=0)
    model.fit(dataset.map(lambda x, y: (x, y % 10)), epochs=1, verbose=0)
