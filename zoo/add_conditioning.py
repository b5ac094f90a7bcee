"""Turns a trained unconditional Gated PixelCNN into its class-conditional twin,
ready to be fine-tuned on labelled images (maintainers' tool).

    python zoo/add_conditioning.py RUN_DIR OUT_DIR --num-classes 10

The twin has the same blocks plus, per block, the projections of the one-hot
label onto the vertical and horizontal stacks (``v_condition``/``h_condition``,
the ``V^T h`` of the Conditional PixelCNN paper, eq. 4). Every weight the two
share carries over unchanged and the projections start at zero, so the twin
computes exactly the unconditional model's likelihood for every label: a
fine-tune on labelled images starts from the unconditional model's bits/dim
and has only to learn what the label adds. Measured from
``gated_pixelcnn_mnist`` (docs/training.md): the likelihood of the fine-tune
is far better than a conditional model's trained from scratch, but its samples
follow their labels less, since the projections grow slowly from zero.
``OUT_DIR`` gets ``model.keras``, ``metrics.json``, ``command.txt`` and
``samples.png`` (ten samples of each label, one label per row).
"""

import argparse
import json
import os


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

    config = {**source.get_config(), "num_classes": num_classes}
    for key in ("name", "trainable", "dtype"):
        config.pop(key, None)
    target = type(source)(**config)

    def relative(weight):
        return weight.path.split("/", 1)[1]

    shared = {relative(w): w for w in source.weights}
    for weight in target.weights:
        key = relative(weight)
        if key in shared:
            weight.assign(shared.pop(key))
        elif "_condition/" in weight.path:
            weight.assign(ops.zeros(weight.shape, weight.dtype))
        else:
            raise ValueError(f"{weight.path} has no counterpart in the source model.")
    if shared:
        raise ValueError(f"Weights of the source model left over: {sorted(shared)}.")
    return target


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", help="a run whose model.keras is an unconditional model")
    parser.add_argument("out_dir")
    parser.add_argument("--num-classes", type=int, default=10)
    args = parser.parse_args()

    import keras
    import numpy as np

    from keras_pixel.images import save_image_grid

    source = keras.saving.load_model(os.path.join(args.run_dir, "model.keras"), compile=False)
    target = add_conditioning(source, args.num_classes)
    os.makedirs(args.out_dir, exist_ok=True)
    target.save(os.path.join(args.out_dir, "model.keras"))
    labels = np.repeat(np.arange(args.num_classes), 10)
    save_image_grid(
        target.sample(len(labels), labels=labels, seed=0),
        os.path.join(args.out_dir, "samples.png"),
        ncols=10,
        row_labels=[str(k) for k in range(args.num_classes)],
        num_values=target.num_values,
    )
    metrics_path = os.path.join(args.run_dir, "metrics.json")
    metrics = json.load(open(metrics_path)) if os.path.exists(metrics_path) else {}
    with open(os.path.join(args.out_dir, "metrics.json"), "w") as f:
        json.dump({**metrics, "conditioned_from": os.path.abspath(args.run_dir)}, f, indent=2)
    with open(os.path.join(args.out_dir, "command.txt"), "w") as f:
        f.write(
            f"python zoo/add_conditioning.py {args.run_dir} {args.out_dir} "
            f"--num-classes {args.num_classes}\n"
        )
    print(f"wrote {args.out_dir}")


if __name__ == "__main__":
    main()
