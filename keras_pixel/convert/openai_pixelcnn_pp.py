"""Reads the PixelCNN++ checkpoints that openai/pixel-cnn's ``train.py`` writes
(TensorFlow 1, ``tf.train.Saver``) into :class:`~keras_pixel.models.PixelCNNPlusPlus`.

The published CIFAR-10 model (``params_cifar.ckpt`` in the ``pxpp.zip`` archive,
2.92 bits/dim in the paper) is such a checkpoint. Its variables are named by the
reference code's layer counters, in the order its ``model_spec`` creates them
under a ``tf.make_template("model", ...)`` scope:

- ``model/conv2d_{n}/{V,g,b}``: every (down- or down-right-) shifted convolution,
  the strided ones included; ``V`` is ``[kh, kw, in, out]``;
- ``model/deconv2d_{n}/{V,g,b}``: the transposed convolutions, ``V`` ``[kh, kw, out, in]``;
- ``model/dense_{n}/{V,g,b}``: the ``nin`` (1 x 1) layers, ``V`` ``[in, out]``;
- ``model/conditional_weights_{n}/hw``: a conditional model's projection of ``h``;
- each with its Polyak average ``.../ExponentialMovingAverage``, which the
  paper's evaluation used.

Weight normalization is the same parameterization as
:class:`~keras_pixel.layers.WeightNormalization` (``w = g * V / ||V||``, the norm
over every axis but the output channels), so ``V``, ``g`` and ``b`` are copied as
they are. The one layout that differs is the output layer's: the reference
orders the mixture parameters ``[logits (K), then per channel c: means (K),
log-scales (K), coefficients (K)]``, ours ``[logits, locs, log-scales, coefficients]``
component-major; its columns are permuted on the way in.

Everything else (two streams, the channel of ones, shifts, concat_elu, the
skip connections popped in reverse and concatenated as ``[u, ul]``, gates
``a * sigmoid(b)``, the likelihood's edge bins at 0 and 255, log-scales
clamped at -7) is the same computation in our model. One difference remains
where it cannot matter for a trained model: for an interior bin with mass
below 1e-5 the reference uses a density approximation, we the exact mass.
"""

import glob
import os

import numpy as np

EMA_SUFFIX = "/ExponentialMovingAverage"
SCOPE = "model/"


class CheckpointMismatchError(ValueError):
    """The checkpoint is not the reference code's PixelCNN++ of this configuration
    (a variable missing, unexpected or of the wrong shape)."""


def resolve_checkpoint(path):
    """The checkpoint prefix behind ``path``: the prefix itself
    (``params_cifar.ckpt``), its ``.index`` or ``.data-*`` file, or a folder that
    holds one checkpoint (the one its ``checkpoint`` file names, else its only
    ``*.index``).

    Raises:
        FileNotFoundError: nothing there, or a folder with no checkpoint or several.
    """
    import tensorflow as tf

    path = os.fspath(path)
    if os.path.isdir(path):
        latest = tf.train.latest_checkpoint(path)
        if latest and os.path.exists(latest + ".index"):
            return latest
        indexes = sorted(glob.glob(os.path.join(path, "*.index")))
        if len(indexes) != 1:
            found = ", ".join(os.path.basename(i) for i in indexes) or "none"
            raise FileNotFoundError(
                f"{path} should hold one TensorFlow checkpoint (a NAME.index and its "
                f"NAME.data-* files); found {found}. Pass the checkpoint's prefix instead."
            )
        return indexes[0][: -len(".index")]
    if path.endswith(".index"):
        path = path[: -len(".index")]
    elif ".data-" in os.path.basename(path):
        path = path[: path.rindex(".data-")]
    if os.path.exists(path + ".index"):
        return path
    raise FileNotFoundError(
        f"No TensorFlow checkpoint at {path}: expected {path}.index and {path}.data-* "
        "(unzip pxpp.zip and pass .../params_cifar.ckpt or its folder)."
    )


def is_checkpoint(path):
    """Whether ``path`` names a TensorFlow checkpoint (see :func:`resolve_checkpoint`)
    rather than a Keras weights file; a folder counts as one (a Keras weights
    file never is a folder)."""
    path = os.fspath(path)
    if path.endswith((".keras", ".h5")) or "://" in path:
        return False
    if os.path.isdir(path):
        return True
    try:
        resolve_checkpoint(path)
    except FileNotFoundError:
        return False
    return True


def _reference_layers(model):
    """Our layers in the order the reference ``model_spec`` creates its variables,
    as ``(kind, layer)`` with ``kind`` one of ``conv2d``, ``deconv2d``, ``dense``,
    ``conditional_weights``."""
    layers = [("conv2d", model.u_init), ("conv2d", model.ul_init_down)]
    layers.append(("conv2d", model.ul_init_right))

    def block(b):
        found = [("conv2d", b.conv1)]
        if b.nin is not None:
            found.append(("dense", b.nin))
        found.append(("conv2d", b.conv2))
        if b.condition_proj is not None:
            found.append(("conditional_weights", b.condition_proj))
        return found

    levels = model.num_hierarchies
    for level in range(levels):
        if level > 0:
            layers += [("conv2d", model.u_downsample[level - 1])]
            layers += [("conv2d", model.ul_downsample[level - 1])]
        for u_block, ul_block in zip(model.up_u[level], model.up_ul[level], strict=True):
            layers += block(u_block) + block(ul_block)
    for h in range(levels):
        if h > 0:
            layers += [("deconv2d", model.u_upsample[h - 1])]
            layers += [("deconv2d", model.ul_upsample[h - 1])]
        for u_block, ul_block in zip(model.down_u[h], model.down_ul[h], strict=True):
            layers += block(u_block) + block(ul_block)
    layers.append(("dense", model.output_layer))
    return layers


def output_permutation(num_logistic_mix, channels=3):
    """``perm`` with ``ours[..., i] = reference[..., perm[i]]`` for the output
    layer's ``10 K`` parameters (C = 3): logits, then locs, log-scales and
    coefficients, each ``[K, C]`` component-major, taken from the reference's
    per-channel blocks ``[means, log-scales, coefficients]`` of ``K`` each."""
    if channels != 3:
        raise ValueError("The reference PixelCNN++ models RGB images (3 channels).")
    k = num_logistic_mix
    logits = list(range(k))
    blocks = [
        [k + c * 3 * k + part * k + j for j in range(k) for c in range(3)] for part in range(3)
    ]
    return np.array(logits + blocks[0] + blocks[1] + blocks[2])


def variable_plan(model):
    """``[(checkpoint name, our variable, transform)]`` for every variable of
    ``model``: what the reference code names it, and the function (or None) that
    turns the checkpoint's array into ours.

    Raises:
        ValueError: a model the reference code cannot have written (not
            weight-normalized, or not RGB).
    """
    from keras_pixel.layers.weight_norm import WeightNormalization
    from keras_pixel.models.pixelcnn_pp import PixelCNNPlusPlus

    if not isinstance(model, PixelCNNPlusPlus):
        raise ValueError(
            f"openai/pixel-cnn checkpoints hold PixelCNN++ weights; {model.name} is a "
            f"{type(model).__name__}."
        )
    if not model.weight_norm or model.image_shape[-1] != 3:
        raise ValueError(
            "The reference PixelCNN++ is weight-normalized and models RGB images; build the "
            "model with weight_norm=True and image_shape (H, W, 3)."
        )
    permute = output_permutation(model.num_logistic_mix)
    plan, counters = [], {}
    for kind, layer in _reference_layers(model):
        scope = f"{SCOPE}{kind}_{counters.setdefault(kind, 0)}"
        counters[kind] += 1
        if kind == "conditional_weights":
            plan.append((f"{scope}/hw", layer.kernel, None))
            continue
        if not isinstance(layer, WeightNormalization):
            raise ValueError(f"{layer.name} is not weight-normalized.")
        transform = None
        if layer is model.output_layer:
            transform = (lambda a, p=permute: a[..., p]), (lambda a, p=permute: a[p])
        plan += [
            (f"{scope}/V", layer.layer.kernel, transform and transform[0]),
            (f"{scope}/g", layer.g, transform and transform[1]),
            (f"{scope}/b", layer.layer.bias, transform and transform[1]),
        ]
    covered = {id(v) for _, v, _ in plan}
    missed = [w.path for w in model.weights if id(w) not in covered]
    if missed:
        raise ValueError(f"No reference variable for {', '.join(missed)}.")
    return plan


def check_variables(model, shapes, use_ema=True):
    """Checks a checkpoint's ``{name: shape}`` against ``model``; returns the plan
    ``[(name to read, our variable, transform)]``.

    Every variable of the model must be there (its Polyak average with
    ``use_ema``) with our shape; nothing under ``model/`` may be left over.
    Variables outside that scope (the reference ``train.py`` keeps Adam's
    moments in unscoped ``Variable``, ``Variable_1``, ...) are ignored.

    Raises:
        CheckpointMismatchError: naming every missing, unexpected or mis-shaped
            variable (the first few of each).
    """
    plan = variable_plan(model)
    scoped = {name: tuple(shape) for name, shape in shapes.items() if name.startswith(SCOPE)}
    if not scoped:
        raise CheckpointMismatchError(
            "Not an openai/pixel-cnn PixelCNN++ checkpoint: no variable under 'model/' "
            f"(it holds {len(shapes)} others, e.g. {', '.join(sorted(shapes)[:3]) or 'none'})."
        )
    expected = {name for name, _, _ in plan} | {name + EMA_SUFFIX for name, _, _ in plan}
    unexpected = sorted(set(scoped) - expected)
    missing, misshaped, reads = [], [], []
    for name, variable, transform in plan:
        key = name + EMA_SUFFIX if use_ema else name
        want = tuple(variable.shape)
        if key not in scoped:
            missing.append(key)
        elif scoped[key] != want:
            misshaped.append(f"{key} {list(scoped[key])} (the model's is {list(want)})")
        reads.append((key, variable, transform))
    problems = []
    for label, items in (
        ("missing", missing),
        ("unexpected", unexpected),
        ("of the wrong shape", misshaped),
    ):
        if items:
            more = f" and {len(items) - 5} more" if len(items) > 5 else ""
            problems.append(f"{len(items)} {label}: {', '.join(items[:5])}{more}")
    if problems:
        hint = ""
        if missing and all(m.endswith(EMA_SUFFIX) for m in missing) and not misshaped:
            hint = " Without the Polyak averages, pass use_ema=False (--raw) for the raw weights."
        raise CheckpointMismatchError(
            f"The checkpoint does not fit {model.name} (num_resnet={model.num_resnet}, "
            f"num_hierarchies={model.num_hierarchies}, num_filters={model.num_filters}, "
            f"num_logistic_mix={model.num_logistic_mix}, image_shape={model.image_shape}): "
            + "; ".join(problems)
            + "."
            + hint
        )
    return reads


def load_openai_checkpoint(model, path, use_ema=True):
    """Loads an openai/pixel-cnn PixelCNN++ checkpoint into ``model``, whole or not
    at all.

    Args:
        model: a built :class:`~keras_pixel.models.PixelCNNPlusPlus` of the
            checkpoint's configuration (``zoo.load("pixelcnn_pp_cifar",
            weights=None)`` for the published CIFAR-10 model).
        path: the checkpoint (see :func:`resolve_checkpoint`).
        use_ema: take the Polyak-averaged (``ExponentialMovingAverage``) weights,
            as the paper's evaluation did; False: the raw ones.

    Returns:
        The number of variables loaded.

    Raises:
        FileNotFoundError: no checkpoint at ``path``.
        CheckpointMismatchError: another architecture or configuration.
        ValueError: a corrupt or truncated checkpoint. In every case the model's
            weights are unchanged.
    """
    import tensorflow as tf

    prefix = resolve_checkpoint(path)
    try:
        reader = tf.train.load_checkpoint(prefix)
        shapes = reader.get_variable_to_shape_map()
    except (tf.errors.OpError, ValueError, IndexError, RuntimeError) as error:
        raise ValueError(f"{prefix} is not a readable TensorFlow checkpoint: {error}") from None
    reads = check_variables(model, shapes, use_ema)
    values = []
    for key, _, transform in reads:
        try:
            value = np.asarray(reader.get_tensor(key), np.float32)
        except (tf.errors.OpError, ValueError, IndexError, RuntimeError) as error:
            raise ValueError(
                f"Could not read {key} from {prefix} (corrupt or truncated file): "
                f"{str(error).splitlines()[0]}"
            ) from None
        if not np.all(np.isfinite(value)):
            raise ValueError(f"{key} in {prefix} holds non-finite values.")
        values.append(value if transform is None else transform(value))
    for (_, variable, _), value in zip(reads, values, strict=True):
        variable.assign(value)
    return len(reads)


def convert_checkpoint(model, path, output, use_ema=True, overwrite=False):
    """Converts an openai/pixel-cnn checkpoint into our ``.weights.h5`` once
    (what ``keras-pixel convert openai-pixelcnn-pp`` runs).

    The file appears at ``output`` only when the conversion succeeded (written
    beside it and moved into place in one rename).

    Args:
        model: a built :class:`~keras_pixel.models.PixelCNNPlusPlus` of the
            checkpoint's configuration (``zoo.load("pixelcnn_pp_cifar",
            weights=None)`` for the published CIFAR-10 model); it receives the
            weights.
        path: the checkpoint (see :func:`resolve_checkpoint`).
        output: the ``.weights.h5`` file to write.
        use_ema: Polyak-averaged weights (default) or raw ones.
        overwrite: replace an existing ``output``.

    Returns:
        The absolute path of the written file.
    """
    from keras_pixel.export.saved_model import publish_atomically

    output = os.fspath(output)
    if not output.endswith(".weights.h5"):
        raise ValueError(f"The output must be a .weights.h5 file, got {output}.")
    if os.path.lexists(output) and not overwrite:
        raise FileExistsError(f"{output} already exists; pass overwrite=True to replace it.")
    load_openai_checkpoint(model, path, use_ema)

    def write(tmp):
        model.save_weights(tmp + ".weights.h5")
        os.replace(tmp + ".weights.h5", tmp)

    return publish_atomically(write, output, overwrite)
