"""paddlex_interpret.core.agreement: agreement of an explanation with a ground-truth mask
(pointing game, IoU) and with other explanations (top-k Jaccard, Spearman, stability across
runs); :mod:`~paddlex_interpret.core.metrics` re-exports them."""
import numpy as np
import pytest

from helpers import GRID, RegionModel, oracle_weights, region_image
from paddlex_interpret.core import agreement, metrics
from paddlex_interpret.core.lime import LimeExplainer


@pytest.fixture
def image():
    return region_image()


def test_metrics_re_exports_the_agreement_scores():
    for name in agreement.__all__:
        assert getattr(metrics, name) is getattr(agreement, name), name
        assert name in metrics.__all__


def test_pointing_game_and_iou():
    gt = np.zeros((32, 32), bool)
    gt[8:24, 8:16] = True
    assert agreement.pointing_game(oracle_weights(), gt, segments=GRID)
    w = np.zeros(16)
    w[0] = 1
    assert not agreement.pointing_game(w, gt, segments=GRID)
    # a 1 px tolerance reaches only the edge of superpixel 0: most of it stays outside
    assert not agreement.pointing_game(w, gt, segments=GRID, tolerance=1)
    w2 = np.zeros(16)
    w2[4] = 1  # left neighbour of superpixel 5: inside after growing the mask by 8 px
    assert agreement.pointing_game(w2, gt, segments=GRID, tolerance=8)
    heat = np.zeros((32, 32))
    heat[10, 10] = 1.0
    assert agreement.pointing_game(heat, gt)
    assert agreement.iou(gt, gt) == 1.0 and agreement.iou(gt, ~gt) == 0.0
    assert agreement.iou(np.zeros(3, bool), np.zeros(3, bool)) == 1.0
    assert agreement.explanation_iou(oracle_weights(), GRID, gt) == pytest.approx(1.0)
    assert agreement.explanation_iou(oracle_weights(), GRID, gt, k=1) == pytest.approx(0.5)
    assert agreement.top_segments_mask(-oracle_weights(), GRID).sum() == 0  # no positive weight


def test_stability_of_identical_runs_is_one(image):
    model = RegionModel()
    runs = [LimeExplainer(model, num_samples=200, seed=7).explain(image, labels=[1],
                                                                  segments=GRID).weights[0]
            for _ in range(3)]
    st = agreement.stability(runs, k=5)
    assert st == {"jaccard": 1.0, "spearman": 1.0, "pairs": 3}


def test_stability_of_other_seeds_is_high_but_measured(image):
    model = RegionModel()
    runs = [LimeExplainer(model, num_samples=200, seed=s).explain(image, labels=[1],
                                                                  segments=GRID).weights[0]
            for s in range(3)]
    st = agreement.stability(runs, k=2, positive_only=True)
    assert st["jaccard"] == 1.0  # the deciding pair is found with every seed
    assert 0.0 < st["spearman"] <= 1.0


def test_rank_statistics():
    assert agreement.spearman([1, 2, 3, 4], [10, 20, 30, 40]) == 1.0
    assert agreement.spearman([1, 2, 3, 4], [4, 3, 2, 1]) == -1.0
    # ties share ranks (matches scipy's spearmanr)
    from scipy.stats import spearmanr

    a, b = [1, 1, 2, 3, 5], [2, 1, 1, 4, 4]
    assert agreement.spearman(a, b) == pytest.approx(spearmanr(a, b).correlation)
    assert agreement.spearman([1, 1, 1], [1, 2, 3]) == 0.0  # constant: no rank information
    assert agreement.topk_jaccard([5, 4, 3, 0], [5, 4, 0, 3], k=2) == 1.0
    assert agreement.topk_jaccard([5, 4, 3, 0], [0, 3, 4, 5], k=2) == 0.0
    assert agreement.topk_jaccard([-5, 1, 0], [5, 1, 0], k=1) == 1.0  # by |weight|
    assert agreement.topk_jaccard([-5, 1, 0], [5, 1, 0], k=1, positive_only=True) == 0.0
    assert agreement.topk_jaccard([-1, -2], [-3, -1], k=2, positive_only=True) == 1.0  # both empty
