"""``paddlex.interpret.normlime`` (paddlex_interpret.api.normlime) on the session's trained PaddleX
classifier: PaddleX 1.3's semantics (files, PNG layout, the weights file computed once)."""
import os

import numpy as np
import pytest

import paddlex_interpret
from paddlex_interpret.api import weights as weights_api


@pytest.fixture(scope="module")
def ds(trained_classifier):
    return trained_classifier.dataset


def test_normlime_paddlex13_semantics(pdx, model, train_dataset, ds, tmp_path, monkeypatch):
    img = ds.val_items()[0][0]
    name = os.path.splitext(os.path.basename(img))[0]
    save_dir = str(tmp_path / "out")
    exp = pdx.interpret.normlime(img, model, train_dataset, num_samples=60, batch_size=30,
                                 save_dir=save_dir, max_images=24, n_concepts=8)
    default = weights_api.default_weights_path(save_dir, model, "fast")
    assert exp.weights_file == default and os.path.isfile(default)  # None -> a default name
    assert exp.png_path == os.path.join(save_dir, name, "normlime_s60-0.png")
    from PIL import Image

    with Image.open(exp.png_path) as im:
        assert im.size == (2500, 2000)  # 5 columns, 4 rows (image, LIME, NormLIME, combined)
    L, d = exp.weights.shape
    assert exp.extra["normlime"].shape == exp.extra["combined"].shape == (L, d)
    np.testing.assert_allclose(exp.extra["combined"], exp.weights * exp.extra["normlime"])
    gw = exp.global_weights
    np.testing.assert_allclose(exp.extra["normlime"][0],
                               gw.weights[exp.labels[0]][exp.concepts])
    assert exp.settings["method"] == "normlime"
    # second call: the weights file is loaded, not rebuilt; the PNG gets the next number
    monkeypatch.setattr(weights_api, "build_normlime_weights",
                        lambda *a, **k: pytest.fail("rebuilt"))
    again = pdx.interpret.normlime(img, model, train_dataset, num_samples=60, batch_size=30,
                                   save_dir=save_dir, max_images=24, n_concepts=8)
    assert again.png_path.endswith("normlime_s60-1.png")
    np.testing.assert_array_equal(again.extra["combined"], exp.extra["combined"])
    from paddlex_interpret.core.explanation import Explanation

    back = Explanation.load(exp.npz_path)
    np.testing.assert_array_equal(back.extra["normlime"], exp.extra["normlime"])


def test_normlime_explicit_weights_file_is_computed_once(model, train_dataset, ds, tmp_path):
    img = ds.val_items()[3][0]
    wf = str(tmp_path / "my_weights.npy")  # PaddleX 1.3 users wrote .npy names: kept as given
    exp = paddlex_interpret.normlime(img, model, train_dataset, num_samples=40, batch_size=40,
                                     save_dir=str(tmp_path), normlime_weights_file=wf,
                                     max_images=15, n_concepts=8, save_png=False)
    assert os.path.isfile(wf) and exp.weights_file == wf
    mtime = os.stat(wf).st_mtime_ns
    paddlex_interpret.normlime(img, model, train_dataset, num_samples=40, batch_size=40,
                               save_dir=str(tmp_path), normlime_weights_file=wf, max_images=15,
                               n_concepts=8, save_png=False)
    assert os.stat(wf).st_mtime_ns == mtime


def test_normlime_without_dataset_is_a_clear_error(model, ds, tmp_path):
    with pytest.raises(ValueError, match="needs a dataset"):
        paddlex_interpret.normlime(ds.val_items()[0][0], model, None, save_dir=str(tmp_path))
    assert os.listdir(str(tmp_path)) == []
