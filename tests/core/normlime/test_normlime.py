"""paddlex_interpret.core.normlime: the global weights builders (``fast``: PaddleX 1.3's logistic
regression; ``aggregate``: LIME on every image), the stratified budget and the
:class:`~paddlex_interpret.core.normlime.weights.GlobalWeights` they return, on classifiers whose
decision is known. (The weights themselves: ``test_global_weights.py``; built from a PaddleX
model, and their cache: ``tests/api/test_weights.py``.)"""
import logging

import numpy as np
import pytest

from helpers import colour_classifier, deciding_concepts
from paddlex_interpret.core import normlime as nl
from paddlex_interpret.core.normlime.concepts import ConceptCodebook


@pytest.fixture(scope="module")
def ds(shapes_dataset):
    return shapes_dataset


@pytest.mark.parametrize("variant", ["normlime", "avg"])
def test_aggregate_weights_rank_the_deciding_concept_first(ds, variant):
    """Aggregate mode (LIME per image) with a classifier that decides by colour exactly as the data
    do. (On the trained CNN aggregate weights show what LIME finds, which can be background for a
    class the net learnt as 'neither of the others'.)"""
    clf = colour_classifier(ds.labels)
    items = ds.train_items()
    cb = ConceptCodebook().fit([p for p, _, _ in items[::5]], n_concepts=10, seed=0)
    gw = nl.build_global_weights_aggregate(clf, [p for p, _, _ in items], cb, variant=variant,
                                           labels=[l for _, l, _ in items], max_images=9,
                                           num_samples=60, seed=0)
    assert gw.mode == "aggregate" and gw.settings["variant"] == variant
    assert gw.counts.tolist() == [3, 3, 3]  # stratified budget, every image predicted right
    deciding = deciding_concepts(cb, ds, ds.val_items()[::2])
    for c in range(ds.num_classes):
        assert int(gw.top_concepts(c, 1)[0]) in deciding[c], (c, deciding, gw.weights.round(3))


def test_fast_mode_uniform_for_never_predicted_classes_and_binary():
    rng = np.random.default_rng(0)

    def make(c):
        im = rng.integers(90, 140, (32, 32, 3)).astype(np.uint8)
        im[8:24, 8:24] = [(220, 30, 30), (30, 30, 220)][c]  # 4 whole cells of the 4x4 grid
        return im

    imgs = [make(i % 2) for i in range(24)]
    quads = lambda im: np.repeat(np.repeat(np.arange(16).reshape(4, 4), 8, 0), 8, 1)
    cb = ConceptCodebook().fit(imgs, segmenter=quads, n_concepts=3, seed=0)
    red = lambda b: b[..., 0].mean((1, 2)) - b[..., 2].mean((1, 2))
    three = lambda b: np.stack([red(b), -red(b), np.full(len(b), -1e3)], 1)  # class 2 never wins
    gw = nl.build_global_weights_fast(three, imgs, cb, segmenter=quads)
    np.testing.assert_allclose(gw.weights[2], 1 / 3)
    assert gw.counts.tolist() == [12, 12, 0]
    red_concept = cb.assign(imgs[0], quads(imgs[0]))[5]  # a quadrant inside the red square
    blue_concept = cb.assign(imgs[1], quads(imgs[1]))[5]
    assert gw.top_concepts(0, 1)[0] == red_concept and gw.top_concepts(1, 1)[0] == blue_concept
    binary = lambda b: np.stack([red(b), -red(b)], 1)
    gw2 = nl.build_global_weights_fast(binary, imgs, cb, segmenter=quads)
    assert gw2.top_concepts(0, 1)[0] == red_concept and gw2.top_concepts(1, 1)[0] == blue_concept
    with pytest.warns(RuntimeWarning, match="only 1 class"):
        gw3 = nl.build_global_weights_fast(lambda b: np.tile([5.0, 0.0], (len(b), 1)), imgs, cb,
                                           segmenter=quads)
    np.testing.assert_allclose(gw3.weights, 1 / 3)


def test_select_stratified_is_balanced_and_seeded():
    labels = [0] * 50 + [1] * 10 + [2] * 40
    idx = nl.select_stratified(100, labels, 24, seed=3)
    assert np.bincount(np.asarray(labels)[idx]).tolist() == [8, 8, 8]
    np.testing.assert_array_equal(idx, nl.select_stratified(100, labels, 24, seed=3))
    assert not np.array_equal(idx, nl.select_stratified(100, labels, 24, seed=4))
    idx = nl.select_stratified(100, labels, 40, seed=0)  # class 1 runs out: the others fill in
    assert np.bincount(np.asarray(labels)[idx]).tolist() == [15, 10, 15]
    assert len(nl.select_stratified(100, None, 7, seed=0)) == 7
    assert len(nl.select_stratified(5, None, None)) == 5


def test_a_one_class_fit_is_said_once_per_build_not_per_rank(caplog):
    from paddlex_interpret.core.normlime import _fit_fast

    X = np.eye(4, dtype=bool)
    y = np.zeros(4, dtype=np.int64)  # the model predicted one class only
    with caplog.at_level(logging.WARNING, logger="paddlex_interpret"):
        quiet = _fit_fast(X, y, 3, 10.0, 1.0, speak=False)  # a rank other than 0
        assert not caplog.records
        with pytest.warns(RuntimeWarning):
            said = _fit_fast(X, y, 3, 10.0, 1.0)
    assert np.array_equal(quiet, said) and np.allclose(said, 0.25)
    assert ["predicted only 1 class" in r.getMessage() for r in caplog.records] == [True]
