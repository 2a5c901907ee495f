"""A model named by its directory (adapters.model_dir): what is missing is named, PaddleX's
export layout (``--save_dir D`` writes ``D/inference_model``) is found, and the API takes the
directory of a saved model wherever it takes the model."""
import os

import numpy as np
import pytest

from paddlex_interpret.adapters.model_dir import EXPORT_SUBDIR, find_model_dir
from paddlex_interpret.errors import UnsupportedModelError


def touch(path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    open(path, "w").close()


def test_what_is_missing_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        find_model_dir(tmp_path / "nope")
    touch(str(tmp_path / "file.txt"))
    with pytest.raises(NotADirectoryError, match="is a file"):
        find_model_dir(tmp_path / "file.txt")
    with pytest.raises(UnsupportedModelError, match="no model.yml in it"):
        find_model_dir(tmp_path)
    touch(str(tmp_path / "yml_only" / "model.yml"))
    with pytest.raises(UnsupportedModelError, match="no weights"):
        find_model_dir(tmp_path / "yml_only")


def test_the_export_command_s_save_dir_is_taken_for_the_model_below_it(tmp_path):
    inner = tmp_path / "inference_model" / EXPORT_SUBDIR
    for name in ("model.yml", "model.pdmodel", "model.pdiparams"):
        touch(str(inner / name))
    assert find_model_dir(tmp_path / "inference_model") == str(inner)
    assert find_model_dir(inner) == str(inner)


def test_the_api_takes_a_saved_model_s_directory(trained_classifier, tmp_path):
    import paddlex_interpret
    import paddlex as pdx

    image = trained_classifier.dataset.val_items()[0][0]
    with pytest.raises(UnsupportedModelError, match="no model.yml in it"):
        pdx.interpret.lime(image, str(tmp_path), num_samples=10, save_dir=str(tmp_path))
    kw = dict(num_samples=40, batch_size=20, save_dir=str(tmp_path), save_png=False, seed=0)
    by_dir = pdx.interpret.lime(image, trained_classifier.best_model_dir, **kw)
    by_model = pdx.interpret.lime(image, pdx.load_model(trained_classifier.best_model_dir), **kw)
    assert np.array_equal(by_dir.weights, by_model.weights)
    # one process, the model as a directory (as for nproc > 1)
    gw = paddlex_interpret.build_normlime_weights(trained_classifier.best_model_dir,
                                                  [p for p, _, _ in
                                                   trained_classifier.dataset.val_items()],
                                                  max_images=9,
                                                  n_concepts=4, nproc=1)
    assert gw.info["n_images"] == 9
