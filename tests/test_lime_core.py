"""The pure LIME core: no Paddle. A classifier that provably uses one region must be explained by
that region; same seed, same result; memory independent of num_samples; bad input named."""
import tracemalloc

import numpy as np
import pytest
from sklearn.linear_model import Ridge

from paddlex_interpret.core.explanation import Explanation
from paddlex_interpret.core.images import load_image, to_rgb_uint8
from paddlex_interpret.core.classifier import Classifier, as_probabilities
from paddlex_interpret.core.lime import LimeExplainer, select_labels
from paddlex_interpret.core.perturbation import make_fill, perturb, sample_masks
from paddlex_interpret.core.segmentation import make_segmenter
from paddlex_interpret.core.sampling import cosine_distance_to_all_on, exponential_kernel
from paddlex_interpret.core.surrogate import WeightedRidge
from paddlex_interpret.errors import ImageReadError


def grid_segments(h=32, w=32, n=4):
    """n x n square superpixels."""
    rows = np.arange(h) * n // h
    cols = np.arange(w) * n // w
    return (rows[:, None] * n + cols[None, :]).astype(np.int32)


class RegionClassifier(Classifier):
    """Class 1 iff the top-left quadrant is bright: the deciding region is known."""

    def __init__(self):
        self.batch_sizes = []

    def __call__(self, images):
        self.batch_sizes.append(len(images))
        score = images[:, :16, :16].mean(axis=(1, 2, 3)) / 255.0
        logit = 8 * (score - 0.5)
        return np.stack([-logit, logit], axis=1)  # logits: softmax is applied by the core


def test_surrogate_matches_sklearn_ridge_with_sample_weight():
    rng = np.random.default_rng(0)
    X = rng.integers(0, 2, (400, 30)).astype(bool)
    Y = rng.normal(size=(400, 2))
    w = exponential_kernel(cosine_distance_to_all_on(X))
    fit = WeightedRidge(alpha=1.0).fit(X, Y, w)
    for j in range(2):
        ref = Ridge(alpha=1.0).fit(X, Y[:, j], sample_weight=w)
        np.testing.assert_allclose(fit.coef[j], ref.coef_, atol=1e-10)
        np.testing.assert_allclose(fit.intercept[j], ref.intercept_, atol=1e-10)
        np.testing.assert_allclose(fit.score[j], ref.score(X, Y[:, j], sample_weight=w), atol=1e-10)


def test_kernel_and_distance_follow_paddlex_13():
    masks = np.array([[1, 1, 1, 1], [1, 0, 0, 0], [0, 0, 0, 0]], dtype=bool)
    d = cosine_distance_to_all_on(masks)
    np.testing.assert_allclose(d, [0.0, 1 - np.sqrt(0.25), 1.0])
    np.testing.assert_allclose(exponential_kernel(d, 0.25), np.sqrt(np.exp(-d ** 2 / 0.0625)))


def test_explanation_points_at_the_deciding_region():
    img = np.full((32, 32, 3), 230, np.uint8)
    seg = grid_segments()
    clf = RegionClassifier()
    exp = LimeExplainer(clf, num_samples=300, batch_size=32, seed=1).explain(img, segments=seg)
    assert exp.labels.tolist() == [1]
    top4 = set(exp.top_segments(1, 4).tolist())
    assert top4 == {0, 1, 4, 5}  # the four grid cells of the top-left quadrant
    w = exp.weights_for(1)
    assert np.all(np.abs(np.delete(w, [0, 1, 4, 5])) < 0.2 * w[[0, 1, 4, 5]].min())
    assert exp.scores[0] > 0.8


def test_same_seed_same_result_and_different_seed_differs():
    rng = np.random.default_rng(3)
    img = (rng.random((32, 32, 3)) * 255).astype(np.uint8)
    make = lambda seed: LimeExplainer(RegionClassifier(), segmenter="quickshift",
                                      num_samples=120, seed=seed).explain(img)
    a, b, c = make(5), make(5), make(6)
    np.testing.assert_array_equal(a.segments, b.segments)
    np.testing.assert_array_equal(a.weights, b.weights)
    assert not np.array_equal(a.weights, c.weights)


def test_each_image_gets_its_own_segmentation():
    explainer = LimeExplainer(RegionClassifier(), segmenter="slic",
                              segmenter_params={"n_segments": 16}, num_samples=20, seed=0)
    a = np.zeros((32, 32, 3), np.uint8); a[:, :10] = 255
    b = np.zeros((32, 32, 3), np.uint8); b[20:, :] = 255
    ea, eb = explainer.explain(a), explainer.explain(b)
    np.testing.assert_array_equal(ea.segments, make_segmenter("slic", n_segments=16)(a))
    np.testing.assert_array_equal(eb.segments, make_segmenter("slic", n_segments=16)(b))
    assert not np.array_equal(ea.segments, eb.segments)


def test_images_are_streamed_in_batches_and_memory_is_flat_in_num_samples():
    img = np.full((64, 64, 3), 200, np.uint8)
    seg = grid_segments(64, 64, 8)

    def peak(n):
        clf = RegionClassifier()
        explainer = LimeExplainer(clf, num_samples=n, batch_size=25, seed=0)
        tracemalloc.start()
        exp = explainer.explain(img, segments=seg)
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        # N forward passes in batches of <= 25 and nothing else: the prediction of the image
        # itself is the first (all-on) sample's, not an extra batch of one
        assert max(clf.batch_sizes) <= 25 and len(clf.batch_sizes) == -(-n // 25)
        np.testing.assert_allclose(exp.probabilities,
                                   as_probabilities(RegionClassifier()(img[None]))[0])
        return top

    small, large = peak(200), peak(2000)
    # Holding every perturbed image would cost 1800 * 64*64*3 bytes = 22 MB more; what does grow
    # (masks, outputs and the surrogate's float64 design matrices, O(N * n_segments)) is ~3 MB.
    images_held = 1800 * 64 * 64 * 3
    assert large - small < images_held / 4, (small, large)


def test_fills():
    img = np.zeros((4, 4, 3), np.uint8); img[:, :2] = 100; img[:, 2:] = 200
    seg = np.repeat(np.array([[0, 0, 1, 1]]), 4, axis=0)
    assert make_fill(img, seg, "black").max() == 0
    assert make_fill(img, seg, "median")[0, 0].tolist() == [150, 150, 150]
    np.testing.assert_array_equal(make_fill(img, seg, "mean"), img)
    assert make_fill(img, seg, (1, 2, 3))[0, 0].tolist() == [1, 2, 3]
    assert make_fill(img, seg, "blur").shape == img.shape
    with pytest.raises(ValueError, match="unknown fill"):
        make_fill(img, seg, "pink")
    out = perturb(img, make_fill(img, seg, "black"), seg, np.array([[False, True]]))
    assert out[0, :, :2].max() == 0 and out[0, :, 2:].min() == 200


def test_first_mask_is_all_on_and_sampling_is_seeded():
    a = sample_masks(50, 7, np.random.default_rng(1))
    b = sample_masks(50, 7, np.random.default_rng(1))
    assert a[0].all() and np.array_equal(a, b) and 0.3 < a[1:].mean() < 0.7


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, None])
def test_bad_num_samples_and_batch_size_are_named(bad):
    with pytest.raises(ValueError, match="num_samples"):
        LimeExplainer(RegionClassifier(), num_samples=bad)
    with pytest.raises(ValueError, match="batch_size"):
        LimeExplainer(RegionClassifier(), batch_size=bad)


def test_labels_top_k_and_softmax():
    p = as_probabilities(np.array([[2.0, 0.0, 1.0]]))
    np.testing.assert_allclose(p.sum(), 1.0)
    assert select_labels(p[0], top_k=2).tolist() == [0, 2]
    assert select_labels(p[0], labels=[1]).tolist() == [1]
    with pytest.raises(ValueError, match="out of range"):
        select_labels(p[0], labels=[3])


def test_explanation_round_trips_through_npz(tmp_path):
    img = np.full((32, 32, 3), 230, np.uint8)
    exp = LimeExplainer(RegionClassifier(), num_samples=60, seed=0, label_names=["off", "on"],
                        ).explain(img, segments=grid_segments(), top_k=2)
    exp.extra["normlime"] = exp.weights * 2
    path = exp.save(tmp_path / "e.npz")
    back = Explanation.load(path)
    for name in ("image", "segments", "probabilities", "labels", "weights", "intercepts",
                 "scores", "local_predictions"):
        np.testing.assert_array_equal(getattr(back, name), getattr(exp, name))
    np.testing.assert_array_equal(back.extra["normlime"], exp.extra["normlime"])
    assert back.label_names == ["off", "on"] and back.settings == exp.settings
    assert back.local_weights == exp.local_weights
    assert list(tmp_path.iterdir()) == [tmp_path / "e.npz"]  # no temporary left behind


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


def test_atomic_write_gives_normal_permissions_and_keeps_old_file_on_error(tmp_path):
    import os
    import stat

    from paddlex_interpret.io import atomic_write

    path = tmp_path / "f.bin"
    with atomic_write(path) as f:
        f.write(b"old")
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o666 & ~mask
    with pytest.raises(RuntimeError):
        with atomic_write(path) as f:
            f.write(b"new, half")
            raise RuntimeError("interrupted")
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["f.bin"]


def test_bad_labels_fail_before_any_sampling_when_the_classifier_knows_its_classes():
    clf = RegionClassifier()
    clf.num_classes = 2
    img = np.full((32, 32, 3), 200, np.uint8)
    with pytest.raises(ValueError, match="out of range"):
        LimeExplainer(clf, num_samples=100, batch_size=25, seed=0).explain(
            img, segments=grid_segments(32, 32, 8), labels=[5])
    assert clf.batch_sizes == []  # no forward pass was spent on a doomed explanation
