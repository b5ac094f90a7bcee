"""Turns a ``zoo/torch_mirror.py`` run into a run folder that ``zoo/publish.py``
publishes (maintainers' tool).

    python zoo/import_torch.py RUN.npz --name ENTRY --data-dir ../shared/data/mnist --output DIR

``RUN.npz`` and ``RUN.json`` are what the mirror wrote on the GPU machine. The
entry's registered architecture must be the one the mirror trained (checked
against ``RUN.json``); every Keras weight is set from the file (a missing,
extra or misshapen array fails). This writes ``DIR/model.keras``,
``DIR/samples.png`` (16 samples, seed 0, drawn by the Keras model),
``DIR/command.txt`` (the mirror's command and this one) and
``DIR/metrics.json`` (epochs, training seconds and the Keras model's test
bits/dim), each whole, ``metrics.json`` last. A run that started (``--init``)
from an earlier mirror run is imported with ``--previous RUN0.json``: the
commands chain and epochs and seconds add up. One that started from the
entry's published weights (``--to-npz`` below) is imported without it and
published with ``zoo/publish.py --continues``, which adds the published run's.

    python zoo/import_torch.py --to-npz ENTRY|MODEL.keras OUT.npz [--unconditional]

goes the other way: the entry's published weights (or a saved model's, such as
an earlier import's ``DIR/model.keras``) as an ``.npz`` for
``torch_mirror.py --init`` (to train a published entry further). On a card,
``zoo/publish.py --continues`` names the model that the lines before wrote
(``RUN/model.keras``) in place of the entry, whose published weights change
with every later publish.
``--unconditional`` first turns a class-conditional entry into its
unconditional twin (``zoo/conditioning.py``'s ``remove_conditioning``: the
mean label's projections folded into the biases), the start of an
unconditional run that draws on the conditional entry's training.
"""

import argparse
import json
import os
import shlex
import sys

import numpy as np

#: The mirror's architecture arguments, each equal to the entry's config key of that name.
ARCHITECTURE = ("num_layers", "filters", "output_filters", "num_values", "num_classes")
#: The kernel sizes the mirror builds (those of the Keras families' defaults).
MIRROR_KERNELS = {"kernel_size": 3, "first_kernel_size": 7}
FAMILY = {"pixelcnn": "PixelCNN", "gated_pixelcnn": "GatedPixelCNN"}


def mirror_command(args, output, init=None):
    """The ``zoo/torch_mirror.py`` command line that the run's recorded arguments give."""
    words = ["python", "zoo/torch_mirror.py"]
    for key, value in args.items():
        if value is None or value is False or key in ("mnist_dir", "output", "init"):
            continue
        flag = "--" + key.replace("_", "-")
        words += [flag] if value is True else [flag, str(value)]
    if init is not None:
        words += ["--init", init]
    return shlex.join(words + ["--mnist-dir", "DIR", "--output", output])


def export_npz(source, path, unconditional=False):
    """Writes the weights of ``source`` (a zoo entry's name: its published
    weights; or a path ending in ``.keras``: that saved model's) to ``path`` in
    the mirror's layout (those of its unconditional twin with ``unconditional``),
    whole or not at all (a temporary name, then a rename) and at exactly ``path``."""
    from keras_pixel import zoo

    if str(source).endswith(".keras"):
        import keras

        if not os.path.isfile(source):
            raise ValueError(f"{source}: no such saved model.")
        model = keras.saving.load_model(source, compile=False)
    else:
        model = zoo.load(source, weights="pretrained")
    if unconditional:
        from conditioning import remove_conditioning

        model = remove_conditioning(model)
    partial = f"{path}.partial"
    with open(partial, "wb") as f:
        np.savez(f, **{w.path.split("/", 1)[1]: np.asarray(w) for w in model.weights})
    os.replace(partial, path)


def mirror_config(preset):
    """The mirror's architecture arguments (:data:`ARCHITECTURE`) of ``preset``."""
    return {
        key: preset.config.get(key, 256 if key == "num_values" else None) for key in ARCHITECTURE
    }


def import_run(
    npz, name, data_dir, output, previous_json=None, init_entry=None, unconditional=False
):
    """Sets zoo entry ``name``'s Keras weights from the mirror run ``npz`` (its
    record beside it, ``.json``) and writes the run folder ``output``; returns
    the ``metrics.json`` written. ``previous_json``: the record of the run that
    ``--init`` started from. A run that started from published weights
    (``--to-npz``) started from ``name``'s unless ``init_entry`` names another
    entry; ``unconditional``: they were exported with ``--unconditional``.
    Raises ``ValueError`` if the run does not fit the entry."""
    from keras_pixel import data, zoo
    from keras_pixel.images import save_image_grid

    record = json.load(open(npz[: -len(".npz")] + ".json"))
    if previous_json and not record["args"].get("init"):
        raise ValueError("--previous names the run that --init started from; this run has none.")
    if (init_entry or unconditional) and (previous_json or not record["args"].get("init")):
        raise ValueError(
            "--from and --unconditional name the published weights that --init started "
            "from; this run started from " + ("another run." if previous_json else "scratch.")
        )
    previous = json.load(open(previous_json)) if previous_json else None
    if not record.get("finished"):
        raise ValueError(f"{npz}: the run did not finish (its .json says finished=false).")
    preset = zoo.get_preset(name)
    trained = record["args"]
    model = zoo.load(name, weights=None)
    if type(model).__name__ != FAMILY[trained["model"]]:
        raise ValueError(f"{name} is not a {trained['model']} model.")
    for key, want in mirror_config(preset).items():
        if trained[key] != want:
            raise ValueError(f"{name} has {key}={want}; the run trained {trained[key]}.")
    for key, size in MIRROR_KERNELS.items():
        if preset.config.get(key, size) != size:
            raise ValueError(f"{name} has {key}={preset.config[key]}; the mirror uses {size}.")
    if bool(trained["binarize"]) != bool(preset.train.get("binarize")):
        raise ValueError(f"{name}: the run's binarization differs from the entry's recipe.")

    arrays = dict(np.load(npz))
    weights = {w.path.split("/", 1)[1]: w for w in model.weights}
    if set(arrays) != set(weights):
        raise ValueError(
            f"weights differ: missing {sorted(set(weights) - set(arrays))}, "
            f"extra {sorted(set(arrays) - set(weights))}"
        )
    for key, variable in weights.items():
        if tuple(arrays[key].shape) != tuple(variable.shape):
            raise ValueError(f"{key}: {arrays[key].shape} against {tuple(variable.shape)}.")
        variable.assign(arrays[key])

    os.makedirs(output, exist_ok=True)
    partial = os.path.join(output, "model.partial.keras")
    model.save(partial)
    os.replace(partial, os.path.join(output, "model.keras"))

    images, labels = data.load(preset.dataset, "test", data_dir=data_dir)
    if preset.train.get("binarize"):
        images = data.binarize(images, seed=0, num_values=model.num_values)
    test_bpd = model.bits_per_dim(images, labels=labels if model.conditional else None)

    sample_labels = None
    if model.conditional:
        sample_labels = [c for c in range(model.num_classes) for _ in range(2)][:16]
    samples = model.sample(16, seed=0, labels=sample_labels, progress=True)
    save_image_grid(samples, os.path.join(output, "samples.png"), num_values=model.num_values)

    command = mirror_command(trained, "OUT/run")
    epochs, seconds = record["epochs"], record["train_seconds"]
    if previous is not None:
        command = (
            mirror_command(previous["args"], "OUT/run0")
            + "\n"
            + mirror_command(trained, "OUT/run", init="OUT/run0.npz")
        )
        epochs, seconds = epochs + previous["epochs"], seconds + previous["train_seconds"]
    elif trained.get("init"):
        source = init_entry or name
        export = ["python", "zoo/import_torch.py", "--to-npz", source, f"OUT/{source}.npz"]
        command = (
            shlex.join(export + (["--unconditional"] if unconditional else []))
            + "\n"
            + mirror_command(trained, "OUT/run", init=f"OUT/{source}.npz")
        )
    command += "\n" + shlex.join(
        [
            "python",
            "zoo/import_torch.py",
            "OUT/run.npz",
            "--name",
            name,
            "--data-dir",
            "DIR",
            "--output",
            "RUN",
        ]
        + (["--previous", "OUT/run0.json"] if previous is not None else [])
        + (["--from", init_entry] if init_entry else [])
        + (["--unconditional"] if unconditional else [])
    )
    with open(os.path.join(output, "command.txt"), "w") as f:
        f.write(command + "\n")
    metrics = dict(
        model=name,
        epochs=round(epochs, 1),
        train_seconds=round(seconds, 1),
        steps=record["steps"] + (previous["steps"] if previous else 0),
        test_bits_per_dim=test_bpd,
        mirror_test_bits_per_dim=record["test_bits_per_dim"],
        device=record["device"],
        torch=record["torch"],
        history=record["history"],
    )
    with open(os.path.join(output, "metrics.json.tmp"), "w") as f:
        json.dump(metrics, f, indent=1)
    os.replace(os.path.join(output, "metrics.json.tmp"), os.path.join(output, "metrics.json"))
    return metrics


def main():
    if sys.argv[1:2] == ["--to-npz"]:
        export = argparse.ArgumentParser(description="the published weights for --init")
        export.add_argument(
            "--to-npz", nargs=2, metavar=("ENTRY_OR_MODEL_KERAS", "OUT_NPZ"), required=True
        )
        export.add_argument(
            "--unconditional",
            action="store_true",
            help="the unconditional twin of a class-conditional entry",
        )
        export_args = export.parse_args()
        try:
            return export_npz(*export_args.to_npz, unconditional=export_args.unconditional)
        except ValueError as error:
            raise SystemExit(f"import_torch: {error}") from None
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("npz")
    parser.add_argument("--name", required=True, help="the zoo entry")
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument(
        "--previous",
        default=None,
        help="the .json of the run whose weights this one started from (--init): its "
        "command comes first on the card and its epochs and seconds add to this run's",
    )
    parser.add_argument(
        "--from",
        dest="init_entry",
        default=None,
        help="the entry whose published weights --init started from (--to-npz), when it "
        "is not --name; publish with zoo/publish.py --continues that entry",
    )
    parser.add_argument(
        "--unconditional",
        action="store_true",
        help="--init started from --to-npz ... --unconditional",
    )
    args = parser.parse_args()
    try:
        metrics = import_run(
            args.npz,
            args.name,
            args.data_dir,
            args.output,
            args.previous,
            init_entry=args.init_entry,
            unconditional=args.unconditional,
        )
    except ValueError as error:
        raise SystemExit(f"import_torch: {error}") from None
    print(
        f"{args.name}: test bits/dim {metrics['test_bits_per_dim']:.4f} in Keras "
        f"(the mirror measured {metrics['mirror_test_bits_per_dim']:.4f})"
    )


if __name__ == "__main__":
    main()
