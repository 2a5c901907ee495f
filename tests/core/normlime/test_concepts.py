"""paddlex_interpret.core.normlime.concepts: the concept codebook (fit, assign, fingerprint, pickle-free
file) and the colour/texture descriptor.

The coloured-shapes data decide the class by the colour of one object whose mask is known, so the
"deciding concept" of a class is measurable: the concept whose superpixels lie on that class's
objects (:func:`helpers.deciding_concepts`).
"""
import numpy as np
import pytest

from helpers import deciding_concepts
from paddlex_interpret.core.normlime.concepts import ConceptCodebook, superpixel_descriptors
from paddlex_interpret.core.images import load_image
from paddlex_interpret.errors import NormLimeCacheError


@pytest.fixture(scope="module")
def ds(shapes_dataset):
    return shapes_dataset


def test_codebook_separates_objects_and_round_trips(tmp_path, ds):
    items = ds.train_items()[::4]
    cb = ConceptCodebook().fit([p for p, _, _ in items], n_concepts=10, seed=0)
    assert cb.n_concepts == 10 and cb.fit_info["n_images"] == len(items)
    deciding = deciding_concepts(cb, ds, ds.val_items()[::2])
    assert sorted(deciding) == list(range(ds.num_classes)), deciding  # every class has its concept
    assert all(not (deciding[a] & deciding[b]) for a in deciding for b in deciding if a != b)
    path = cb.save(str(tmp_path / "cb.npz"))
    back = ConceptCodebook.load(path)
    assert back.fingerprint() == cb.fingerprint()
    img = load_image(items[0][0])
    segs = cb.make_segmenter()(img)
    np.testing.assert_array_equal(back.assign(img, segs), cb.assign(img, segs))
    with np.load(path, allow_pickle=False) as z:  # pickle-free
        assert "centers" in z.files
    other = ConceptCodebook().fit([p for p, _, _ in items], n_concepts=10, seed=1)
    assert other.fingerprint() != cb.fingerprint()
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(NormLimeCacheError):
        ConceptCodebook.load(str(tmp_path / "bad.npz"))


def test_the_codebook_segments_as_it_was_fitted(ds):
    """A codebook fitted on coarse regions cuts images into coarse regions again (concepts
    learnt on regions of one size assign badly to superpixels of another), with its seed."""
    from paddlex_interpret.core.segmentation import make_segmenter

    paths = [p for p, _, _ in ds.train_items()[:6]]
    img = load_image(paths[0])
    for name in ("coarse", "slic", "quickshift"):
        cb = ConceptCodebook().fit(paths, segmenter=name, n_concepts=4, seed=3)
        np.testing.assert_array_equal(cb.make_segmenter()(img), make_segmenter(name, seed=3)(img))
    cb.settings["segmenter"] = "<callable>"  # what a callable segmenter leaves: quickshift
    np.testing.assert_array_equal(cb.make_segmenter()(img), make_segmenter("quickshift")(img))


def test_descriptor_is_colour_and_texture():
    img = np.zeros((8, 8, 3), np.uint8)
    img[:, 4:] = (255, 0, 0)
    seg = np.repeat((np.arange(8) >= 4)[None].astype(int), 8, 0)
    d = superpixel_descriptors(img, seg)
    assert d.shape == (2, 11)
    assert d[0, 0] < 1 and d[1, 0] > 40 and d[1, 1] > 40  # black vs red in Lab (L, a)
    assert np.allclose(d[:, 3:6], 0)  # flat colour: no spread
