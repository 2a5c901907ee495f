"""paddlex_interpret.core.atlas: the class atlas, its concentration and specificity, on maps
drawn with a known answer."""
import numpy as np
import pytest

from paddlex_interpret.core.atlas import class_atlas, hot_region, mass_map, place_name

H = W = 64
YY, XX = np.mgrid[:H, :W]


def blob(rng, cy, cx, r=5):
    return np.exp(-((YY - cy) ** 2 + (XX - cx) ** 2) / (2.0 * r * r)) + 0.02 * rng.random((H, W))


def maps_of(kinds, n=20, seed=0):
    """``n`` maps per class; kinds: 'corner' (the same corner every time), 'anywhere' (an object
    at a random place), 'centre' (near the centre, as objects in photos)."""
    rng = np.random.default_rng(seed)
    maps, classes = [], []
    for _ in range(n):
        for c, kind in enumerate(kinds):
            if kind == "corner":
                maps.append(blob(rng, 58, 58, 3))
            elif kind == "anywhere":
                maps.append(blob(rng, *rng.integers(8, 56, 2)))
            else:
                maps.append(blob(rng, *(32 + rng.integers(-4, 5, 2)), r=6))
            classes.append(c)
    return maps, classes


def test_a_fixed_place_is_concentrated_and_objects_anywhere_are_not():
    maps, classes = maps_of(["corner", "anywhere", "anywhere"])
    atlas = class_atlas(maps, classes, 3, label_names=["wm", "a", "b"])
    assert atlas.concentration[0] > 5 and atlas.specificity[0] > 0.95
    assert np.all(atlas.concentration[1:] < 2)
    assert atlas.region(0)[0] >= 48 and atlas.region(0)[1] >= 48  # bottom-right
    assert place_name(atlas.hot(0)) == "bottom-right"


def test_a_place_every_class_looks_at_is_not_one_class_shortcut():
    maps, classes = maps_of(["centre", "centre", "centre"])
    atlas = class_atlas(maps, classes, 3)
    assert np.all(atlas.concentration > 3)  # sharp: objects are centred
    assert np.all(atlas.specificity < 0.6)  # but every class looks there


def test_specificity_is_undefined_without_another_class():
    maps, classes = maps_of(["corner"])
    atlas = class_atlas(maps, classes, 3)
    assert atlas.concentration[0] > 5 and np.isnan(atlas.specificity[0])
    assert atlas.counts.tolist() == [20, 0, 0]


def test_mass_and_hot_region():
    m = mass_map(np.array([[3.0, -1.0], [1.0, 0.0]]))
    assert m.sum() == pytest.approx(1.0) and m[0, 1] == 0
    assert mass_map(np.zeros((2, 2))) is None
    hot = hot_region(m, 0.5)
    assert hot.tolist() == [[True, False], [False, False]]  # 0.75 of the mass in one pixel


def test_classes_with_few_images_get_no_score():
    maps, classes = maps_of(["corner", "anywhere"], n=3)
    atlas = class_atlas(maps, classes, 3)
    assert np.isnan(atlas.concentration).all() and atlas.counts.tolist() == [3, 3, 0]


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="2 maps but 1 classes"):
        class_atlas([np.ones((4, 4))] * 2, [0], 2)
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        class_atlas([np.ones((4, 4))], [2], 2)
    with pytest.raises(ValueError, match="one shape"):
        class_atlas([np.ones((4, 4)), np.ones((5, 5))], [0, 1], 2)
    with pytest.raises(ValueError, match="positive mass"):
        class_atlas([np.zeros((4, 4))], [0], 2)
