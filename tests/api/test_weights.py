"""paddlex_interpret.api.weights: NormLIME weights built from a PaddleX model and a dataset, and
their cache file (reused when it fits, rebuilt with a warning when stale, corrupt or truncated,
written atomically).

The trained model is the session's ``trained_classifier``; ``train_dataset``, ``fast_weights``
and ``weights_file`` are session fixtures (conftest.py), shared with the GLIME tests.
"""
import logging
import os
import warnings

import numpy as np
import pytest

from helpers import colour_classifier, deciding_concepts
from paddlex_interpret.adapters.paddlex import PaddleXClassifier
from paddlex_interpret.api import weights as weights_api
from paddlex_interpret.core import normlime as nl
from paddlex_interpret.core.normlime.concepts import ConceptCodebook
from paddlex_interpret.errors import DatasetError, NormLimeCacheError


@pytest.fixture(scope="module")
def ds(trained_classifier):
    return trained_classifier.dataset


CACHE_KW = dict(mode="fast", max_images=15, seed=0, n_concepts=8)


def test_fast_weights_rank_the_deciding_concept_first(fast_weights, ds, model):
    """Trained tiny model: each class's top concept lies on that class's objects."""
    gw = fast_weights
    assert gw.mode == "fast" and gw.class_names == list(model.labels)
    assert gw.weights.shape == (3, gw.codebook.n_concepts)
    np.testing.assert_allclose(gw.weights.sum(axis=1), 1.0)  # 1.3: a softmax per class
    deciding = deciding_concepts(gw.codebook, ds, ds.val_items()[::2])
    for c in range(ds.num_classes):
        assert int(gw.top_concepts(c, 1)[0]) in deciding.get(c, set()), (c, deciding,
                                                                       gw.weights.round(3))
    assert gw.counts.sum() == gw.info["n_images"] == 60
    assert gw.fingerprint["model"] and gw.fingerprint["codebook"] == gw.codebook.fingerprint()


# ------------------------------------------------------------------------------------ cache
def _no_rebuild(monkeypatch):
    def fail(*a, **k):
        raise AssertionError("the cache should have been used")

    monkeypatch.setattr(weights_api, "build_normlime_weights", fail)


def test_cache_round_trip_is_reused_without_rebuilding(weights_file, model, train_dataset,
                                                       monkeypatch, caplog):
    gw = nl.GlobalWeights.load(weights_file)
    assert gw.codebook is not None and gw.codebook.n_concepts == gw.n_concepts
    _no_rebuild(monkeypatch)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = weights_api.load_or_build_normlime_weights(weights_file, model, train_dataset,
                                                            **CACHE_KW)
    np.testing.assert_array_equal(again.weights, gw.weights)
    assert again.class_names == gw.class_names == list(model.labels)
    assert again.fingerprint == gw.fingerprint
    assert again.codebook.fingerprint() == gw.codebook.fingerprint()
    # a file that fits the model and classes is used whatever budget built it, and says so
    path = _copy(weights_file, str(weights_file) + ".b")
    before = open(path, "rb").read()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with caplog.at_level(logging.INFO, logger="paddlex_interpret"):
            gw12 = weights_api.load_or_build_normlime_weights(
                path, model, train_dataset, mode="fast", max_images=12, seed=3, n_concepts=8)
    assert gw12.info["n_images"] == gw.info["n_images"] != 12
    assert open(path, "rb").read() == before
    assert any("built with" in r.getMessage() and "max_images=%d" % gw.settings["max_images"]
               in r.getMessage() for r in caplog.records)


def _copy(src, dst):
    import shutil

    shutil.copy(src, dst)
    return str(dst)


def test_stale_cache_for_other_classes_is_rebuilt(weights_file, model, train_dataset, tmp_path):
    path = _copy(weights_file, tmp_path / "w.npz")
    gw = nl.GlobalWeights.load(path)
    gw.class_names = ["cat", "dog", "bird"]
    gw.fingerprint["class_names"] = gw.class_names
    gw.save(path)
    with pytest.warns(RuntimeWarning, match="class_names"):
        rebuilt = weights_api.load_or_build_normlime_weights(path, model, train_dataset,
                                                              **CACHE_KW)
    assert rebuilt.class_names == list(model.labels)
    assert nl.GlobalWeights.load(path).class_names == list(model.labels)


def test_stale_cache_for_another_model_is_rebuilt(weights_file, model, train_dataset, tmp_path):
    path = _copy(weights_file, tmp_path / "w.npz")
    gw = nl.GlobalWeights.load(path)
    gw.fingerprint["model"] = "another-checkpoint"
    gw.save(path)
    with pytest.warns(RuntimeWarning, match="model"):
        weights_api.load_or_build_normlime_weights(path, model, train_dataset, **CACHE_KW)
    assert nl.GlobalWeights.load(path).fingerprint["model"] == \
        PaddleXClassifier(model).fingerprint()


def test_stale_cache_for_another_codebook_is_rebuilt(weights_file, model, train_dataset, ds,
                                                     tmp_path):
    path = _copy(weights_file, tmp_path / "w.npz")
    old = nl.GlobalWeights.load(path)
    other = ConceptCodebook().fit([p for p, _, _ in ds.train_items()[::6]], n_concepts=6, seed=5)
    with pytest.warns(RuntimeWarning, match="codebook"):
        gw = weights_api.load_or_build_normlime_weights(path, model, train_dataset,
                                                         codebook=other, **CACHE_KW)
    assert gw.codebook.fingerprint() == other.fingerprint() != old.codebook.fingerprint()
    assert gw.n_concepts == 6
    back = nl.GlobalWeights.load(path)
    assert back.codebook.fingerprint() == other.fingerprint()
    with warnings.catch_warnings():  # the same codebook again: reused
        warnings.simplefilter("error")
        weights_api.load_or_build_normlime_weights(path, model, train_dataset, codebook=other,
                                                    **CACHE_KW)


@pytest.mark.parametrize("garbage", [b"", b"garbage", b"PK\x03\x04truncated zip"])
def test_corrupt_cache_is_rebuilt(weights_file, model, train_dataset, tmp_path, garbage):
    path = str(tmp_path / "w.npz")
    with open(path, "wb") as f:
        f.write(garbage)
    with pytest.raises(NormLimeCacheError):
        nl.GlobalWeights.load(path)
    with pytest.warns(RuntimeWarning, match="unusable"):
        gw = weights_api.load_or_build_normlime_weights(path, model, train_dataset, **CACHE_KW)
    np.testing.assert_array_equal(nl.GlobalWeights.load(path).weights, gw.weights)


def test_truncated_cache_is_rebuilt(weights_file, model, train_dataset, tmp_path):
    data = open(weights_file, "rb").read()
    path = str(tmp_path / "w.npz")
    with open(path, "wb") as f:
        f.write(data[:len(data) // 2])
    with pytest.warns(RuntimeWarning, match="unusable"):
        weights_api.load_or_build_normlime_weights(path, model, train_dataset, **CACHE_KW)
    nl.GlobalWeights.load(path)


def test_interrupted_write_leaves_the_old_file_intact(weights_file, model, train_dataset,
                                                      tmp_path, monkeypatch):
    path = _copy(weights_file, tmp_path / "w.npz")
    before = open(path, "rb").read()
    gw = nl.GlobalWeights.load(path)
    real_savez = np.savez

    def savez_then_die(f, **arrays):
        real_savez(f, **{k: arrays[k] for k in list(arrays)[:1]})  # half the file is written
        raise KeyboardInterrupt("killed mid-write")

    monkeypatch.setattr(nl.np, "savez", savez_then_die)
    with pytest.raises(KeyboardInterrupt):
        gw.save(path)
    assert open(path, "rb").read() == before
    # ...also when a stale cache (built for another model) is being rebuilt
    monkeypatch.undo()
    stale = nl.GlobalWeights.load(path)
    stale.fingerprint["model"] = "another-checkpoint"
    stale.save(path)
    before = open(path, "rb").read()
    monkeypatch.setattr(nl.np, "savez", savez_then_die)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(KeyboardInterrupt):
            weights_api.load_or_build_normlime_weights(path, model, train_dataset, mode="fast",
                                                        max_images=9, seed=1, n_concepts=8)
    assert any("rebuilding" in str(w.message) for w in caught)
    monkeypatch.undo()
    assert open(path, "rb").read() == before
    np.testing.assert_array_equal(nl.GlobalWeights.load(path).weights, stale.weights)
    assert [f for f in os.listdir(str(tmp_path)) if f.startswith(".tmp")] == []


def test_build_writes_atomically_when_asked(weights_file, tmp_path):
    gw = nl.GlobalWeights.load(weights_file)
    out = gw.save(str(tmp_path / "sub.npz"))
    assert nl.GlobalWeights.load(out).fingerprint == gw.fingerprint
    with open(out, "rb") as f:
        assert f.read(2) == b"PK"


# ------------------------------------------------------------------------------------ bad inputs
def test_unreadable_images_are_skipped_and_counted(model, ds, tmp_path, caplog):
    good = [p for p, _, _ in ds.val_items()[::2]]
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not an image")
    (tmp_path / "a_dir.png").mkdir()
    bad = [str(tmp_path / "broken.png"), str(tmp_path / "missing.png"), str(tmp_path / "a_dir.png")]
    items = good[:5] + bad + good[5:]
    with caplog.at_level("WARNING", logger="paddlex_interpret"):
        gw = weights_api.build_normlime_weights(model, items, mode="fast", n_concepts=6)
    assert gw.info["n_skipped"] == 3 and gw.info["n_images"] == len(good)
    assert any("broken.png" in s for s in gw.info["skipped"])
    assert "skipped 3 unreadable" in caplog.text
    # aggregate mode too (a colour classifier keeps it fast), with labels for stratification
    clf = colour_classifier(ds.labels)
    labelled = [(p, i) for i, p in enumerate(bad)] + [(p, l) for p, l, _ in ds.val_items()[::10]]
    gw = weights_api.build_normlime_weights(clf, labelled, mode="avg", num_samples=40,
                                             n_concepts=6, max_images=len(labelled))
    assert gw.settings["variant"] == "avg"
    assert gw.info["n_skipped"] == 3 and gw.info["n_images"] == len(labelled) - 3
    with pytest.raises(DatasetError, match="no readable image"):
        weights_api.build_normlime_weights(model, bad)


def test_bad_mode_and_budget(model, ds):
    items = [p for p, _, _ in ds.val_items()[:3]]
    with pytest.raises(ValueError, match="mode"):
        weights_api.build_normlime_weights(model, items, mode="slow")
    with pytest.raises(ValueError, match="max_images"):
        weights_api.build_normlime_weights(model, items, max_images=0)


def test_a_weights_build_verifies_the_weights_once(model, ds, monkeypatch):
    """Both builders hold the classifier's weights (its inference engine fingerprints them once
    per build, not once per batch or per LIME)."""
    from paddlex_interpret.adapters.paddlex import PaddleXClassifier
    from paddlex_interpret.runtime import fingerprint, policy

    clf = PaddleXClassifier(model, backend="inference")
    items = [p for p, _, _ in ds.train_items()[:6]]
    cb = ConceptCodebook().fit(items, n_concepts=4, seed=0)
    calls = []
    real = fingerprint.parameter_fingerprint
    monkeypatch.setattr(policy, "parameter_fingerprint",
                        lambda layer: calls.append(1) or real(layer))
    nl.build_global_weights_aggregate(clf, items[:3], cb, num_samples=40, batch_size=20, seed=0)
    assert len(calls) == 1
    nl.build_global_weights_fast(clf, items, cb, batch_size=2)
    assert len(calls) == 2


def test_the_auto_fill_rule_is_part_of_an_aggregate_build_s_settings():
    from paddlex_interpret.core.fill import RULE_VERSION

    auto = weights_api.build_settings("aggregate", "normlime", 10, 0, 100, 1, None, "auto", 0.25,
                                      "quickshift", None)
    black = weights_api.build_settings("aggregate", "normlime", 10, 0, 100, 1, None, "black",
                                       0.25, "quickshift", None)
    assert auto["fill_rule"] == RULE_VERSION  # a file built under another rule is not reused
    assert "fill_rule" not in black and black["fill"] == "black"
