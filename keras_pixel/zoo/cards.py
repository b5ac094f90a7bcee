"""Model cards: ``zoo/<name>.md`` for every entry, rendered from the preset's data.

    python -m keras_pixel.zoo.cards zoo/ --readme README.md

rewrites every card and the README's zoo table; tests check that the committed
ones equal what this renders, so they never say other than the registry (and
``trained.json``).
"""

import argparse
import json
import os

from keras_pixel.zoo.registry import get_preset, info, list_models

DATA_ARGS = {"mnist": "--dataset mnist --data-dir DIR", "cifar10": "--dataset cifar10"}


def commands(name):
    """``(train, evaluate)``: the commands that reproduce and measure the entry."""
    preset = get_preset(name)
    trained = preset.trained or {}
    data = DATA_ARGS.get(preset.dataset, f"--dataset {preset.dataset}")
    train = trained.get("command") or f"keras-pixel train {name} {data} --output runs/{name}"
    weights = "pretrained" if preset.has_weights else f"runs/{name}/model.keras"
    evaluate = trained.get("evaluate_command") or (
        f"keras-pixel evaluate {name} --weights {weights} {data}"
    )
    return train, evaluate


def _number(value, unit):
    return "—" if value is None else f"{value:.4f} {unit}"


def render_card(name):
    """The markdown card of ``name``."""
    facts = info(name)
    preset = get_preset(name)
    trained = preset.trained or {}
    train, evaluate = commands(name)
    lines = [
        f"# {name}",
        "",
        facts["description"],
        "",
        "| | |",
        "|---|---|",
        f"| model | `keras_pixel.models.{facts['model_class']}` |",
        f"| dataset | {facts['dataset']}"
        + (
            " (dynamically binarized: pixels 0 or 1, num_values=2)"
            if facts["train"].get("binarize")
            else ""
        )
        + " |",
        f"| paper | {facts['paper_result'] or '—'} |",
    ]
    if preset.has_weights:
        lines += [
            f"| ours: test bits/dim | {_number(trained.get('test_bits_per_dim'), 'bits/dim')} |",
        ]
        if trained.get("test_nats") is not None:
            lines.append(f"| ours: test NLL | {_number(trained['test_nats'], 'nats/image')} |")
        lines += [
            f"| parameters | {trained['parameters']:,} |",
            f"| trained | {trained['train_seconds'] / 60:.1f} min on {trained['hardware']} |",
            f"| weights | `keras_pixel/zoo/weights/{trained['weights']}` (sha256 "
            f"`{trained['sha256'][:16]}…`) |",
        ]
    else:
        lines.append(
            "| weights | none trained yet: `zoo.load(name)` warns and builds it with fresh "
            "weights (`weights=None` asks for them without the warning) |"
        )
    lines += ["", "## Reproduce", "", "```bash", train, evaluate]
    if not train.startswith("keras-pixel train"):
        data = DATA_ARGS.get(preset.dataset, f"--dataset {preset.dataset}")
        lines += [
            "# trained outside Keras (above); to train it further in Keras (docs/fine-tuning.md):",
            f"keras-pixel train {name} --weights pretrained {data} --learning-rate 2e-4 "
            f"--warmup-steps 300 --output runs/{name}_ft",
        ]
    lines += ["```", ""]
    if preset.has_weights:
        lines += [
            "`DIR` holds the MNIST idx files. " + trained.get("notes", ""),
            "",
            "```python",
            "from keras_pixel import zoo",
            f'model = zoo.load("{name}")  # the pretrained weights; weights=None: fresh',
            "```",
            "",
            "## Samples",
            "",
            f"![samples of {name}]({name}.png)",
            "",
        ]
    published = facts["published_weights"]
    if published:
        lines += [
            "## Published weights",
            "",
            f"Source: {published['source']}. Archive: `{published['archive']}` (SHA-1 "
            f"`{published['sha1']}`, as the mirror gives it), holding the TensorFlow 1 "
            f"checkpoint `{published['file']}`. Paper: {published['paper_result']}.",
            "",
            "```bash",
            f"keras-pixel convert {published['format']} pxpp/{published['file']} {name}.weights.h5",
            f"keras-pixel evaluate {name} --weights {name}.weights.h5 --dataset cifar10",
            "```",
            "",
            "```python",
            "from keras_pixel import zoo",
            f'model = zoo.load("{name}", weights="pxpp/{published["file"]}")  '
            "# converted on the fly (Polyak averages)",
            "```",
            "",
            published["note"] + " See `docs/published-weights.md` for the whole path "
            "to samples and a served SavedModel.",
            "",
        ]
    lines += [
        "## Configuration and default recipe (`keras-pixel train` without options)",
        "",
        "```json",
        json.dumps({"config": facts["config"], "train": facts["train"]}, indent=2),
        "```",
        "",
    ]
    return "\n".join(lines)


TABLE_START = "<!-- zoo-table: python -m keras_pixel.zoo.cards zoo/ --readme README.md -->"
TABLE_END = "<!-- /zoo-table -->"


def zoo_table():
    """The README's zoo table: name, params, dataset, paper, ours, train time."""
    rows = [
        "| name | params | dataset | paper | ours (test) | train time |",
        "|---|---|---|---|---|---|",
    ]
    for name in list_models():
        preset = get_preset(name)
        trained = preset.trained or {}
        params = f"{preset.parameters:,}" if preset.parameters else "—"
        if preset.has_weights:
            ours = f"{trained['test_bits_per_dim']:.4f} bits/dim"
            if trained.get("test_nats") is not None:
                ours = f"{trained['test_nats']:.2f} nats ({ours})"
            time = f"{trained['train_seconds'] / 60:.0f} min, {trained['hardware']}"
        else:
            ours, time = "no weights trained yet", "—"
        dataset = preset.dataset + (" (binarized)" if preset.train.get("binarize") else "")
        rows.append(
            f"| [`{name}`](zoo/{name}.md) | {params} | {dataset} | "
            f"{preset.paper_result or '—'} | {ours} | {time} |"
        )
    return "\n".join([TABLE_START, *rows, TABLE_END])


def update_readme(path):
    """Replaces the zoo table between the markers of ``path`` with :func:`zoo_table`."""
    text = open(path, encoding="utf-8").read()
    start, end = text.index(TABLE_START), text.index(TABLE_END) + len(TABLE_END)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text[:start] + zoo_table() + text[end:])


def write_cards(folder):
    """Writes ``<folder>/<name>.md`` for every entry; returns the paths."""
    os.makedirs(folder, exist_ok=True)
    paths = []
    for name in list_models():
        path = os.path.join(folder, f"{name}.md")
        with open(path, "w", encoding="utf-8") as f:
            f.write(render_card(name))
        paths.append(path)
    return paths


def main(argv=None):
    parser = argparse.ArgumentParser(description="Render the zoo's model cards.")
    parser.add_argument("folder", nargs="?", default="zoo")
    parser.add_argument("--readme", default=None, help="also update the table in this README")
    args = parser.parse_args(argv)
    for path in write_cards(args.folder):
        print(f"wrote {path}")
    if args.readme:
        update_readme(args.readme)
        print(f"updated the zoo table of {args.readme}")


if __name__ == "__main__":
    main()
