"""paddlex_interpret.core.images: every image file or array becomes (H, W, 3) uint8 RGB, and a bad
path or file is named."""
import numpy as np
import pytest

from paddlex_interpret.core.images import load_image, to_rgb_uint8
from paddlex_interpret.errors import ImageReadError


@pytest.mark.parametrize("kind", ["grey", "grey16", "rgba", "palette", "rgb16", "la"])
def test_unusual_image_files_load_as_rgb_uint8(tmp_path, kind):
    from PIL import Image

    rng = np.random.default_rng(0)
    path = tmp_path / ("img_%s.png" % kind)
    if kind == "grey":
        Image.fromarray((rng.random((20, 30)) * 255).astype(np.uint8), "L").save(path)
    elif kind == "grey16":
        Image.fromarray((rng.random((20, 30)) * 65535).astype(np.uint16)).save(path)
    elif kind == "rgba":
        Image.fromarray((rng.random((20, 30, 4)) * 255).astype(np.uint8), "RGBA").save(path)
    elif kind == "palette":
        Image.fromarray((rng.random((20, 30, 3)) * 255).astype(np.uint8)).convert("P").save(path)
    elif kind == "la":
        Image.fromarray((rng.random((20, 30)) * 255).astype(np.uint8), "L").convert("LA").save(path)
    else:
        import cv2
        cv2.imwrite(str(path), (rng.random((20, 30, 3)) * 65535).astype(np.uint16))
    img = load_image(path)
    assert img.shape == (20, 30, 3) and img.dtype == np.uint8 and img.max() > 100


def test_16bit_values_are_scaled_not_clipped():
    a = np.array([[0, 32768, 65535]], dtype=np.uint16)
    assert to_rgb_uint8(a)[0, :, 0].tolist() == [0, 128, 255]


def test_bad_image_paths_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_image(tmp_path / "missing.png")
    with pytest.raises(IsADirectoryError, match="directory"):
        load_image(tmp_path)
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not an image at all")
    with pytest.raises(ImageReadError, match="cannot read"):
        load_image(junk)
    with pytest.raises(ImageReadError):
        to_rgb_uint8(np.zeros((2, 2, 5)))
