"""Moves a trained Gated PixelCNN between its unconditional and class-conditional
forms (maintainers' tool).

    python zoo/conditioning.py add RUN_DIR OUT_DIR --num-classes 10
    python zoo/conditioning.py remove RUN_DIR OUT_DIR

``add`` builds the class-conditional twin of an unconditional model: the same
blocks plus, per block, the projections of the one-hot label onto the vertical
and horizontal stacks (``v_condition``/``h_condition``, the ``V^T h`` of the
Conditional PixelCNN paper, eq. 4). Every weight the two share carries over
unchanged and the projections start at zero, so the twin computes exactly the
unconditional model's likelihood for every label: a fine-tune on labelled
images starts from the unconditional model's bits/dim and has only to learn
what the label adds. Measured from ``gated_pixelcnn_mnist`` (docs/training.md):
the likelihood of the fine-tune is far better than a conditional model's
trained from scratch, but its samples follow their labels less, since the
projections grow slowly from zero.

``remove`` goes the other way: the projections go, and what a label added to
each stack before its gates, averaged over the labels, moves into the stacks'
biases. The unconditional twin is the conditional model fed the mean one-hot
label (uniform weights, or ``--class-weights``): a start for an unconditional
fine-tune that already draws on everything the conditional model learned.

``OUT_DIR`` gets ``model.keras``, ``metrics.json``, ``command.txt`` and
``samples.png`` (ten samples of each label, one label per row, for ``add``;
sixteen for ``remove``).
"""

import argparse
import json
import os
import sys


def _relative(weight):
    """``model_name/block_3/vertical/bias`` -> ``block_3/vertical/bias``."""
    return weight.path.split("/", 1)[1]


def _twin(source, **config_changes):
    """A fresh model of ``source``'s class and config, ``config_changes`` applied."""
    config = {**source.get_config(), **config_changes}
    for key in ("name", "trainable", "dtype"):
        config.pop(key, None)
    return type(source)(**{k: v for k, v in config.items() if v is not None})


def add_conditioning(source, num_classes):
    """The class-conditional twin of the unconditional ``source``, weights included.

    Args:
        source: an unconditional ``GatedPixelCNN``.
        num_classes: number of classes of the twin.

    Returns:
        A ``GatedPixelCNN`` with ``num_classes`` whose ``log_prob(x, labels=y)``
        equals ``source.log_prob(x)`` for every ``y``.

    Raises:
        ValueError: ``source`` is already conditional, or ``num_classes`` < 2.
    """
    from keras import ops

    if getattr(source, "num_classes", None) or getattr(source, "condition_dim", None):
        raise ValueError("add_conditioning takes an unconditional model; this one is conditional.")
    if int(num_classes) != num_classes or num_classes < 2:
        raise ValueError(f"num_classes must be an integer >= 2, got {num_classes}.")

    target = _twin(source, num_classes=num_classes)
    shared = {_relative(w): w for w in source.weights}
    for weight in target.weights:
        key = _relative(weight)
        if key in shared:
            weight.assign(shared.pop(key))
        elif "_condition/" in weight.path:
            weight.assign(ops.zeros(weight.shape, weight.dtype))
        else:
            raise ValueError(f"{weight.path} has no counterpart in the source model.")
    if shared:
        raise ValueError(f"Weights of the source model left over: {sorted(shared)}.")
    return target


#: Where each block's label projection is folded: the bias of the stack it feeds.
_FOLD = {"v_condition/kernel": "vertical/bias", "h_condition/kernel": "horizontal/bias"}


def remove_conditioning(source, class_weights=None):
    """The unconditional twin of the class-conditional ``source``, weights included.

    A label ``y`` adds row ``y`` of each block's projection kernel
    (``[num_classes, 2 * filters]``) to a stack before its gates, exactly where
    the stack's convolution adds its bias. The twin drops the projections and
    adds their ``class_weights``-weighted mean row to those biases, so it computes
    ``source`` fed the soft label ``class_weights`` (a vector, not one class).

    Args:
        source: a ``GatedPixelCNN`` with ``num_classes``.
        class_weights: ``[num_classes]`` non-negative weights summing to 1
            (uniform when None), e.g. the classes' frequencies.

    Returns:
        An unconditional ``GatedPixelCNN`` of the same blocks.

    Raises:
        ValueError: ``source`` is not class-conditional, or ``class_weights`` is
            not a distribution over its classes.
    """
    import numpy as np

    num_classes = getattr(source, "num_classes", None)
    if not num_classes:
        raise ValueError(
            "remove_conditioning takes a class-conditional model (num_classes); this one is not."
        )
    if class_weights is None:
        class_weights = np.full(num_classes, 1.0 / num_classes)
    class_weights = np.asarray(class_weights, dtype=np.float64)
    if (
        class_weights.shape != (num_classes,)
        or (class_weights < 0).any()
        or not np.isclose(class_weights.sum(), 1.0)
    ):
        raise ValueError(
            f"class_weights must be {num_classes} non-negative numbers summing to 1, "
            f"got {class_weights.tolist()}."
        )

    values = {_relative(w): np.asarray(w, dtype=np.float64) for w in source.weights}
    for key in [k for k in values if k.split("/", 1)[-1] in _FOLD]:
        block, kind = key.split("/", 1)
        values[f"{block}/{_FOLD[kind]}"] += class_weights @ values.pop(key)
    target = _twin(source, num_classes=None)
    for weight in target.weights:
        key = _relative(weight)
        if key not in values:
            raise ValueError(f"{weight.path} has no counterpart in the source model.")
        weight.assign(values.pop(key).astype(weight.dtype))
    if values:
        raise ValueError(f"Weights of the source model left over: {sorted(values)}.")
    return target


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    add = commands.add_parser("add", help="the class-conditional twin of an unconditional model")
    remove = commands.add_parser("remove", help="the unconditional twin of a conditional model")
    for command in (add, remove):
        command.add_argument("run_dir", help="a run folder with the source's model.keras")
        command.add_argument("out_dir")
    add.add_argument("--num-classes", type=int, default=10)
    remove.add_argument(
        "--class-weights",
        type=float,
        nargs="+",
        default=None,
        help="the classes' weights in the mean label (uniform by default)",
    )
    args = parser.parse_args()

    import keras
    import numpy as np

    from keras_pixel.images import save_image_grid

    source = keras.saving.load_model(os.path.join(args.run_dir, "model.keras"), compile=False)
    try:
        if args.command == "add":
            target = add_conditioning(source, args.num_classes)
        else:
            target = remove_conditioning(source, args.class_weights)
    except ValueError as error:
        raise SystemExit(f"conditioning: {error}") from None
    os.makedirs(args.out_dir, exist_ok=True)
    target.save(os.path.join(args.out_dir, "model.keras"))
    if args.command == "add":
        labels = np.repeat(np.arange(args.num_classes), 10)
        samples = target.sample(len(labels), labels=labels, seed=0)
        grid = dict(ncols=10, row_labels=[str(k) for k in range(args.num_classes)])
    else:
        samples, grid = target.sample(16, seed=0), dict(ncols=4)
    save_image_grid(
        samples, os.path.join(args.out_dir, "samples.png"), num_values=target.num_values, **grid
    )
    metrics_path = os.path.join(args.run_dir, "metrics.json")
    metrics = json.load(open(metrics_path)) if os.path.exists(metrics_path) else {}
    key = "conditioned_from" if args.command == "add" else "unconditioned_from"
    with open(os.path.join(args.out_dir, "metrics.json"), "w") as f:
        json.dump({**metrics, key: os.path.abspath(args.run_dir)}, f, indent=2)
    with open(os.path.join(args.out_dir, "command.txt"), "w") as f:
        f.write(" ".join(["python", "zoo/conditioning.py"] + sys.argv[1:]) + "\n")
    print(f"wrote {args.out_dir}")


if __name__ == "__main__":
    main()
