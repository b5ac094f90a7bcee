"""The one causality checker: for models by perturbation, for layers by gradients.

Raster order of subpixels: rows, then columns, then channels R, G, B; the
subpixel ``(i, j, c)`` of an ``[H, W, C]`` image has flat index
``(i * W + j) * C + c``.
"""

import numpy as np
import tensorflow as tf

from keras_pixel.layers.masking import channel_groups
from keras_pixel.validation import image_dtype


def assert_autoregressive(
    model, images=None, num_positions=8, seed=0, atol=1e-5, min_change=1e-6, log_prob_fn=None
):
    """Checks that ``model`` is autoregressive by perturbing single subpixels.

    For each of ``num_positions`` random subpixels p (never the last one), the
    image value at p is changed; then the unreduced log-prob must be unchanged
    (within ``atol``) at every subpixel before p, and must change (by more than
    ``min_change``) at some subpixel after p, so the check fails both for a model
    that sees the future and for one that ignores the past.

    Args:
        model: an ``AutoregressiveModel``.
        images: integer ``[B, H, W, C]`` in ``[0, model.num_values)``; random
            images if None.
        num_positions: how many subpixels to perturb.
        seed: chooses positions, images and new values.
        atol: tolerance for "unchanged".
        min_change: threshold for "changed".
        log_prob_fn: ``images -> [B, H, W, C]`` log-probs; defaults to
            ``model.log_prob(images, reduce=False)`` (pass one for conditional
            models, to bind the labels).

    Returns:
        The perturbed positions (flat raster indices).
    """
    rng = np.random.default_rng(seed)
    shape = tuple(model.image_shape)
    num_values = getattr(model, "num_values", 256)
    if images is None:
        images = rng.integers(0, num_values, (2, *shape))
    images = np.asarray(images).astype(image_dtype(num_values))
    log_prob_fn = log_prob_fn or (lambda x: model.log_prob(x, reduce=False))
    total = int(np.prod(shape))
    base = np.asarray(log_prob_fn(images)).reshape(len(images), total)
    positions = rng.choice(total - 1, size=min(num_positions, total - 1), replace=False)
    for p in sorted(int(p) for p in positions):
        perturbed = images.reshape(len(images), total).copy()
        shift = rng.integers(max(1, num_values // 4), max(2, 3 * num_values // 4))
        perturbed[:, p] = (perturbed[:, p].astype(np.int64) + shift) % num_values
        changed = np.asarray(log_prob_fn(perturbed.reshape(images.shape))).reshape(
            len(images), total
        )
        diff = np.abs(changed - base)
        where = np.unravel_index(p, shape)
        leak = diff[:, :p].max() if p else 0.0
        if leak > atol:
            first = int(np.argmax(diff[:, :p].max(axis=0) > atol))
            raise AssertionError(
                f"Not causal: changing subpixel {where} (index {p}) changed the log-prob of "
                f"the earlier subpixel {np.unravel_index(first, shape)} by {leak:.3g}."
            )
        if diff[:, p + 1 :].max() <= min_change:
            raise AssertionError(
                f"Changing subpixel {where} (index {p}) changed nothing after it: the model "
                "ignores its past."
            )
    return positions


def layer_dependency_mask(spatial_shape, in_channels, out_channels, mask_type, color_channels):
    """Which input subpixels each output may depend on, for a causal layer.

    Output ``(i, j, g')`` may see input ``(i2, j2, g)`` when ``(i2, j2)`` comes
    before ``(i, j)`` in raster order, or is ``(i, j)`` itself with colour group
    ``g < g'`` (mask A) or ``g <= g'`` (mask B).

    Returns:
        bool ``[H, W, out_channels, H, W, in_channels]``.
    """
    h, w = spatial_shape
    order = np.arange(h * w).reshape(h, w)
    before = order[:, :, None, None] > order[None, None, :, :]
    same = order[:, :, None, None] == order[None, None, :, :]
    g_in = channel_groups(in_channels, color_channels)
    g_out = channel_groups(out_channels, color_channels)
    center = (
        (g_in[None, :] < g_out[:, None]) if mask_type == "A" else (g_in[None, :] <= g_out[:, None])
    )
    allowed = before[:, :, None, :, :, None] | (
        same[:, :, None, :, :, None] & center[None, None, :, None, None, :]
    )
    return allowed


def assert_layer_causal(
    layer, input_shape, mask_type, color_channels, seed=0, output_fn=None, pointwise=False
):
    """Checks a layer's causal structure exactly, from its Jacobian.

    The gradient of every output ``(i, j, channel)`` must be zero with respect
    to every input it may not see (:func:`layer_dependency_mask`) and nonzero
    for some inputs it may see at its own pixel and (unless ``pointwise``) at
    earlier pixels, so a layer that drops the allowed context fails too.

    Args:
        layer: a Keras layer ``[B, H, W, C_in] -> [B, H, W, C_out]``.
        input_shape: ``(H, W, C_in)``.
        mask_type: ``"A"`` or ``"B"``: what the layer's centre tap allows.
        color_channels: 1 or 3.
        seed: for the random input.
        output_fn: maps the layer's output to ``[B, H, W, C_out]`` (e.g. to pick
            one stream of a multi-output layer).
        pointwise: the layer reads only its own pixel (a 1x1 convolution).
    """
    rng = np.random.default_rng(seed)
    x = tf.constant(rng.normal(size=(1, *input_shape)).astype("float32"))
    output_fn = output_fn or (lambda y: y)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = output_fn(layer(x))
    jac = tape.jacobian(y, x)[0, :, :, :, 0].numpy()
    h, w, c_in = input_shape
    c_out = jac.shape[2]
    allowed = layer_dependency_mask((h, w), c_in, c_out, mask_type, color_channels)
    nonzero = np.abs(jac) > 0
    bad = nonzero & ~allowed
    if bad.any():
        i, j, co, i2, j2, ci = np.argwhere(bad)[0]
        raise AssertionError(
            f"Not causal: output ({i}, {j}, channel {co}) depends on input ({i2}, {j2}, "
            f"channel {ci}), which it may not see (mask {mask_type}, "
            f"color_channels={color_channels})."
        )
    order = np.arange(h * w).reshape(h, w)
    same = (order[:, :, None, None] == order[None, None, :, :])[:, :, None, :, :, None]
    if (allowed & same).any() and not (nonzero & allowed & same).any():
        raise AssertionError("The layer ignores the current pixel's allowed channels.")
    earlier = (nonzero & ~same).any()
    if pointwise and earlier:
        raise AssertionError("A pointwise layer depends on other pixels.")
    if not pointwise and not earlier:
        raise AssertionError("The layer ignores every earlier pixel.")
