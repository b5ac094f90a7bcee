"""Publishes a training run as a zoo entry's pretrained weights (maintainers' tool).

    python zoo/publish.py RUN_DIR --data-dir ../shared/data/mnist --hardware "..."

``RUN_DIR`` is what ``keras-pixel train NAME ... --output RUN_DIR`` wrote
(``model.keras``, ``metrics.json``, ``samples.png``, and ``command.txt`` holding
the exact training command). This measures the test set and the fixed slice
the tests check, then writes the weights into the package
(``keras_pixel/zoo/weights/NAME.weights.h5``) and records it all in
``keras_pixel/zoo/trained.json`` (each under a temporary name first, so that a
failure before the end leaves the published entry as it was), and copies the
samples to ``zoo/NAME.png``; then re-render the cards and the
README's table with ``python -m keras_pixel.zoo.cards zoo/ --readme README.md``.
A run that fine-tunes the published weights (``--weights pretrained``) is
published with ``--continues``: the card then gives both runs' commands (its
``command.txt`` names the first run's ``model.keras``, since ``pretrained``
changes meaning once it is published), and epochs and training time are their
sums. ``--continues ENTRY`` does the same for a run that started from another
entry's published weights (``zoo/import_torch.py --to-npz ENTRY --unconditional``:
an unconditional entry trained on from a conditional one). In the chained
commands, ``--to-npz ENTRY`` becomes ``--to-npz OUTPUT/model.keras``, the model
that the published run's last command wrote: the entry's name would mean its
weights at the time the card is read, which a later publish changes.
"""

import argparse
import json
import math
import os
import shlex
import shutil

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SLICE = 1000


def chain(before, command, entry):
    """The card's commands for a run that continued ``entry``'s published run:
    ``before`` (that run's commands), then ``command`` (this run's), whose
    ``--to-npz ENTRY`` now names the model that ``before``'s last line wrote
    (``--output DIR``: ``DIR/model.keras``)."""
    last = shlex.split(before.strip().splitlines()[-1])
    lines = []
    for line in command.splitlines():
        words = shlex.split(line)
        if "--to-npz" in words[:-1] and words[words.index("--to-npz") + 1] == entry:
            if "--output" not in last[:-1]:
                raise ValueError(
                    f"{entry}'s published commands do not end by writing a model (--output)."
                )
            model = last[last.index("--output") + 1].rstrip("/") + "/model.keras"
            words[words.index("--to-npz") + 1] = model
            line = shlex.join(words)
        lines.append(line)
    return before.strip() + "\n" + "\n".join(lines)


def test_data(name, data_dir):
    """The real test images (and labels) of the entry: MNIST, binarized with the
    fixed seed 0 where the recipe binarizes."""
    from keras_pixel import data, zoo

    preset = zoo.get_preset(name)
    images, labels = data.load(preset.dataset, "test", data_dir=data_dir)
    if preset.train.get("binarize"):
        images = data.binarize(images, seed=0, num_values=preset.config.get("num_values", 256))
    return images, (labels if preset.config.get("num_classes") else None)


def add_runs(before, epochs, seconds):
    """``(epochs, seconds)`` of the published run ``before`` and a run that
    continued it, rounded to one decimal as ``import_torch.py`` rounds a run's
    (a bare sum such as 41.6 + 1.2 would land in ``trained.json`` as
    42.800000000000004)."""
    return round(before["epochs"] + epochs, 1), round(before["train_seconds"] + seconds, 1)


def measure(model, images, labels):
    """``(bits/dim, nats/image)`` of ``images``."""
    nats = -model.log_prob(images, labels=labels).astype("float64").mean()
    return float(nats / (model.num_dims * math.log(2.0))), float(nats)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir")
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--hardware", required=True)
    parser.add_argument("--notes", default="")
    parser.add_argument(
        "--continues",
        nargs="?",
        const=True,
        default=None,
        metavar="ENTRY",
        help="the run fine-tunes the entry's published weights (--weights pretrained), or "
        "those of the entry named here (e.g. a conditional entry's, made unconditional): "
        "its epochs and seconds add to the published run's, and the card's commands are "
        "both runs' (the published command first); write this run's command.txt with "
        "--weights naming the first run's model.keras, since 'pretrained' changes meaning "
        "once this run is published",
    )
    args = parser.parse_args()

    import keras

    from keras_pixel import zoo

    metrics = json.load(open(os.path.join(args.run_dir, "metrics.json")))
    name = metrics["model"]
    path = os.path.join(ROOT, "keras_pixel", "zoo", "trained.json")
    trained = json.load(open(path))
    continued = name if args.continues is True else args.continues
    if continued and continued not in trained:
        raise SystemExit(f"publish: --continues {continued}: that entry has no published run.")
    command = open(os.path.join(args.run_dir, "command.txt")).read().strip()
    epochs, seconds = metrics["epochs"], metrics["train_seconds"]
    if args.continues:
        before = trained[continued]
        try:
            command = chain(before["command"], command, continued)
        except ValueError as error:
            raise SystemExit(f"publish: {error}") from None
        epochs, seconds = add_runs(before, epochs, seconds)
    model = zoo.load(name, weights=None)
    source = keras.saving.load_model(os.path.join(args.run_dir, "model.keras"), compile=False)
    model.set_weights(source.get_weights())
    weights_dir = os.path.join(ROOT, "keras_pixel", "zoo", "weights")
    os.makedirs(weights_dir, exist_ok=True)
    weights = f"{name}.weights.h5"
    images, labels = test_data(name, args.data_dir)
    bpd, nats = measure(model, images, labels)
    slice_bpd, slice_nats = measure(
        model, images[:SLICE], None if labels is None else labels[:SLICE]
    )
    # The package's data glob (weights/*.weights.h5) would ship a stray partial file.
    partial = os.path.join(weights_dir, f"{name}.partial.weights.h5")
    try:
        model.save_weights(partial)
        binarized = zoo.get_preset(name).train.get("binarize", False)
        entry = {
            "weights": weights,
            "sha256": zoo.sha256_of(partial),
            "parameters": int(model.count_params()),
            "command": command,
            "evaluate_command": f"keras-pixel evaluate {name} --weights pretrained "
            "--dataset mnist --data-dir DIR",
            "test_bits_per_dim": round(bpd, 4),
            "test_nats": round(nats, 2) if binarized else None,
            "slice": {
                "images": SLICE,
                "bits_per_dim": round(slice_bpd, 5),
                "nats": round(slice_nats, 3),
            },
            "train_seconds": seconds,
            "epochs": epochs,
            "hardware": args.hardware,
            "notes": args.notes,
        }
        trained[name] = entry
        with open(path + ".tmp", "w") as f:
            json.dump(trained, f, indent=2, sort_keys=True)
            f.write("\n")
        os.replace(partial, os.path.join(weights_dir, weights))
        os.replace(path + ".tmp", path)
    finally:
        for leftover in (partial, path + ".tmp"):
            if os.path.exists(leftover):
                os.remove(leftover)
    shutil.copy(os.path.join(args.run_dir, "samples.png"), os.path.join(ROOT, "zoo", f"{name}.png"))
    print(json.dumps({name: entry}, indent=2))


if __name__ == "__main__":
    main()
