"""paddlex_interpret.core.perturbation: masks and the perturbed images they stand for.
(The normalised composition, :func:`compose_normalised`, is checked against the Paddle adapters'
normalisation in ``tests/adapters/test_paddlex_adapter.py`` and against the compiled kernel in
``tests/core/test_native.py``.)"""
import numpy as np

from paddlex_interpret.core.fill import make_fill
from paddlex_interpret.core.perturbation import perturb, sample_masks


def test_perturb_keeps_the_kept_superpixels_and_fills_the_rest():
    img = np.zeros((4, 4, 3), np.uint8); img[:, :2] = 100; img[:, 2:] = 200
    seg = np.repeat(np.array([[0, 0, 1, 1]]), 4, axis=0)
    out = perturb(img, make_fill(img, seg, "black"), seg, np.array([[False, True]]))
    assert out[0, :, :2].max() == 0 and out[0, :, 2:].min() == 200


def test_first_mask_is_all_on_and_sampling_is_seeded():
    a = sample_masks(50, 7, np.random.default_rng(1))
    b = sample_masks(50, 7, np.random.default_rng(1))
    assert a[0].all() and np.array_equal(a, b) and 0.3 < a[1:].mean() < 0.7
