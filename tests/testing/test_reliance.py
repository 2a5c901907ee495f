"""pxi_testing.reliance: the ground truth the explanation tests stand on."""
import numpy as np

from pxi_testing.reliance import (object_reliance, peak_on_object, relied_classes,
                                                top_on_object)


def reads_red(images):
    """p(red) grows with the red pixels; class 1 is everything else."""
    x = images.astype(np.float64) / 255.0
    red = ((x[..., 0] - x[..., 1]).clip(0)).mean(axis=(1, 2))
    return np.stack([20 * red, np.full_like(red, 1.0)], axis=1)


def test_hiding_the_object_a_model_reads_takes_its_class_away_and_only_that():
    img = np.full((16, 16, 3), 90, np.uint8)
    red_mask = np.zeros((16, 16), bool)
    red_mask[4:12, 4:12] = True
    red = img.copy()
    red[red_mask] = (230, 20, 20)
    corner = np.zeros((16, 16), bool)
    corner[:3, :3] = True  # a class-1 "object" the model does not look at
    got = object_reliance(reads_red, [(red, 0, red_mask), (img, 1, corner)])
    assert got[0] > 0.5 and abs(got[1]) < 0.01
    assert relied_classes(got) == [0]


def test_pointing_checks():
    seg = np.repeat(np.arange(4), 4).reshape(4, 4)  # rows are superpixels 0..3
    mask = np.zeros((4, 4), bool)
    mask[2] = True
    assert top_on_object(np.array([0.1, 0.0, 0.9, 0.2]), seg, mask)
    assert not top_on_object(np.array([0.9, 0.0, 0.1, 0.2]), seg, mask)
    heat = np.zeros((4, 4))
    heat[2, 1] = 1.0
    assert peak_on_object(heat, mask) and not peak_on_object(heat.T, mask)
