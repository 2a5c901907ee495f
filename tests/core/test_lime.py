"""paddlex_interpret.core.lime, no Paddle: a classifier that provably uses one region must be
explained by that region; same seed, same result; memory independent of num_samples; bad input
named; :meth:`LimeExplainer.run` keeps what the explanation was fitted on."""
import tracemalloc

import numpy as np
import pytest

from helpers import RegionClassifier, grid_segments
from paddlex_interpret.core.classifier import as_probabilities
from paddlex_interpret.core.lime import LimeExplainer, LimeRun, select_labels
from paddlex_interpret.core.segmentation import make_segmenter


def test_explanation_points_at_the_deciding_region():
    img = np.full((32, 32, 3), 230, np.uint8)
    seg = grid_segments()
    clf = RegionClassifier()
    exp = LimeExplainer(clf, num_samples=300, batch_size=32, seed=1, fill="black").explain(
        img, segments=seg)
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
        explainer = LimeExplainer(clf, num_samples=n, batch_size=25, seed=0, fill="black")
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


def test_bad_labels_fail_before_any_sampling_when_the_classifier_knows_its_classes():
    clf = RegionClassifier()
    clf.num_classes = 2
    img = np.full((32, 32, 3), 200, np.uint8)
    with pytest.raises(ValueError, match="out of range"):
        LimeExplainer(clf, num_samples=100, batch_size=25, seed=0).explain(
            img, segments=grid_segments(32, 32, 8), labels=[5])
    assert clf.batch_sizes == []  # no forward pass was spent on a doomed explanation


# ------------------------------------------------------------------------------ LimeRun
def test_run_keeps_what_the_explanation_was_fitted_on():
    """``run`` returns a :class:`LimeRun` whose masks, outputs and sample weights give the
    explanation's weights again when re-fitted with :meth:`LimeExplainer.fit`; the outputs are
    the model's probabilities of those masks' perturbed images."""
    img = np.full((32, 32, 3), 230, np.uint8)
    img[20:, 20:] = 40
    seg = grid_segments()
    clf = RegionClassifier()
    explainer = LimeExplainer(clf, num_samples=150, batch_size=40, seed=2, fill="black")
    run = explainer.run(img, segments=seg, top_k=2)
    assert isinstance(run, LimeRun)
    exp = run.explanation
    assert run.masks.shape == (150, 16) and run.masks.dtype == bool and run.masks[0].all()
    assert run.outputs.shape == (150, 2) and run.sample_weight.shape == (150,)
    assert run.prior is None
    np.testing.assert_array_equal(run.fill_image, np.zeros_like(img))  # fill='black'
    np.testing.assert_array_equal(run.sample_weight, explainer.sample_weight(run.masks))
    np.testing.assert_array_equal(run.outputs[0], exp.probabilities)  # the all-on sample
    np.testing.assert_allclose(run.outputs.sum(axis=1), 1.0)
    refit = explainer.fit(run.masks, run.outputs, exp.labels, prior=run.prior,
                          sample_weight=run.sample_weight)
    np.testing.assert_array_equal(refit.coef, exp.weights)
    np.testing.assert_array_equal(refit.intercept, exp.intercepts)
    np.testing.assert_array_equal(refit.score, exp.scores)
    # the same masks drawn again for the same seed, and the outputs are the model's on them
    np.testing.assert_array_equal(explainer.draw(16, 150, 2), run.masks)
    masks, outputs = explainer.sample(img, seg, 150, 40, 2)
    np.testing.assert_array_equal(masks, run.masks)
    np.testing.assert_array_equal(outputs, run.outputs)
    # explain() is run().explanation
    again = explainer.explain(img, segments=seg, top_k=2)
    np.testing.assert_array_equal(again.weights, exp.weights)


def test_labels_given_by_class_name():
    img = np.full((32, 32, 3), 230, np.uint8)
    seg = grid_segments()
    explainer = LimeExplainer(RegionClassifier(), num_samples=80, seed=0,
                              label_names=["off", "on"])
    by_name = explainer.explain(img, segments=seg, labels=["off"])
    by_id = explainer.explain(img, segments=seg, labels=[0])
    assert by_name.labels.tolist() == [0]
    np.testing.assert_array_equal(by_name.weights, by_id.weights)
    both = explainer.explain(img, segments=seg, labels=["on", "off"])
    assert both.labels.tolist() == [1, 0]
    with pytest.raises(ValueError, match="unknown class 'maybe'.*off.*on"):
        explainer.explain(img, segments=seg, labels=["maybe"])


def test_progress_bar_does_not_change_the_numbers():
    rng = np.random.default_rng(4)
    img = (rng.random((32, 32, 3)) * 255).astype(np.uint8)
    seg = grid_segments(32, 32, 8)
    kwargs = dict(num_samples=130, batch_size=30, seed=3, fill="black")
    quiet = LimeExplainer(RegionClassifier(), progress=False, **kwargs).explain(img, segments=seg)
    clf = RegionClassifier()
    shown = LimeExplainer(clf, progress=True, **kwargs).explain(img, segments=seg)
    assert np.array_equal(shown.weights, quiet.weights)
    assert np.array_equal(shown.intercepts, quiet.intercepts)
    assert clf.batch_sizes == [30, 30, 30, 30, 10]  # the same batches
