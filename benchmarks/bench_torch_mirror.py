"""Training speed of a zoo entry in Keras and in its PyTorch mirror, side by side.

Run by hand (needs ``torch``; the machine otherwise idle):

    python benchmarks/bench_torch_mirror.py --entry gated_pixelcnn_mnist_conditional \\
        --batch 64 --steps 5

Times training steps (forward, backward, Adam) of the entry's architecture at
one batch size: Keras (``model.fit``, float32 and ``mixed_bfloat16``, no XLA:
the settings ``keras-pixel train`` offers) and ``zoo/torch_mirror.py`` (float32,
bfloat16 autocast, each with and without ``torch.compile``). Each measurement
runs in its own process. The mirror is what trains the zoo's PixelCNN and
Gated PixelCNN entries where PyTorch is faster (the lent GPU, and CPUs with
AMX); this table is how to tell. Prints a markdown table; nothing is asserted.
"""

import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.join(HERE, "..", "zoo")]

import import_torch  # noqa: E402
from common import cpu_name, run_worker, worker_main  # noqa: E402

MIRROR_FAMILY = {"PixelCNN": "pixelcnn", "GatedPixelCNN": "gated_pixelcnn"}


def worker_mirror(family, config, batch_size, steps, precision, compiled):
    import torch
    import torch_mirror

    torch.manual_seed(0)
    model = torch_mirror.FAMILIES[family](
        config["num_layers"],
        config["filters"],
        config["output_filters"],
        config["num_values"],
        num_classes=config["num_classes"],
    ).to(memory_format=torch.channels_last)
    net = torch.compile(model) if compiled else model
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    k, classes = config["num_values"], config["num_classes"]
    images = torch.randint(0, k, (batch_size, 1, 28, 28))
    labels = torch.arange(batch_size) % (classes or 1)

    def step():
        loss = torch_mirror.mean_nll(net, images, labels, k, classes, precision)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    start = time.perf_counter()
    for _ in range(3):
        step()
    warm_up = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return {
        "images_per_s": steps * batch_size / (time.perf_counter() - start),
        "warm_up_s": warm_up,
        "torch": torch.__version__,
    }


def main():
    if worker_main({"mirror": worker_mirror}):
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entry", default="gated_pixelcnn_mnist_conditional")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=5, help="timed training steps")
    args = parser.parse_args()

    from keras_pixel import zoo

    preset = zoo.get_preset(args.entry)
    family_name = preset.model_class.__name__
    family = MIRROR_FAMILY.get(family_name)
    if family is None:
        parser.error(f"{args.entry} is a {family_name}; the mirror has {sorted(MIRROR_FAMILY)}")
    config = import_torch.mirror_config(preset)
    print(f"# {args.entry}, batch {args.batch}, {args.steps} timed steps; {cpu_name()}, "
          f"{os.cpu_count()} logical CPUs")  # fmt: skip
    print("| framework | precision | compiled | train images/s | vs Keras float32 | warm-up s |")
    print("|---|---|---|---|---|---|")
    base = None
    training = os.path.join(HERE, "bench_training.py")
    for policy in ("float32", "mixed_bfloat16"):
        job = dict(
            kind="throughput",
            name=args.entry,
            overrides={},
            batch_size=args.batch,
            steps=args.steps,
            xla=False,
            policy=policy,
        )
        r = run_worker(training, job)
        base = base or r["images_per_s"]
        print(f"| Keras {family_name} | {policy} | no (XLA off) | {r['images_per_s']:.1f} | "
              f"{r['images_per_s'] / base:.2f}x | - |", flush=True)  # fmt: skip
    for precision in ("float32", "bfloat16"):
        for compiled in (False, True):
            job = dict(
                kind="mirror",
                family=family,
                config=config,
                batch_size=args.batch,
                steps=args.steps,
                precision=precision,
                compiled=compiled,
            )
            r = run_worker(__file__, job)
            print(f"| torch {r['torch']} mirror | {precision} | {'yes' if compiled else 'no'} | "
                  f"{r['images_per_s']:.1f} | {r['images_per_s'] / base:.2f}x | "
                  f"{r['warm_up_s']:.0f} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
