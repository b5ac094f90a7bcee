"""``zoo/import_torch.py``: a ``zoo/torch_mirror.py`` run becomes a zoo entry's
Keras weights and a run folder for ``zoo/publish.py``, or is refused. Needs no
torch: the run is written here as the mirror writes it."""

import dataclasses
import json
import pathlib

import keras
import numpy as np
import pytest

from keras_pixel import data, zoo
from keras_pixel.zoo import registry

NAME = "pixelcnn_binarized_mnist"
SMALL = dict(image_shape=(28, 28, 1), num_layers=1, filters=4, output_filters=8, num_values=2)


@pytest.fixture
def importer(monkeypatch):
    monkeypatch.syspath_prepend(str(pathlib.Path(__file__).resolve().parents[1] / "zoo"))
    small = dataclasses.replace(zoo.get_preset(NAME), config=SMALL, trained=None)
    monkeypatch.setitem(registry._REGISTRY, NAME, small)
    import import_torch

    return import_torch


def _mirror_run(tmp_path, model, stem="run", **overrides):
    """Writes ``model``'s weights and a finished record as the mirror would."""
    arrays = {w.path.split("/", 1)[1]: np.asarray(w) for w in model.weights}
    np.savez(tmp_path / f"{stem}.npz", **arrays)
    args = dict(
        model="pixelcnn", num_layers=1, filters=4, output_filters=8, num_values=2,
        num_classes=None, binarize=True, mnist_dir="x", seconds=5.0, batch_size=128,
        learning_rate=1e-3, warmup_steps=200, final_lr_fraction=0.02, ema=0.9995,
        init=None, seed=0, output="x",
    )  # fmt: skip
    args.update(overrides)
    record = dict(
        args=args, steps=300, train_seconds=12.5, epochs=0.64, finished=True,
        test_bits_per_dim=0.5, test_nats=270.0, history=[], device="NVIDIA H200",
        torch="2.11.0",
    )  # fmt: skip
    (tmp_path / f"{stem}.json").write_text(json.dumps(record))
    return tmp_path / f"{stem}.npz"


def test_import_sets_every_weight_and_writes_a_publishable_run(importer, tmp_path, mnist_dir):
    source = zoo.load(NAME, weights=None)
    rng = np.random.default_rng(0)
    source.set_weights([rng.normal(0, 0.2, w.shape).astype("float32") for w in source.weights])
    first = _mirror_run(tmp_path, source, stem="run0")
    npz = _mirror_run(tmp_path, source, init="cond0.npz", seconds=3.0)
    out = tmp_path / "folder"
    metrics = importer.import_run(
        str(npz), NAME, str(mnist_dir), str(out), previous_json=str(first)[:-4] + ".json"
    )
    model = keras.saving.load_model(out / "model.keras", compile=False)
    for a, b in zip(model.get_weights(), source.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    images, _ = data.load("mnist", "test", data_dir=str(mnist_dir))
    expected = source.bits_per_dim(data.binarize(images, seed=0, num_values=2))
    assert metrics["test_bits_per_dim"] == pytest.approx(expected, rel=1e-6)
    assert json.loads((out / "metrics.json").read_text())["model"] == NAME
    assert metrics["epochs"] == 1.3 and metrics["train_seconds"] == 25.0
    commands = (out / "command.txt").read_text().splitlines()
    assert commands[0].startswith("python zoo/torch_mirror.py --model pixelcnn")
    assert "--init OUT/run0.npz" in commands[1] and "--seconds 3.0" in commands[1]
    assert commands[2].endswith("--previous OUT/run0.json")
    assert (out / "samples.png").stat().st_size > 0


def test_a_run_from_the_published_weights_names_their_export(importer, tmp_path, mnist_dir):
    npz = _mirror_run(tmp_path, zoo.load(NAME, weights=None), init="published.npz")
    importer.import_run(str(npz), NAME, str(mnist_dir), str(tmp_path / "out"))
    commands = (tmp_path / "out" / "command.txt").read_text().splitlines()
    assert commands[0] == f"python zoo/import_torch.py --to-npz {NAME} OUT/{NAME}.npz"
    assert f"--init OUT/{NAME}.npz" in commands[1]


def test_a_run_from_another_entrys_unconditional_twin_names_that_export(
    importer, tmp_path, mnist_dir
):
    source = "gated_pixelcnn_mnist_conditional"
    npz = _mirror_run(tmp_path, zoo.load(NAME, weights=None), init="twin.npz")
    importer.import_run(
        str(npz), NAME, str(mnist_dir), str(tmp_path / "out"), init_entry=source, unconditional=True
    )
    commands = (tmp_path / "out" / "command.txt").read_text().splitlines()
    assert commands[0] == (
        f"python zoo/import_torch.py --to-npz {source} OUT/{source}.npz --unconditional"
    )
    assert f"--init OUT/{source}.npz" in commands[1]
    assert commands[2].endswith(f"--from {source} --unconditional")


def test_export_for_init_makes_a_conditional_entry_unconditional(importer, tmp_path):
    source = "gated_pixelcnn_mnist_conditional"
    importer.export_npz(source, tmp_path / "twin.npz", unconditional=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["twin.npz"]
    arrays = dict(np.load(tmp_path / "twin.npz"))
    twin = zoo.get_preset(source).build(num_classes=None)
    assert set(arrays) == {w.path.split("/", 1)[1] for w in twin.weights}
    published = zoo.load(source)
    kept = {w.path.split("/", 1)[1]: np.asarray(w) for w in published.weights}
    np.testing.assert_array_equal(arrays["block_3/v_to_h/kernel"], kept["block_3/v_to_h/kernel"])
    np.testing.assert_allclose(
        arrays["block_3/vertical/bias"],
        kept["block_3/vertical/bias"] + kept["block_3/v_condition/kernel"].mean(0),
        atol=1e-6,
    )
    with pytest.raises(ValueError, match="class-conditional"):
        importer.export_npz("pixelcnn_mnist", tmp_path / "x.npz", unconditional=True)


def test_export_for_init_takes_a_saved_model(importer, tmp_path):
    model = zoo.load("gated_pixelcnn_mnist_conditional")
    model.save(tmp_path / "model.keras")
    importer.export_npz(str(tmp_path / "model.keras"), tmp_path / "run.npz")
    arrays = dict(np.load(tmp_path / "run.npz"))
    expected = {w.path.split("/", 1)[1]: np.asarray(w) for w in model.weights}
    assert set(arrays) == set(expected)
    for key, value in expected.items():
        np.testing.assert_array_equal(arrays[key], value)
    with pytest.raises(ValueError, match="no such saved model"):
        importer.export_npz(str(tmp_path / "missing.keras"), tmp_path / "x.npz")
    assert not (tmp_path / "x.npz").exists()


def test_publish_chains_an_export_to_the_model_the_published_run_wrote(monkeypatch):
    monkeypatch.syspath_prepend(str(pathlib.Path(__file__).resolve().parents[1] / "zoo"))
    import publish

    source = "gated_pixelcnn_mnist_conditional"
    before = (
        "python zoo/torch_mirror.py --output OUT/run\n"
        "python zoo/import_torch.py OUT/run.npz --output RUN"
    )
    command = (
        f"python zoo/import_torch.py --to-npz {source} OUT/{source}.npz --unconditional\n"
        f"python zoo/torch_mirror.py --init OUT/{source}.npz --output OUT/run"
    )
    lines = publish.chain(before, command, source).splitlines()
    assert lines[:2] == before.splitlines()
    assert lines[2] == (
        f"python zoo/import_torch.py --to-npz RUN/model.keras OUT/{source}.npz --unconditional"
    )
    assert lines[3] == command.splitlines()[1]
    keras_run = "keras-pixel train x --weights pretrained --output runs/x_ft"
    assert publish.chain(keras_run, command, source).splitlines()[1].split()[3] == (
        "runs/x_ft/model.keras"
    )
    fine_tune = "keras-pixel train x --weights runs/x/model.keras --output runs/y"
    assert publish.chain(keras_run, fine_tune, "x") == keras_run + "\n" + fine_tune
    with pytest.raises(ValueError, match="do not end by writing a model"):
        publish.chain("keras-pixel evaluate x", command, source)


def test_publish_adds_a_continued_run_rounded_to_one_decimal(monkeypatch):
    monkeypatch.syspath_prepend(str(pathlib.Path(__file__).resolve().parents[1] / "zoo"))
    import publish

    epochs, seconds = publish.add_runs({"epochs": 41.6, "train_seconds": 20453.2}, 1.2, 5250.4)
    assert (repr(epochs), repr(seconds)) == ("42.8", "25703.6")


def test_import_refuses_a_run_that_does_not_fit_the_entry(importer, tmp_path):
    model = zoo.load(NAME, weights=None)
    out = str(tmp_path / "out")
    with pytest.raises(ValueError, match="num_layers=1; the run trained 2"):
        importer.import_run(str(_mirror_run(tmp_path, model, num_layers=2)), NAME, "x", out)
    with pytest.raises(ValueError, match="binarization"):
        importer.import_run(str(_mirror_run(tmp_path, model, binarize=False)), NAME, "x", out)
    with pytest.raises(ValueError, match="--previous"):
        importer.import_run(str(_mirror_run(tmp_path, model)), NAME, "x", out, str(tmp_path / "a"))
    with pytest.raises(ValueError, match="--from and --unconditional"):
        importer.import_run(str(_mirror_run(tmp_path, model)), NAME, "x", out, unconditional=True)
    npz = _mirror_run(tmp_path, model)
    arrays = dict(np.load(npz))
    del arrays["head/logits_conv/bias"]
    np.savez(npz, **arrays)
    with pytest.raises(ValueError, match=r"missing \['head/logits_conv/bias'\]"):
        importer.import_run(str(npz), NAME, "x", out)
    record = json.loads((tmp_path / "run.json").read_text())
    (tmp_path / "run.json").write_text(json.dumps({**record, "finished": False}))
    with pytest.raises(ValueError, match="did not finish"):
        importer.import_run(str(npz), NAME, "x", out)
    assert not (tmp_path / "out").exists()


def test_export_for_init_refuses_an_entry_without_weights(importer, tmp_path):
    with pytest.raises(ValueError, match="No pretrained weights"):
        importer.export_npz("pixelcnn_cifar", tmp_path / "x.npz")
    assert not (tmp_path / "x.npz").exists()
