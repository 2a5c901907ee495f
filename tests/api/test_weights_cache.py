"""paddlex_interpret.api.weights on the hook's own checkpoints: the README's recipe works
as written (no rebuild, the file's bytes unchanged), a named file that does not fit is left as
it is with an error naming the mismatch, PaddleX 1.3's ``.npy`` gets a message saying what to
do, and every decision reaches the package's logger after ``import paddlex``."""
import logging
import os
import shutil

import numpy as np
import pytest

import paddlex_interpret  # noqa: F401  (before paddlex)
from paddlex_interpret.api import weights as weights_api
from paddlex_interpret.core.normlime.weights import GlobalWeights
from paddlex_interpret.errors import NormLimeCacheError


def no_rebuild(monkeypatch):
    monkeypatch.setattr(weights_api, "build_normlime_weights",
                        lambda *a, **k: pytest.fail("the weights file was rebuilt"))


def test_the_readme_recipe_uses_the_checkpoints_weights_file_as_it_is(hooked, tiny_shapes,
                                                                      monkeypatch, caplog):
    import paddlex as pdx

    root = os.path.dirname(hooked["save_dir"])
    monkeypatch.chdir(root)  # the README's paths are relative to where training ran
    weights = os.path.join("output", "epoch_2", "normlime_weights.npz")
    before = open(weights, "rb").read()
    no_rebuild(monkeypatch)
    eval_dataset = [p for p, _, _ in tiny_shapes.val_items()]
    model = pdx.load_model("output/epoch_2")
    with caplog.at_level(logging.INFO, logger="paddlex_interpret"):
        exp = pdx.interpret.normlime(tiny_shapes.val_items()[0][0], model, dataset=eval_dataset,
                                     num_samples=60, save_png=False,
                                     normlime_weights_file="output/epoch_2/normlime_weights.npz")
    assert open(weights, "rb").read() == before
    np.testing.assert_array_equal(exp.global_weights.weights, GlobalWeights.load(weights).weights)
    assert any("built with" in r.getMessage() for r in caplog.records)


def test_a_named_file_that_does_not_fit_is_kept_and_the_error_says_why(hooked, tiny_shapes,
                                                                      tmp_path):
    import paddlex as pdx

    src = os.path.join(hooked["save_dir"], "epoch_2", "normlime_weights.npz")
    path = str(tmp_path / "w.npz")
    shutil.copy(src, path)
    other = pdx.load_model(os.path.join(hooked["save_dir"], "epoch_1"))  # another checkpoint
    before = open(path, "rb").read()
    with pytest.raises(NormLimeCacheError, match="another model.*left as it is"):
        pdx.interpret.normlime(tiny_shapes.val_items()[0][0], other,
                               dataset=[p for p, _, _ in tiny_shapes.val_items()],
                               num_samples=40, save_png=False, normlime_weights_file=path)
    assert open(path, "rb").read() == before
    # in a checkpoint directory the same holds without naming the file
    ckpt_file = os.path.join(hooked["save_dir"], "epoch_2", "normlime_weights.npz")
    ckpt_before = open(ckpt_file, "rb").read()
    with pytest.raises(NormLimeCacheError, match="left as it is"):
        weights_api.load_or_build_normlime_weights(ckpt_file, other, max_images=5)
    assert open(ckpt_file, "rb").read() == ckpt_before


def test_a_stale_default_cache_is_rebuilt_and_said_so_after_import_paddlex(hooked, tiny_shapes,
                                                                          tmp_path, caplog):
    import paddlex as pdx  # noqa: F401  (it turns Python warnings off: the logger must speak)
    import warnings

    model = pdx.load_model(os.path.join(hooked["save_dir"], "epoch_1"))
    path = weights_api.default_weights_path(str(tmp_path), model)
    shutil.copy(os.path.join(hooked["save_dir"], "epoch_2", "normlime_weights.npz"), path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # what import paddlex does
        with caplog.at_level(logging.WARNING, logger="paddlex_interpret"):
            gw = weights_api.load_or_build_normlime_weights(
                path, model, [p for p, _, _ in tiny_shapes.val_items()], max_images=6,
                n_concepts=4)
    messages = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("another model" in m and "rebuilding" in m for m in messages), messages
    assert gw.fingerprint["model"] == GlobalWeights.load(path).fingerprint["model"]


def test_paddlex13_npy_weights_are_named_with_what_to_do(tmp_path):
    path = str(tmp_path / "mini_imagenet_veg_mobilenetv2.npy")
    np.save(path, np.array({"0": [0.1, 0.2]}, dtype=object), allow_pickle=True)
    with pytest.raises(NormLimeCacheError, match="PaddleX 1.3.*build_normlime_weights"):
        GlobalWeights.load(path)
