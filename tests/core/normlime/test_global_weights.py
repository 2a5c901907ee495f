"""paddlex_interpret.core.normlime.weights: NormLIME's per-class concept weights (queries, the
prior of an explanation's superpixels, PaddleX 1.3's combined weights, GLIME's prior) and their
pickle-free file."""
import numpy as np
import pytest

from paddlex_interpret.core.normlime import weights as gwm
from paddlex_interpret.core import normlime as nl
from paddlex_interpret.core.normlime.concepts import ConceptCodebook
from paddlex_interpret.errors import NormLimeCacheError


def test_global_weights_queries_and_combine():
    gw = gwm.GlobalWeights(np.array([[0.1, 0.7, 0.2], [0.5, 0.2, 0.3]]), ["a", "b"])
    assert gw.top_concepts("a", 2).tolist() == [1, 2] and gw.top_concepts(1, 1).tolist() == [0]
    prior = gw.prior_for([2, 2, 0, 1], [1, 0])
    np.testing.assert_allclose(prior, [[0.3, 0.3, 0.5, 0.2], [0.2, 0.2, 0.1, 0.7]])
    np.testing.assert_allclose(gwm.combine([[1.0, -2.0]], [[0.5, 0.25]]), [[0.5, -0.5]])
    with pytest.raises(ValueError):
        gw.prior_for([3], [0])
    with pytest.raises(ValueError):
        gwm.combine(np.ones((1, 2)), np.ones((1, 3)))
    assert nl.GlobalWeights is gwm.GlobalWeights  # what the builders return


def test_save_and_load_round_trip_without_pickle(tmp_path):
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (16, 16, 3)).astype(np.uint8) for _ in range(4)]
    quads = lambda im: np.repeat(np.repeat(np.arange(4).reshape(2, 2), 8, 0), 8, 1)  # noqa: E731
    cb = ConceptCodebook().fit(images, segmenter=quads, n_concepts=3, seed=0)
    gw = gwm.GlobalWeights(rng.random((2, 3)), ["cat", "dog"], mode="aggregate",
                           settings={"variant": "avg"}, fingerprint={"model": "m1"},
                           counts=[3, 1], info={"n_images": 4}, codebook=cb)
    path = gw.save(str(tmp_path / "w.npz"))
    with np.load(path, allow_pickle=False) as z:  # readable without pickle
        assert "weights" in z.files
    back = gwm.GlobalWeights.load(path)
    np.testing.assert_array_equal(back.weights, gw.weights)
    assert back.class_names == ["cat", "dog"] and back.mode == "aggregate"
    assert back.settings == {"variant": "avg"} and back.fingerprint == {"model": "m1"}
    assert back.counts.tolist() == [3, 1] and back.info == {"n_images": 4}
    assert back.codebook.fingerprint() == cb.fingerprint()
    assert back.mismatches({"model": "m1"}) == []
    assert back.mismatches({"model": "m2", "class_names": ["cat", "dog"]}) == ["class_names",
                                                                               "model"]
    with pytest.raises(FileNotFoundError):
        gwm.GlobalWeights.load(str(tmp_path / "missing.npz"))
    np.save(str(tmp_path / "paddlex13.npy"), np.ones(3))  # PaddleX 1.3's weights files
    with pytest.raises(NormLimeCacheError):
        gwm.GlobalWeights.load(str(tmp_path / "paddlex13.npy"))
    bad = gwm.GlobalWeights(np.array([[np.nan, 1.0]]), ["x"])
    with pytest.raises(NormLimeCacheError, match="non-finite"):
        gwm.GlobalWeights.load(bad.save(str(tmp_path / "nan.npz")))


def test_glime_prior_is_the_concept_weight_times_sqrt_area_l1_normalised():
    gw = gwm.GlobalWeights(np.array([[0.2, 0.8], [0.6, 0.4]]), ["a", "b"])

    class TwoConcepts:  # superpixel j -> concept j % 2
        def assign(self, image, segments):
            return np.arange(int(np.max(segments)) + 1) % 2

    seg = np.array([[0, 0, 0, 1], [2, 2, 1, 1]])  # areas 3, 3, 2
    prior = gwm.glime_prior(gw, codebook=TwoConcepts(), image=np.zeros((2, 4, 3), np.uint8))
    p = prior(seg, np.array([0, 1]))
    raw = np.array([[0.2, 0.8, 0.2], [0.6, 0.4, 0.6]]) * np.sqrt(np.array([3, 3, 2]) / (8 / 3))
    np.testing.assert_allclose(p, raw / raw.sum(axis=1, keepdims=True))
    flat = gwm.glime_prior(gw, codebook=TwoConcepts(), image=np.zeros((2, 4, 3), np.uint8),
                           normalize=None, area_exponent=0)
    np.testing.assert_allclose(flat(seg, np.array([1])), [[0.6, 0.4, 0.6]])
    with pytest.raises(ValueError, match="codebook"):
        gwm.glime_prior(gw, image=np.zeros((2, 4, 3), np.uint8))
    with pytest.raises(ValueError, match="image"):
        gwm.glime_prior(gw, codebook=TwoConcepts())
