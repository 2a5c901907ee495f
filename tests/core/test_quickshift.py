"""The fast quickshift returns scikit-image's labels exactly (PaddleX 1.3's segmentation), with
the compiled kernels and with numpy alone."""
import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from paddlex_interpret.core import quickshift as qs


def _images():
    rng = np.random.default_rng(3)
    smooth = (gaussian_filter(rng.random((96, 96, 3)), (4, 4, 0)) * 765).clip(0, 255)
    shapes = np.full((80, 72, 3), 200, np.uint8)
    shapes[10:40, 8:30] = (220, 30, 30)
    shapes[45:70, 40:66] = (20, 20, 200)
    grey = np.repeat((gaussian_filter(rng.random((64, 64)), 3) * 1000 % 255)[..., None], 3, 2)
    return {
        "smooth": smooth.astype(np.uint8),
        "noise": rng.integers(0, 256, (48, 56, 3)).astype(np.uint8),
        "flat": np.full((40, 40, 3), 128, np.uint8),
        "shapes": shapes,
        "grey": grey.astype(np.uint8),
        "thin": rng.integers(0, 256, (7, 90, 3)).astype(np.uint8),
        "float": rng.random((30, 30, 3)),
    }


@pytest.fixture(params=["compiled", "numpy"])
def path(request, monkeypatch):
    """Run a test with the compiled kernels and again with numpy alone."""
    if request.param == "compiled":
        if not qs.kernels_available():
            pytest.skip("the quickshift kernels are not built (no C compiler at install)")
    else:
        qs.kernels_available()
        monkeypatch.setitem(qs._KERNELS, "fns", None)
    return request.param


@pytest.mark.parametrize("name", sorted(_images()))
@pytest.mark.parametrize("params", [
    dict(kernel_size=5, max_dist=10, ratio=1.0, sigma=1),  # PaddleX 1.3
    dict(kernel_size=3, max_dist=6, ratio=0.5, sigma=0),
    dict(kernel_size=2, max_dist=20, ratio=1.0, sigma=2),
], ids=["paddlex13", "small", "far"])
def test_labels_equal_scikit_image(path, name, params):
    image = _images()[name]
    for seed in (0, 7):
        expected = qs.skimage_quickshift(image, seed=seed, **params)
        got = qs.quickshift(image, rng=seed, **params)
        assert got.shape == expected.shape
        np.testing.assert_array_equal(got, expected)


def test_same_labels_for_any_thread_count_and_without_kept_distances(path, monkeypatch):
    image = _images()["smooth"]
    ref = qs.quickshift(image, sigma=1, rng=0, num_threads=1)
    assert ref.max() > 3
    for n in (2, 3):
        np.testing.assert_array_equal(qs.quickshift(image, sigma=1, rng=0, num_threads=n), ref)
    monkeypatch.setattr(qs, "_KEEP_BYTES", 0)  # the large-image path recomputes distances
    np.testing.assert_array_equal(qs.quickshift(image, sigma=1, rng=0, num_threads=2), ref)


@pytest.mark.parametrize("name", ["smooth", "noise", "flat", "shapes"])
@pytest.mark.parametrize("keep_bytes", [0, 256 * 2 ** 20], ids=["recomputed", "kept"])
def test_linking_gives_the_same_parents_searched_densely_or_sparsely(monkeypatch, name, keep_bytes):
    """The numpy linking's switch from whole-image rings to the undecided pixels only must not
    change a label: all rings dense, sparse after the first ring, and the default switch point."""
    qs.kernels_available()
    monkeypatch.setitem(qs._KERNELS, "fns", None)
    image = _images()[name]
    params = dict(kernel_size=3, max_dist=8, ratio=1.0, sigma=1)
    expected = qs.skimage_quickshift(image, seed=1, **params)
    monkeypatch.setattr(qs, "_KEEP_BYTES", keep_bytes)
    for fraction in (0.0, 0.25, 2.0):
        monkeypatch.setattr(qs, "_SPARSE_FRACTION", fraction)
        np.testing.assert_array_equal(qs.quickshift(image, rng=1, **params), expected)


def test_more_channels_without_lab_conversion_equal_scikit_image(path):
    image = np.random.default_rng(5).random((30, 36, 4))
    params = dict(kernel_size=2, max_dist=5, ratio=1.0, sigma=1, convert2lab=False)
    np.testing.assert_array_equal(qs.quickshift(image, rng=2, **params),
                                  qs.skimage_quickshift(image, seed=2, **params))


@pytest.mark.parametrize("shape", [(1, 20, 3), (20, 1, 3), (1, 1, 3), (3, 40, 3), (40, 3, 3)])
def test_images_smaller_than_the_window_equal_scikit_image(path, shape):
    """Rows or columns fewer than the window's radius (the padding and the flat shifts at their
    limits)."""
    image = np.random.default_rng(1).integers(0, 256, shape).astype(np.uint8)
    params = dict(kernel_size=5, max_dist=10, ratio=1.0, sigma=1)
    np.testing.assert_array_equal(qs.quickshift(image, rng=0, **params),
                                  qs.skimage_quickshift(image, seed=0, **params))
