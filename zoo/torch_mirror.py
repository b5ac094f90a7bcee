"""A PyTorch mirror of the categorical PixelCNN and Gated PixelCNN, for training
zoo entries on a lent GPU machine that has PyTorch but no TensorFlow
(maintainers' tool; needs only ``torch`` and ``numpy``).

The lent machine (one H200, see the closing notes of issue 19) cannot hold
TensorFlow: nothing can be installed there beyond 64 MiB of wheels. This file
re-states the two families' forward pass layer for layer, so that a network
trained here gives the same logits as the Keras model it names:

* :class:`PixelCNN` = :class:`keras_pixel.models.PixelCNN` (mask-A 7x7 input
  convolution, residual blocks ReLU-1x1-ReLU-kxk-ReLU-1x1, categorical head);
* :class:`GatedPixelCNN` = :class:`keras_pixel.models.GatedPixelCNN`
  (vertical stack padded on top, shifted down into the horizontal stack,
  gates ``tanh * sigmoid``, optional one-hot class conditioning).

Greyscale only (``color_channels=1``, what the MNIST entries use). The kernel
masks come from the package's one masking routine
(``keras_pixel/layers/masking.py``, loaded by path so that TensorFlow is not
imported). :func:`keras_arrays` and :func:`load_keras_arrays` translate the
weights to and from the Keras variables (by path, kernels ``HWIO`` <-> ``OIHW``);
``tests/test_torch_mirror.py`` checks that both frameworks give the same logits.
``zoo/import_torch.py`` turns a trained ``.npz`` into a run folder that
``zoo/publish.py`` publishes; the likelihood on the card is always measured by
the Keras model.

Training (on the GPU machine)::

    python zoo/torch_mirror.py --model pixelcnn --num-layers 15 --filters 64 \\
        --output-filters 256 --num-values 2 --binarize --mnist-dir DIR \\
        --seconds 420 --batch-size 128 --learning-rate 1e-3 --output OUT/NAME

writes ``OUT/NAME.npz`` (the Polyak-averaged weights, keyed by Keras variable
path) and ``OUT/NAME.json`` (steps, seconds, validation history). The run is
sized by time: after 100 timed steps the total step count is fixed from the
measured speed, and the learning rate decays per step to
``final_lr_fraction`` of its peak over exactly that many steps.

The network runs under bfloat16 autocast on a GPU and on a CPU with AMX, in
float32 elsewhere (``--precision``, ``auto`` by default: ``default_precision``;
the loss is float32 in every case). On a CPU with AMX the bfloat16 mirror trains
the conditional Gated PixelCNN entry 3.0x faster than Keras at batch 64, 4.4x
with ``--compile``; on an AVX2-only CPU bfloat16 autocast is emulated and the
step is ~10x slower than in float32, where the mirror is 1.46x Keras with
``--compile`` (``benchmarks/bench_torch_mirror.py``, benchmarks/README.md).
"""

import argparse
import gzip
import importlib.util
import json
import math
import os
import time

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

_PACKAGE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "keras_pixel")


def _load_by_path(name, *parts):
    spec = importlib.util.spec_from_file_location(name, os.path.join(_PACKAGE, *parts))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


masking = _load_by_path("_keras_pixel_masking", "layers", "masking.py")
cpu = _load_by_path("_keras_pixel_cpu", "cpu.py")


def _glorot_(weight):
    nn.init.xavier_uniform_(weight)
    return weight


class MaskedConv2d(nn.Conv2d):
    """``MaskedConv2D`` ("same" padding, odd kernel, greyscale channel groups)."""

    def __init__(self, in_channels, out_channels, kernel_size, mask_type):
        kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
        super().__init__(in_channels, out_channels, (kh, kw), padding=(kh // 2, kw // 2))
        mask = masking.causal_kernel_mask((kh, kw), in_channels, out_channels, mask_type, 1)
        self.register_buffer("mask", torch.from_numpy(mask.transpose(3, 2, 0, 1).copy()))
        _glorot_(self.weight)
        nn.init.zeros_(self.bias)

    def forward(self, x):
        return F.conv2d(x, self.weight * self.mask, self.bias, padding=self.padding)


def _conv(in_channels, out_channels, kernel_size):
    conv = nn.Conv2d(in_channels, out_channels, kernel_size)
    _glorot_(conv.weight)
    nn.init.zeros_(conv.bias)
    return conv


class CategoricalHead(nn.Module):
    def __init__(self, in_channels, output_filters, num_values):
        super().__init__()
        self.hidden_conv = MaskedConv2d(in_channels, output_filters, 1, "B")
        self.logits_conv = MaskedConv2d(output_filters, num_values, 1, "B")

    def forward(self, x):
        return self.logits_conv(F.relu(self.hidden_conv(F.relu(x))))


class ResidualBlock(nn.Module):
    def __init__(self, filters, kernel_size):
        super().__init__()
        self.reduce = MaskedConv2d(2 * filters, filters, 1, "B")
        self.conv = MaskedConv2d(filters, filters, kernel_size, "B")
        self.expand = MaskedConv2d(filters, 2 * filters, 1, "B")

    def forward(self, x):
        h = self.reduce(F.relu(x))
        h = self.conv(F.relu(h))
        return x + self.expand(F.relu(h))


class _Network(nn.Module):
    """The arguments both families take, as the Keras models name them."""

    def __init__(
        self,
        num_layers,
        filters,
        output_filters,
        num_values,
        kernel_size=3,
        first_kernel_size=7,
        num_classes=None,
    ):
        super().__init__()
        self.build_layers(
            num_layers, filters, output_filters, num_values, kernel_size, first_kernel_size,
            num_classes,
        )  # fmt: skip


class PixelCNN(_Network):
    """``[B, 1, H, W]`` images scaled to [-1, 1] -> logits ``[B, K, H, W]``."""

    def build_layers(self, num_layers, filters, output_filters, num_values, kernel_size,
                     first_kernel_size, num_classes):  # fmt: skip
        if num_classes is not None:
            raise ValueError("PixelCNN takes no conditioning.")
        self.input_conv = MaskedConv2d(1, 2 * filters, first_kernel_size, "A")
        self.blocks = nn.ModuleList(ResidualBlock(filters, kernel_size) for _ in range(num_layers))
        self.head = CategoricalHead(2 * filters, output_filters, num_values)

    def forward(self, x, condition=None):
        h = self.input_conv(x)
        for block in self.blocks:
            h = block(h)
        return self.head(h)


def _gate(x):
    a, b = torch.chunk(x, 2, dim=1)
    return torch.tanh(a) * torch.sigmoid(b)


class GatedBlock(nn.Module):
    def __init__(self, in_channels, filters, kernel_size, first, num_classes):
        super().__init__()
        k, f = kernel_size, filters
        self.kernel_size, self.first = k, first
        self.vertical = _conv(in_channels, 2 * f, (k // 2 + 1, k))
        self.v_to_h = _conv(2 * f, 2 * f, 1)
        self.horizontal = MaskedConv2d(in_channels, 2 * f, (1, k), "A" if first else "B")
        self.h_out = MaskedConv2d(f, f, 1, "B")
        if num_classes is not None:
            self.v_condition = nn.Linear(num_classes, 2 * f, bias=False)
            self.h_condition = nn.Linear(num_classes, 2 * f, bias=False)
            _glorot_(self.v_condition.weight)
            _glorot_(self.h_condition.weight)

    def forward(self, v, h, condition=None):
        k = self.kernel_size
        v_pre = self.vertical(F.pad(v, (k // 2, k // 2, k // 2, 0)))
        h_pre = self.horizontal(h)
        if condition is not None:
            v_pre = v_pre + self.v_condition(condition)[:, :, None, None]
            h_pre = h_pre + self.h_condition(condition)[:, :, None, None]
        h_pre = h_pre + self.v_to_h(F.pad(v_pre, (0, 0, 1, 0))[:, :, :-1])
        h_out = self.h_out(_gate(h_pre))
        return _gate(v_pre), (h_out if self.first else h_out + h)


class GatedPixelCNN(_Network):
    """``[B, 1, H, W]`` images scaled to [-1, 1] (and one-hot labels) -> logits
    ``[B, K, H, W]``."""

    def build_layers(self, num_layers, filters, output_filters, num_values, kernel_size,
                     first_kernel_size, num_classes):  # fmt: skip
        self.blocks = nn.ModuleList(
            GatedBlock(
                1 if i == 0 else filters,
                filters,
                first_kernel_size if i == 0 else kernel_size,
                i == 0,
                num_classes,
            )
            for i in range(num_layers)
        )
        self.head = CategoricalHead(filters, output_filters, num_values)

    def forward(self, x, condition=None):
        v = h = x
        for block in self.blocks:
            v, h = block(v, h, condition)
        return self.head(h)


FAMILIES = {"pixelcnn": PixelCNN, "gated_pixelcnn": GatedPixelCNN}


def _keras_name(torch_name):
    """``blocks.3.conv.weight`` -> ``block_3/conv/kernel``."""
    parts = torch_name.split(".")
    if parts[0] == "blocks":
        parts = [f"block_{parts[1]}"] + parts[2:]
    leaf = {"weight": "kernel", "bias": "bias"}[parts[-1]]
    return "/".join(parts[:-1] + [leaf])


def keras_arrays(module):
    """The module's weights as ``{Keras variable path (no model prefix): array}``."""
    out = {}
    for name, param in module.named_parameters():
        value = param.detach().float().cpu().numpy()
        if value.ndim == 4:
            value = value.transpose(2, 3, 1, 0)
        elif value.ndim == 2:
            value = value.T
        out[_keras_name(name)] = np.ascontiguousarray(value)
    return out


def load_keras_arrays(module, arrays):
    """Sets the module's weights from :func:`keras_arrays`' layout; every weight
    must be given, with its shape."""
    missing = []
    with torch.no_grad():
        for name, param in module.named_parameters():
            key = _keras_name(name)
            if key not in arrays:
                missing.append(key)
                continue
            value = np.asarray(arrays[key], dtype=np.float32)
            if value.ndim == 4:
                value = value.transpose(3, 2, 0, 1)
            elif value.ndim == 2:
                value = value.T
            if tuple(value.shape) != tuple(param.shape):
                raise ValueError(
                    f"{key}: shape {value.shape}, the mirror has {tuple(param.shape)}."
                )
            param.copy_(torch.from_numpy(np.ascontiguousarray(value)))
    if missing:
        raise ValueError(f"No value for {missing}.")


def read_idx(path):
    """An MNIST idx file (gzipped or not) -> uint8 array."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(shape)


def load_mnist(directory, split):
    prefix = "train" if split == "train" else "t10k"
    images = read_idx(os.path.join(directory, f"{prefix}-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(directory, f"{prefix}-labels-idx1-ubyte.gz"))
    return images[..., None], labels


def binarize_test_set(images):
    """``keras_pixel.data.binarize(images, seed=0, num_values=2)``, restated in numpy."""
    rng = np.random.default_rng(0)
    return np.where(rng.random(images.shape) < images / 255.0, 1, 0).astype(np.uint8)


def mean_nll(net, images, labels, num_values, num_classes=None, precision="bfloat16"):
    """Mean nats per subpixel of integer ``images`` ``[B, 1, H, W]`` in
    ``[0, num_values)`` under ``net`` (``labels`` ``[B]`` integers, or None),
    with the network under ``precision`` autocast and the loss in float32."""
    x = images.float() * (2.0 / (num_values - 1)) - 1.0
    condition = None if num_classes is None else F.one_hot(labels, num_classes).float()
    with torch.autocast(images.device.type, torch.bfloat16, enabled=precision == "bfloat16"):
        logits = net(x.contiguous(memory_format=torch.channels_last), condition)
    return F.cross_entropy(logits.float(), images[:, 0])


def device_name(device):
    """The GPU's name, or the CPU's model name (``/proc/cpuinfo``)."""
    if device.type == "cuda":
        return torch.cuda.get_device_name()
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
    except OSError:
        names = []
    return f"cpu: {names[0]} ({len(names)} threads)" if names else "cpu"


def default_precision(device_type, cpu_flags=None):
    """The autocast dtype that ``--precision auto`` picks: ``"bfloat16"`` on a
    GPU and on a CPU with AMX (``amx_bf16`` among ``cpu_flags``, by default
    those of ``/proc/cpuinfo``), ``"float32"`` on any other CPU.

    Measured by ``benchmarks/bench_torch_mirror.py`` (conditional Gated
    PixelCNN, batch 64, ``--compile``): bfloat16 is 2.8x float32 on a 2-core
    Intel Xeon with AMX, 0.10x on a 2-core AVX2-only AMD EPYC. A CPU with
    AVX512_BF16 but no AMX is unmeasured and keeps float32."""
    if device_type != "cpu":
        return "bfloat16"
    if cpu_flags is None:
        cpu_flags = cpu.cpu_flags()
    return "bfloat16" if "amx_bf16" in cpu_flags else "float32"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=sorted(FAMILIES), required=True)
    parser.add_argument("--num-layers", type=int, required=True)
    parser.add_argument("--filters", type=int, required=True)
    parser.add_argument("--output-filters", type=int, required=True)
    parser.add_argument("--num-values", type=int, default=256)
    parser.add_argument("--num-classes", type=int, default=None)
    parser.add_argument("--binarize", action="store_true")
    parser.add_argument("--mnist-dir", required=True)
    parser.add_argument("--seconds", type=float, required=True, help="training time budget")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--warmup-steps", type=int, default=200)
    parser.add_argument("--final-lr-fraction", type=float, default=0.02)
    parser.add_argument("--ema", type=float, default=0.9995)
    parser.add_argument("--init", default=None, help="start from this run's .npz (fine-tuning)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--precision",
        choices=("auto", "bfloat16", "float32"),
        default="auto",
        help="autocast dtype of the network (the loss is float32); auto: bfloat16 on a GPU "
        "and on a CPU with AMX, float32 elsewhere (recorded resolved)",
    )
    parser.add_argument(
        "--compile", action="store_true", help="torch.compile the network for training steps"
    )
    parser.add_argument("--output", required=True, help="path prefix of the .npz and .json")
    args = parser.parse_args()
    if args.binarize != (args.num_values == 2) or args.num_values not in (2, 256):
        parser.error("MNIST is modelled with --num-values 256, or 2 with --binarize")

    torch.manual_seed(args.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if args.precision == "auto":
        args.precision = default_precision(device.type)
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    model = FAMILIES[args.model](
        args.num_layers,
        args.filters,
        args.output_filters,
        args.num_values,
        num_classes=args.num_classes,
    )
    if args.init:
        load_keras_arrays(model, dict(np.load(args.init)))
    model = model.to(device).to(memory_format=torch.channels_last)
    train_net = torch.compile(model) if args.compile else model
    params = list(model.parameters())
    ema = [p.detach().clone() for p in params]
    optimizer = torch.optim.Adam(
        model.parameters(), lr=args.learning_rate, fused=device.type == "cuda"
    )

    train_x, train_y = load_mnist(args.mnist_dir, "train")
    test_x, test_y = load_mnist(args.mnist_dir, "test")
    if args.binarize:
        test_x = binarize_test_set(test_x)
    train_x = torch.from_numpy(train_x.copy()).to(device).permute(0, 3, 1, 2).float()
    train_y = torch.from_numpy(train_y.astype(np.int64)).to(device)
    test_x = torch.from_numpy(test_x.copy()).to(device).permute(0, 3, 1, 2).long()
    test_y = torch.from_numpy(test_y.astype(np.int64)).to(device)

    def nll(net, images, labels):
        return mean_nll(net, images, labels, args.num_values, args.num_classes, args.precision)

    def swap_in_average():
        with torch.no_grad():
            for p, e in zip(params, ema, strict=True):
                p.data, e.data = e.data, p.data

    def evaluate(count=None):
        swap_in_average()
        total, n = 0.0, test_x.shape[0] if count is None else count
        with torch.no_grad():
            for i in range(0, n, 1000):
                total += float(nll(model, test_x[i : i + 1000], test_y[i : i + 1000])) * min(
                    1000, n - i
                )
        swap_in_average()
        nats_per_subpixel = total / n
        return nats_per_subpixel / math.log(2.0), nats_per_subpixel * test_x[0].numel()

    def batch():
        idx = torch.randint(0, train_x.shape[0], (args.batch_size,), device=device)
        images = train_x[idx]
        if args.binarize:
            images = (torch.rand_like(images) < images / 255.0).long()
        else:
            images = images.long()
        return images, train_y[idx]

    def save(steps, seconds, history, final=False):
        """Writes the averaged weights and the run's record (each whole: a
        temporary name, then a rename), so that a run stopped early keeps its
        last evaluated state."""
        bpd, nats = evaluate() if final else (None, None)
        swap_in_average()
        arrays = keras_arrays(model)
        swap_in_average()
        np.savez(args.output + ".partial.npz", **arrays)
        os.replace(args.output + ".partial.npz", args.output + ".npz")
        summary = dict(
            args=vars(args),
            steps=steps,
            train_seconds=round(seconds, 1),
            total_steps=total_steps,
            epochs=round(steps * args.batch_size / train_x.shape[0], 2),
            finished=final,
            test_bits_per_dim=bpd,
            test_nats=nats,
            history=history,
            device=device_name(device),
            torch=torch.__version__,
        )
        with open(args.output + ".partial.json", "w") as f:
            json.dump(summary, f, indent=1)
        os.replace(args.output + ".partial.json", args.output + ".json")
        return summary

    start = time.time()
    total_steps, history, step = None, [], 0
    decay = 1.0
    while total_steps is None or step < total_steps:
        if step == 100:
            torch.cuda.synchronize() if device.type == "cuda" else None
            timed_from = time.time()
        if step == 200 and total_steps is None:
            torch.cuda.synchronize() if device.type == "cuda" else None
            rate = 100 / (time.time() - timed_from)
            total_steps = max(300, int(200 + rate * (args.seconds - (time.time() - start))))
            decay = args.final_lr_fraction ** (1.0 / max(1, total_steps - args.warmup_steps))
            print(f"{rate:.1f} steps/s: {total_steps} steps", flush=True)
        lr = args.learning_rate * min(1.0, (step + 1) / args.warmup_steps)
        if total_steps is not None and step > args.warmup_steps:
            lr = args.learning_rate * decay ** (step - args.warmup_steps)
        for group in optimizer.param_groups:
            group["lr"] = lr
        images, labels = batch()
        loss = nll(train_net, images, labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        momentum = min(args.ema, (1 + step) / (10 + step))
        with torch.no_grad():
            torch._foreach_lerp_(ema, [p.detach() for p in params], 1 - momentum)
        step += 1
        if step % 2000 == 0 or step == total_steps:
            bpd, nats = evaluate(2000)
            row = dict(
                step=step,
                seconds=round(time.time() - start, 1),
                lr=lr,
                train_loss=float(loss.detach()),
                val_bpd_2000=bpd,
                val_nats_2000=nats,
            )
            history.append(row)
            print(json.dumps(row), flush=True)
            save(step, time.time() - start, history)
    summary = save(step, time.time() - start, history, final=True)
    print(
        json.dumps(
            {
                k: summary[k]
                for k in ("steps", "train_seconds", "epochs", "test_bits_per_dim", "test_nats")
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
