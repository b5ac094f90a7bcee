"""Do the zoo's MNIST samples look like digits? A classifier's verdict, per entry.

    python benchmarks/bench_zoo_quality.py --mnist-dir ../shared/data/mnist

Trains a small CNN on real MNIST (>= 98% test accuracy, checked; its weights are
cached in ``--classifier``), then for every shipped MNIST entry draws 100 samples
(seed 0, temperature 1, cached sampling) with its pretrained weights and reports:

* unconditional entries: the share of samples the classifier gives some digit
  with probability >= 0.9 ("digit share"; real test images score about
  0.95-0.99, printed as the baseline);
* the class-conditional entry: 10 samples per digit, the share classified as the
  requested digit ("label accuracy"), and, printed below the table, how much
  the model itself tells the digits apart: the share of the first
  ``--bayes-images`` real test images whose own label maximizes
  ``log p(image | label)`` ("Bayes accuracy", a figure free of sampling noise:
  the likelihood gained by using the label is at most log 10 = 2.3 nats per
  image, so a model learns it slowly and this figure shows how far it got);
* binarized entries (``num_values=2``): samples shown to the classifier as
  0/255 images, and the test nats per image from the entry's card.

Prints one table; ``--grids DIR`` also writes each entry's 100 samples as a PNG.
A share of 100 samples moves by +-0.05-0.07 between seeds (``pixelcnn_pp_mnist``
at 1.0283 bits/dim: 0.56-0.70 over seeds 0-5); ``--seeds N`` draws N batches of
100 (seeds 0..N-1) and reports their mean, with each seed's figure below the
table, to tell two sets of weights apart.
"""

import argparse
import os
import time

import numpy as np

CONFIDENT = 0.9
NUM_SAMPLES = 100


def train_classifier(mnist_dir, path):
    """A small CNN on the 60,000 training images; reused from ``path`` if there."""
    import keras

    from keras_pixel import data

    (train, train_labels), (test, test_labels) = (
        data.load_mnist_idx(mnist_dir, "train"),
        data.load_mnist_idx(mnist_dir, "test"),
    )
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            keras.layers.Rescaling(1 / 255),
            keras.layers.Conv2D(32, 3, activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(64, 3, activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Flatten(),
            keras.layers.Dropout(0.3),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    if os.path.exists(path):
        model.load_weights(path)
    else:
        model.fit(train, train_labels, batch_size=128, epochs=3, verbose=2)
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        model.save_weights(path)
    accuracy = model.evaluate(test, test_labels, verbose=0)[1]
    if accuracy < 0.98:
        raise SystemExit(f"classifier test accuracy {accuracy:.4f} < 0.98: delete {path}")
    return model, accuracy, test


def verdict(classifier, images):
    """``(digit share, predicted digits, max probabilities)`` of uint8 images."""
    probs = classifier.predict(images, batch_size=256, verbose=0)
    return float(np.mean(probs.max(axis=1) >= CONFIDENT)), probs.argmax(axis=1), probs.max(axis=1)


def bayes_accuracy(model, images, labels):
    """Share of ``images`` whose own label maximizes ``log p(image | label)``
    over the model's ``num_classes`` labels (a uniform prior over labels)."""
    batch = np.ones(len(images), np.int32)
    log_probs = np.stack(
        [np.asarray(model.log_prob(images, labels=k * batch)) for k in range(model.num_classes)],
        axis=1,
    )
    return float(np.mean(log_probs.argmax(axis=1) == labels))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mnist-dir", required=True, help="folder of the MNIST idx files")
    parser.add_argument(
        "--classifier",
        default=os.path.join(
            os.path.expanduser("~"), ".cache", "keras_pixel", "mnist_cnn.weights.h5"
        ),
        help="where the classifier's weights are cached",
    )
    parser.add_argument(
        "--entries", nargs="*", default=None, help="default: every MNIST entry with weights"
    )
    parser.add_argument("--grids", default=None, help="write each entry's samples as DIR/NAME.png")
    parser.add_argument(
        "--seeds", type=int, default=1,
        help="batches of 100 samples per entry (seeds 0..N-1; default 1: seed 0 only)",
    )  # fmt: skip
    parser.add_argument(
        "--bayes-images", type=int, default=500,
        help="test images classified by each conditional entry's likelihood (0: skip)",
    )  # fmt: skip
    args = parser.parse_args()
    if args.seeds < 1:
        parser.error(f"--seeds must be >= 1, got {args.seeds}")
    if args.bayes_images < 0:
        parser.error(f"--bayes-images must be >= 0, got {args.bayes_images}")

    from common import cpu_name

    from keras_pixel import data, zoo
    from keras_pixel.images import save_image_grid

    classifier, accuracy, test = train_classifier(args.mnist_dir, args.classifier)
    baseline, _, _ = verdict(classifier, test)
    print(f"CPU: {cpu_name()}")
    print(f"classifier: test accuracy {accuracy:.4f}; real test images: digit share {baseline:.3f}")
    names = args.entries or [
        n for n in zoo.list_models(pretrained=True) if zoo.get_preset(n).dataset == "mnist"
    ]
    bayes_test = data.load_mnist_idx(args.mnist_dir, "test")
    rows = []
    for name in names:
        model = zoo.load(name, weights="pretrained")
        labels = np.arange(NUM_SAMPLES) // (NUM_SAMPLES // 10) if model.conditional else None
        shares, accuracies = [], []
        for seed in range(args.seeds):
            start = time.time()
            drawn = model.sample(NUM_SAMPLES, seed=seed, labels=labels)
            elapsed = time.time() - start
            shown = (drawn.astype(np.int64) * 255 // (model.num_values - 1)).astype(np.uint8)
            share, predicted, _ = verdict(classifier, shown)
            shares.append(share)
            if labels is not None:
                accuracies.append(float(np.mean(predicted == labels)))
            if seed == 0:
                samples, seconds = drawn, elapsed
        measured = zoo.info(name)["measured"] or {}
        row = {
            "entry": name,
            "test bits/dim": measured.get("test_bits_per_dim"),
            "test nats": measured.get("test_nats"),
            "digit share": float(np.mean(shares)),
            "label accuracy": float(np.mean(accuracies)) if accuracies else None,
            "per seed": (shares, accuracies),
            "sampling s": seconds,
            "bayes accuracy": None,
        }
        if model.conditional and model.num_classes == 10 and args.bayes_images > 0:
            images, test_labels = (part[: args.bayes_images] for part in bayes_test)
            if zoo.get_preset(name).train.get("binarize"):
                images = data.binarize(images, seed=0, num_values=model.num_values)
            row["bayes accuracy"] = bayes_accuracy(model, images, test_labels)
        rows.append(row)
        if args.grids:
            save_image_grid(
                samples, os.path.join(args.grids, f"{name}.png"), ncols=10,
                num_values=model.num_values,
            )  # fmt: skip
    print()
    print(
        "| entry | test bits/dim | test nats | digit share (p >= 0.9) | label accuracy "
        "| sampling s |"
    )
    print("|---|---|---|---|---|---|")
    fmt = lambda v, spec: "-" if v is None else format(v, spec)  # noqa: E731
    for r in rows:
        print(
            f"| {r['entry']} | {fmt(r['test bits/dim'], '.4f')} | {fmt(r['test nats'], '.2f')} "
            f"| {r['digit share']:.2f} | {fmt(r['label accuracy'], '.2f')} "
            f"| {r['sampling s']:.1f} |"
        )
    for r in rows:
        if r["bayes accuracy"] is not None:
            print(
                f"\n{r['entry']}: Bayes accuracy {r['bayes accuracy']:.3f} on the first "
                f"{args.bayes_images} test images (argmax over labels of log p(image | label))"
            )
    if args.seeds > 1:
        print(f"\nmean over {args.seeds} x {NUM_SAMPLES} samples (seeds 0-{args.seeds - 1}); "
              "sampling s is seed 0's call. Per seed:")  # fmt: skip
        for r in rows:
            shares, accuracies = r["per seed"]
            line = f"- {r['entry']}: digit share " + ", ".join(f"{v:.2f}" for v in shares)
            if accuracies:
                line += "; label accuracy " + ", ".join(f"{v:.2f}" for v in accuracies)
            print(line)


if __name__ == "__main__":
    main()
