"""Showing images: PNG grids of uint8 batches."""

import math
import os
import tempfile

import numpy as np


def image_grid(
    images, ncols=None, padding=1, scale=None, pad_value=128, num_values=256, row_labels=None
):
    """Tiles a batch of images into one image.

    Args:
        images: uint8 ``[N, H, W, C]``, C = 1 or 3; with ``num_values`` other
            than 256, integers in ``[0, num_values)`` of any integer dtype.
        ncols: images per row (default: about ``sqrt(N)``).
        padding: pixels between cells (after scaling).
        scale: integer nearest-neighbour upscaling of each image; the default
            makes cells at least 64 pixels wide so 8x8 digits stay visible.
        pad_value: gray level of the padding.
        num_values: values a subpixel takes; other than 256 they are spread over
            [0, 255] for display (binary images in {0, 1} show black and white).
        row_labels: one string per row, written in a white margin left of it
            (e.g. the class a conditional model drew the row for).

    Returns:
        uint8 ``[rows * (H * scale + padding) + padding, ..., C]`` (wider by the
        margin with ``row_labels``).
    """
    images = np.asarray(images)
    if num_values != 256 and np.issubdtype(images.dtype, np.integer):
        if images.size and (images.min() < 0 or images.max() >= num_values):
            raise ValueError(f"images must lie in [0, {num_values - 1}] (num_values={num_values}).")
        images = (images.astype(np.int64) * 255 // max(num_values - 1, 1)).astype(np.uint8)
    if images.ndim != 4 or images.shape[-1] not in (1, 3) or images.dtype != np.uint8:
        raise ValueError(
            f"images must be uint8 [N, H, W, 1 or 3], got {images.dtype} {images.shape}."
        )
    n, h, w, c = images.shape
    if n == 0:
        raise ValueError("image_grid needs at least one image.")
    scale = scale or max(1, math.ceil(64 / max(h, w)))
    images = images.repeat(scale, axis=1).repeat(scale, axis=2)
    h, w = h * scale, w * scale
    ncols = ncols or math.ceil(math.sqrt(n))
    nrows = math.ceil(n / ncols)
    grid = np.full(
        (nrows * (h + padding) + padding, ncols * (w + padding) + padding, c), pad_value, np.uint8
    )
    for k, image in enumerate(images):
        r, q = divmod(k, ncols)
        top, left = padding + r * (h + padding), padding + q * (w + padding)
        grid[top : top + h, left : left + w] = image
    if row_labels is not None:
        grid = _label_rows(grid, [str(t) for t in row_labels], nrows, h, padding)
    return grid


def _label_rows(grid, labels, nrows, cell_height, padding):
    """``grid`` with a white margin on the left holding ``labels[r]`` beside row ``r``."""
    from PIL import Image, ImageDraw, ImageFont

    if len(labels) != nrows:
        raise ValueError(f"row_labels has {len(labels)} entries for {nrows} rows.")
    font = ImageFont.load_default(size=max(10, min(cell_height // 2, 24)))
    draw = ImageDraw.Draw(Image.new("L", (1, 1)))
    width = max(int(draw.textlength(t, font=font)) for t in labels) + 2 * max(padding, 4)
    margin = Image.new("L", (width, grid.shape[0]), 255)
    draw = ImageDraw.Draw(margin)
    for r, text in enumerate(labels):
        middle = padding + r * (cell_height + padding) + cell_height // 2
        draw.text((width // 2, middle), text, fill=0, font=font, anchor="mm")
    margin = np.repeat(np.asarray(margin)[..., None], grid.shape[-1], axis=-1)
    return np.concatenate([margin, grid], axis=1)


def save_image_grid(images, path, **kwargs):
    """Writes :func:`image_grid` of ``images`` to ``path`` as a PNG.

    The file is written to a temporary name and renamed, so a failed write
    leaves no half-written PNG. Returns ``path``.
    """
    from PIL import Image

    grid = image_grid(images, **kwargs)
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".png", dir=directory)
    os.close(fd)
    try:
        Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid).save(tmp, format="PNG")
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would hide the PNG from other users
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path
