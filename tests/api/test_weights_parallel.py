"""NormLIME weights built by two real processes (``paddle.distributed.spawn``, gloo) are the bits of
a one-process build of the same images with the same seed, in both modes."""
import os

import numpy as np
import pytest

from paddlex_interpret.api import weights as weights_api
from paddlex_interpret.api.weights import rank_classifier
from paddlex_interpret.core.normlime.weights import GlobalWeights
from paddlex_interpret.errors import UsageError

BUILDS = {"fast": dict(mode="fast", max_images=24, n_concepts=8),
          "aggregate": dict(mode="aggregate", max_images=8, n_concepts=8, num_samples=60,
                            fill="auto")}

pytestmark = pytest.mark.slow  # builds in processes started by paddle.distributed.spawn


def same_bits(a, b):
    assert a.class_names == b.class_names and a.mode == b.mode
    assert np.array_equal(a.weights, b.weights)
    assert np.array_equal(a.counts, b.counts)
    assert a.codebook.fingerprint() == b.codebook.fingerprint()
    assert np.array_equal(a.codebook.centers, b.codebook.centers)
    for key in ("n_images", "n_selected", "mean_colour", "concept_frequency", "support"):
        assert a.info.get(key) == b.info.get(key), key
    assert a.fingerprint == b.fingerprint


@pytest.mark.parametrize("mode", sorted(BUILDS))
def test_two_processes_build_the_weights_of_one(mode, trained, tmp_path):
    items = [path for path, _, _ in trained.dataset.val_items()]
    one = weights_api.build_normlime_weights(rank_classifier(trained.best_model_dir), items,
                                             seed=3, **BUILDS[mode])
    path = tmp_path / "nl.npz"
    two = weights_api.build_normlime_weights(trained.best_model_dir, items, save_path=path,
                                             nproc=2, seed=3, **BUILDS[mode])
    assert two.info["ranks"] == 2 and one.info["ranks"] == 1
    same_bits(one, two)
    same_bits(one, GlobalWeights.load(str(path)))  # rank 0 wrote it, whole
    assert sorted(os.listdir(str(tmp_path))) == ["nl.npz"]


def test_a_directory_that_is_not_a_model_is_named_before_any_process_starts(tmp_path):
    from paddlex_interpret.errors import UnsupportedModelError

    with pytest.raises(UnsupportedModelError, match="no model.yml in it"):
        weights_api.build_normlime_weights(str(tmp_path), [str(tmp_path / "x.png")],
                                           save_path=tmp_path / "nl.npz", nproc=2)
    assert not (tmp_path / "nl.npz").exists()


def test_a_rank_that_fails_fails_the_build_and_writes_nothing(tmp_path):
    """The ranks load a model that is not loadable (model.yml and weights that PaddleX cannot
    read): every rank fails at the same point after joining the job, none waits for ever."""
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "model.yml").write_text("Model: NotAModel\n_Attributes: {}\n")
    (tmp_path / "m" / "model.pdparams").write_bytes(b"not a state dict")
    with pytest.raises(Exception) as err:
        weights_api.build_normlime_weights(str(tmp_path / "m"), [str(tmp_path / "x.png")],
                                           save_path=tmp_path / "nl.npz", nproc=2)
    assert "RankError: rank 0: " in str(err.value), err.value  # every rank, the same point
    assert not (tmp_path / "nl.npz").exists()


def test_nproc_needs_a_model_directory(model, tmp_path):
    with pytest.raises(UsageError, match="model as a directory"):
        weights_api.build_normlime_weights(model, [], nproc=2)
