"""The one causal-mask routine of the package.

Every masked layer (``MaskedConv2D`` and the input-to-state convolutions of the
recurrent and gated layers) gets its kernel mask from :func:`causal_kernel_mask`,
so the raster order and the colour-group convention are defined in one place.

Colour-group convention: with ``color_channels=3`` the channels of every feature
map are split into three *contiguous* groups of equal size, R = the first third,
G = the second, B = the last. An image's own channels (R, G, B) are the special
case of one channel per group, and a ``3 * 256`` logit map reshaped to
``[3, 256]`` puts the logits of R, G and B in groups 0, 1 and 2.
"""

import numpy as np

MASK_TYPES = ("A", "B")


def validate_mask_type(mask_type):
    """Returns the upper-cased mask type, or raises ``ValueError``."""
    if not isinstance(mask_type, str) or mask_type.upper() not in MASK_TYPES:
        raise ValueError(f"mask_type must be 'A' or 'B', got {mask_type!r}.")
    return mask_type.upper()


def validate_color_channels(color_channels):
    """Returns ``color_channels`` if it is 1 or 3, else raises ``ValueError``."""
    if color_channels not in (1, 3):
        raise ValueError(f"color_channels must be 1 or 3, got {color_channels!r}.")
    return color_channels


def channel_groups(num_channels, color_channels):
    """Colour group (0 = R, 1 = G, 2 = B) of each of ``num_channels`` channels.

    Returns:
        int array of shape ``[num_channels]``; all zeros when ``color_channels=1``.
    """
    if num_channels % color_channels:
        raise ValueError(
            f"{num_channels} channels cannot be split into {color_channels} equal colour "
            f"groups: the channel count must be divisible by color_channels."
        )
    return np.arange(num_channels) // (num_channels // color_channels)


def center_connectivity(in_channels, out_channels, mask_type, color_channels):
    """Which input channels the centre tap connects to which output channels.

    Input group ``g`` reaches output group ``g'`` when ``g < g'`` (mask A) or
    ``g <= g'`` (mask B), as in section 3.4 of the PixelRNN paper.

    Returns:
        float32 array of shape ``[in_channels, out_channels]`` of zeros and ones.
    """
    mask_type = validate_mask_type(mask_type)
    g_in = channel_groups(in_channels, color_channels)[:, None]
    g_out = channel_groups(out_channels, color_channels)[None, :]
    allowed = g_in < g_out if mask_type == "A" else g_in <= g_out
    return allowed.astype("float32")


def causal_kernel_mask(kernel_size, in_channels, out_channels, mask_type, color_channels):
    """The 0/1 mask of a 2-D convolution kernel that only sees the past.

    The taps in the rows above the centre and to the left of the centre in its
    row are kept; taps below or to the right are zeroed; the centre tap follows
    :func:`center_connectivity`.

    Args:
        kernel_size: ``(kh, kw)``, both odd.
        in_channels: input channels of the convolution.
        out_channels: output channels (filters).
        mask_type: ``"A"`` (the centre subpixel excluded: the first layer) or
            ``"B"`` (included: every later layer).
        color_channels: 1 or 3.

    Returns:
        float32 array of shape ``[kh, kw, in_channels, out_channels]``.
    """
    kh, kw = kernel_size
    if kh % 2 == 0 or kw % 2 == 0:
        raise ValueError(
            f"Masked convolutions need an odd kernel size so that the centre tap is the "
            f"current pixel, got kernel_size={tuple(kernel_size)}."
        )
    validate_color_channels(color_channels)
    mask = np.zeros((kh, kw, in_channels, out_channels), dtype="float32")
    ch, cw = kh // 2, kw // 2
    mask[:ch] = 1.0
    mask[ch, :cw] = 1.0
    mask[ch, cw] = center_connectivity(in_channels, out_channels, mask_type, color_channels)
    return mask


def split_groups(x, num_parts, color_channels):
    """Splits the channels of ``x`` into ``num_parts`` tensors, colour group by group.

    ``x`` ``[..., N]`` holds ``color_channels`` contiguous groups; each group is
    cut into ``num_parts`` equal pieces and part ``p`` gathers piece ``p`` of every
    group, in group order. So channel ``k`` of every part ``[..., N / num_parts]``
    belongs to the same colour group as the channels it was read from: gates and
    gated units computed part by part keep the R -> G -> B structure.
    """
    from keras import ops

    channels = x.shape[-1]
    if channels % (num_parts * color_channels):
        raise ValueError(
            f"{channels} channels cannot be split into {num_parts} parts of "
            f"{color_channels} colour groups."
        )
    shape = ops.shape(x)
    size = channels // (num_parts * color_channels)
    x = ops.reshape(x, (*shape[:-1], color_channels, num_parts * size))
    # One split (its gradient is one concatenation) rather than a slice per part,
    # whose gradients each write a zero tensor of the whole input and are summed:
    # those were 30% of a Row LSTM training step's op time on CPU.
    return [
        ops.reshape(part, (*shape[:-1], color_channels * size))
        for part in ops.split(x, num_parts, axis=-1)
    ]
