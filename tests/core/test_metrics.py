"""paddlex_interpret.core.metrics: faithfulness curves (deletion / insertion, MoRF / LeRF) and
the scores of an explanation, on a model whose deciding region is known (helpers.RegionModel).
(Localisation and stability: ``test_agreement.py``.)"""
import numpy as np
import pytest

from helpers import DECIDING, GRID, REGION, RegionModel, oracle_weights, region_image
from paddlex_interpret.core import metrics
from paddlex_interpret.core.lime import LimeExplainer


@pytest.fixture
def image():
    return region_image()


def test_oracle_beats_random_on_deletion_and_insertion(image):
    model = RegionModel()
    oracle = oracle_weights()
    d_oracle = metrics.deletion_auc(model, image, GRID, oracle, label=1)
    i_oracle = metrics.insertion_auc(model, image, GRID, oracle, label=1)
    rng = np.random.default_rng(1)
    d_random, i_random = [], []
    for _ in range(10):
        w = rng.normal(size=16)
        d_random.append(metrics.deletion_auc(model, image, GRID, w, label=1))
        i_random.append(metrics.insertion_auc(model, image, GRID, w, label=1))
    # the oracle hides the whole deciding region after 2/16 of the pixels
    assert d_oracle < 0.1
    assert d_oracle < min(d_random)
    assert d_oracle < np.mean(d_random) - 0.2
    p_full = model(image[None])[0, 1]
    assert i_oracle > 0.9 * p_full
    assert i_oracle > max(i_random)


def test_morf_below_lerf_for_a_faithful_explanation(image):
    model = RegionModel()
    xs, morf = metrics.morf_curve(model, image, GRID, oracle_weights(), 1)
    _, lerf = metrics.lerf_curve(model, image, GRID, oracle_weights(), 1)
    assert xs[0] == 0.0 and xs[-1] == pytest.approx(1.0)
    assert morf[0] == pytest.approx(lerf[0])  # both start from the intact image
    assert metrics.area_under_curve(xs, morf) < metrics.area_under_curve(xs, lerf)
    assert lerf[:-2].min() == pytest.approx(lerf[0])  # the deciding pair goes last
    assert metrics.aopc(morf) > metrics.aopc(lerf)


def test_lime_explanation_is_faithful_on_the_region_model(image):
    model = RegionModel()
    exp = LimeExplainer(model, num_samples=300, seed=0).explain(image, labels=[1], segments=GRID)
    assert set(exp.top_segments(1, 2).tolist()) == set(DECIDING)
    scores = metrics.explanation_scores(exp, model, gt_mask=REGION)
    assert scores["deletion_auc"] < 0.1
    assert scores["insertion_auc"] > 0.9 * model(image[None])[0, 1]
    assert scores["pointing_game"] == 1.0 and scores["iou"] == pytest.approx(1.0)


def test_curves_are_batched_and_streamed(image):
    w = np.random.default_rng(3).normal(size=16)
    one, many = RegionModel(), RegionModel()
    x1, p1 = metrics.deletion_curve(one, image, GRID, w, 1, batch_size=1)
    x2, p2 = metrics.deletion_curve(many, image, GRID, w, 1, batch_size=5)
    np.testing.assert_allclose(p1, p2)
    np.testing.assert_allclose(x1, x2)
    assert one.calls == 17 and many.calls == 4  # 17 points: 0..16 superpixels hidden
    coarse = RegionModel()
    xs, ps = metrics.deletion_curve(coarse, image, GRID, w, 1, num_steps=4)
    assert len(xs) == 5 and coarse.images == 5
    np.testing.assert_allclose(ps, p1[[0, 4, 8, 12, 16]])


def test_logits_and_fill_and_segment_axis(image):
    w = oracle_weights()
    probs = metrics.deletion_auc(RegionModel(), image, GRID, w, 1)
    logits = metrics.deletion_auc(RegionModel(logits=True), image, GRID, w, 1)
    assert logits == pytest.approx(probs, abs=1e-4)
    # a white fill keeps the region bright: deletion does nothing
    assert metrics.deletion_auc(RegionModel(), image, GRID, w, 1, fill=255) > 0.95
    xs, _ = metrics.deletion_curve(RegionModel(), image, GRID, w, 1, x="segments")
    np.testing.assert_allclose(xs, np.arange(17) / 16)


def test_pixel_axis_weights_large_superpixels():
    seg = np.zeros((4, 4), int)
    seg[0, 0] = 1  # superpixel 1 is one pixel, superpixel 0 fifteen
    img = np.full((4, 4, 3), 200, np.uint8)
    clf = lambda b: np.stack([1 - b.mean((1, 2, 3)) / 255, b.mean((1, 2, 3)) / 255], 1)
    xs, _ = metrics.deletion_curve(clf, img, seg, [0.0, 1.0], 1)
    np.testing.assert_allclose(xs, [0, 1 / 16, 1])


def test_bad_inputs_raise(image):
    with pytest.raises(ValueError, match="15 weights for 16"):
        metrics.deletion_auc(RegionModel(), image, GRID, np.zeros(15), 1)
    with pytest.raises(ValueError, match="order"):
        metrics.order_segments(np.zeros(3), "best")
    with pytest.raises(ValueError, match="permutation"):
        metrics.deletion_curve(RegionModel(), image, GRID, np.zeros(16), 1, order=[0] * 16)
    with pytest.raises(ValueError, match="mode"):
        metrics.perturbation_curve(RegionModel(), image, GRID, np.zeros(16), 1, mode="x")
    with pytest.raises(ValueError, match="at least 2"):
        metrics.stability([np.zeros(3)])
