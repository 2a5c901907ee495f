"""paddlex_interpret.api.occlusion: a fill given as an image is used as it is (an array is not
mistaken for ``fill='auto'``'s chooser), the same map as the core's with that fill."""
import numpy as np

from helpers import RegionClassifier
from paddlex_interpret.api.occlusion import occlusion
from paddlex_interpret.core.occlusion import occlusion_maps


def test_an_image_fill_is_the_fill():
    img = np.full((32, 32, 3), 40, np.uint8)
    img[:16, :16] = 230
    fill = np.full((32, 32, 3), 90, np.uint8)
    exp = occlusion(img, RegionClassifier(), labels=[1], cell=4, fill=fill, segmenter=None)
    expected, _ = occlusion_maps(RegionClassifier(), img, fill, [1], cell=4)
    assert exp.settings["fill"] == "custom"
    assert np.array_equal(exp.maps, expected)
