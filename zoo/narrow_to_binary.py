"""Turns a 256-way model trained on binarized images {0, 255} into its two-valued
(``num_values=2``) form on images {0, 1} (maintainers' tool).

    python zoo/narrow_to_binary.py RUN_DIR OUT_DIR

The two models see the same network inputs (``preprocess`` maps 0 -> -1 and
255 -> +1 for K=256, 0 -> -1 and 1 -> +1 for K=2), so every weight carries over
unchanged except the last 1x1 convolution, of which the rows of the logits of 0
and 255 are kept. The K=2 model's conditionals are the 256-way ones restricted to
{0, 255} and renormalized: its log-likelihood of any binary image is at least the
256-way model's. ``OUT_DIR`` gets ``model.keras``, ``metrics.json``,
``command.txt`` and ``samples.png`` for ``zoo/publish.py``.
"""

import argparse
import json
import os
import shutil


def narrow(source):
    """The ``num_values=2`` twin of a 256-way single-channel model, weights included."""
    import numpy as np

    config = {**source.get_config(), "num_values": 2}
    config.pop("name", None)
    config.pop("trainable", None)
    config.pop("dtype", None)
    target = type(source)(**config)
    keep = np.array([0, 255])
    for source_weight, target_weight in zip(source.weights, target.weights, strict=True):
        value = source_weight.numpy()
        if "logits_conv" in source_weight.path:
            value = value[..., keep]
        target_weight.assign(value)
    return target


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir")
    parser.add_argument("out_dir")
    args = parser.parse_args()

    import keras

    from keras_pixel.images import save_image_grid

    source = keras.saving.load_model(os.path.join(args.run_dir, "model.keras"), compile=False)
    if source.num_values != 256 or source.image_shape[-1] != 1:
        raise SystemExit("narrow_to_binary takes a 256-way single-channel model.")
    target = narrow(source)
    os.makedirs(args.out_dir, exist_ok=True)
    target.save(os.path.join(args.out_dir, "model.keras"))
    save_image_grid(
        target.sample(16, seed=0), os.path.join(args.out_dir, "samples.png"), num_values=2
    )
    metrics = json.load(open(os.path.join(args.run_dir, "metrics.json")))
    with open(os.path.join(args.out_dir, "metrics.json"), "w") as f:
        json.dump({**metrics, "narrowed_from": os.path.abspath(args.run_dir)}, f, indent=2)
    shutil.copy(
        os.path.join(args.run_dir, "command.txt"), os.path.join(args.out_dir, "command.txt")
    )
    print(f"wrote {args.out_dir}")


if __name__ == "__main__":
    main()
