"""Occlusion sensitivity on a model whose deciding region is known: the map is high there and
nowhere else, it is the same on every call, and hiding is composed as LIME's perturbations."""
import numpy as np
import pytest

from helpers import RegionClassifier
from paddlex_interpret.core.occlusion import cell_grid, default_cell, occlusion_maps


def _image():
    img = np.full((32, 32, 3), 40, np.uint8)
    img[:16, :16] = 230  # the top-left quadrant is bright: class 1
    return img


def test_the_map_is_high_on_the_deciding_region_only():
    clf = RegionClassifier()
    maps, probs = occlusion_maps(clf, _image(), np.zeros((32, 32, 3), np.uint8), [1], cell=4)
    m = maps[0]
    assert probs.argmax() == 1
    assert m[:16, :16].min() > 0
    # a pixel of cells 5 and on (20 px) is hidden only with windows that miss the region
    assert np.abs(m[20:]).max() == 0 and np.abs(m[:, 20:]).max() == 0
    assert m[:16, :16].mean() > 10 * np.abs(m[:, 16:]).mean()


def test_deterministic_and_one_pass_per_window_plus_one():
    clf = RegionClassifier()
    a, _ = occlusion_maps(clf, _image(), np.zeros((32, 32, 3), np.uint8), [0, 1], cell=4,
                          batch_size=7)
    b, _ = occlusion_maps(clf, _image(), np.zeros((32, 32, 3), np.uint8), [0, 1], cell=4)
    assert np.array_equal(a, b) and a.shape == (2, 32, 32)
    assert np.allclose(a[0], -a[1])  # two classes: what one loses the other gains
    counted = RegionClassifier()
    occlusion_maps(counted, _image(), _image(), [0], cell=4, batch_size=7)
    assert sum(counted.batch_sizes) == 7 * 7 + 1 and max(counted.batch_sizes) == 7  # 8 x 8 cells


def test_cells_cover_the_image():
    grid, ny, nx = cell_grid((30, 45), 8)
    assert (ny, nx) == (3, 5) and grid.max() == ny * nx - 1 and grid[-1, -1] == ny * nx - 1
    assert default_cell((224, 300, 3)) == 14 and default_cell((20, 20)) == 2
    with pytest.raises(ValueError, match="cell"):
        occlusion_maps(RegionClassifier(), _image(), _image(), [0], cell=0)
