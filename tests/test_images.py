import numpy as np
import pytest
from PIL import Image

from keras_pixel.images import image_grid, save_image_grid


def test_grid_layout_and_scaling():
    images = np.stack([np.full((8, 8, 1), 10 * k, np.uint8) for k in range(5)])
    grid = image_grid(images, ncols=3, padding=1)
    assert grid.shape == (2 * (64 + 1) + 1, 3 * (64 + 1) + 1, 1)
    assert grid[1, 1, 0] == 0 and grid[1, 1 + 65, 0] == 10 and grid[66, 1, 0] == 30
    assert grid[0, 0, 0] == 128


def test_png_round_trip(tmp_path, rgb_patches):
    path = save_image_grid(rgb_patches[:4], tmp_path / "sub" / "g.png", scale=1, padding=0)
    grid = np.asarray(Image.open(path))
    assert grid.shape == (16, 16, 3)
    np.testing.assert_array_equal(grid[:8, 8:], rgb_patches[1])
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["g.png"]


def test_rejects_floats():
    with pytest.raises(ValueError, match="uint8"):
        image_grid(np.zeros((1, 4, 4, 1), np.float32))


def test_row_labels_are_written_beside_their_rows(rgb_patches):
    plain = image_grid(rgb_patches[:4], ncols=2)
    labelled = image_grid(rgb_patches[:4], ncols=2, row_labels=["3", "7"])
    margin = labelled.shape[1] - plain.shape[1]
    assert labelled.shape[0] == plain.shape[0] and margin > 0
    np.testing.assert_array_equal(labelled[:, margin:], plain)
    half = plain.shape[0] // 2
    assert (labelled[:half, :margin] < 128).any() and (labelled[half:, :margin] < 128).any()
    with pytest.raises(ValueError, match="2 rows"):
        image_grid(rgb_patches[:4], ncols=2, row_labels=["3"])
