"""paddlex_interpret.core.segmentation: PaddleX 1.3's segmenter, the coarse default built on it,
user segmenters, relabelling, and the per-content memo the training sessions share."""
import numpy as np
import pytest

from paddlex_interpret.core.segmentation import MemoSegmenter, make_segmenter


def _shapes():
    shapes = np.full((80, 72, 3), 200, np.uint8)
    shapes[10:40, 8:30] = (220, 30, 30)
    shapes[45:70, 40:66] = (20, 20, 200)
    return shapes


def test_coarse_merges_quickshift_superpixels_into_at_most_25_regions():
    from skimage import data

    image = data.astronaut()[::2, ::2]
    fine = make_segmenter("quickshift", seed=0)(image)
    coarse = make_segmenter("coarse", seed=0)(image)
    assert fine.max() + 1 > 25 and coarse.max() + 1 == 25
    # every region is a union of quickshift superpixels (their boundaries are kept)
    assert all(np.unique(coarse[fine == i]).size == 1 for i in range(fine.max() + 1))
    np.testing.assert_array_equal(coarse, make_segmenter("coarse", seed=0)(image))
    assert make_segmenter("coarse", max_regions=60)(image).max() + 1 == 60
    # few superpixels stay as they are
    shapes = _shapes()
    np.testing.assert_array_equal(make_segmenter("coarse", max_regions=40)(shapes),
                                  make_segmenter("quickshift")(shapes))


def test_default_segmenter_is_paddlex13_quickshift_with_scikit_image_labels():
    image = _shapes()
    fast = make_segmenter("quickshift", seed=0)(image)
    reference = make_segmenter("quickshift_skimage", seed=0)(image)
    np.testing.assert_array_equal(fast, reference)
    assert fast.dtype == np.int32 and fast.min() == 0
    # the two coloured rectangles are not merged with the background
    assert fast[20, 20] != fast[5, 60] and fast[55, 50] != fast[5, 60]


def test_a_user_segmenter_is_relabelled_and_unknown_names_are_refused():
    def stripes(image):
        return (np.arange(image.shape[1])[None, :] // 8 * 10 + 5).repeat(image.shape[0], 0)

    seg = make_segmenter(stripes)
    labels = seg(np.zeros((16, 32, 3), np.uint8))
    assert labels.dtype == np.int32 and np.unique(labels).tolist() == [0, 1, 2, 3]
    assert seg.describe()["segmenter"] == "stripes"
    assert make_segmenter(seg) is seg
    with pytest.raises(ValueError, match="unknown segmenter 'watershed'"):
        make_segmenter("watershed")


def test_memo_segmenter_segments_each_image_content_once():
    calls = []

    def halves(image):
        calls.append(1)
        return (np.arange(image.shape[1])[None, :] >= image.shape[1] // 2).repeat(
            image.shape[0], 0).astype(np.int32)

    memo = MemoSegmenter(halves, size=2)
    a = np.zeros((8, 8, 3), np.uint8)
    b = np.full((8, 8, 3), 9, np.uint8)
    first = memo(a)
    np.testing.assert_array_equal(memo(a.copy()), first)  # the same content, another array
    assert len(calls) == 1
    memo(b)
    assert len(calls) == 2
    memo(np.zeros((8, 10, 3), np.uint8))  # another shape is another image; `a` is evicted
    assert len(calls) == 3
    memo(a)
    assert len(calls) == 4
    assert memo.describe() == make_segmenter(halves).describe()
    assert make_segmenter(memo) is memo
