"""paddlex_interpret.api.datasets: a dataset in any form becomes ``(items, labels, class names)``
checked against the model's classes; an empty dataset or one of other classes is a named
:class:`~paddlex_interpret.errors.DatasetError` wherever a dataset is read (weights builds,
``normlime``, the cache)."""
import numpy as np
import pytest

import paddlex_interpret
from paddlex_interpret.api import weights as weights_api, weights_cache
from paddlex_interpret.errors import DatasetError


@pytest.fixture(scope="module")
def ds(trained_classifier):
    return trained_classifier.dataset


def test_empty_dataset(pdx, model, ds, tmp_path):
    with pytest.raises(DatasetError, match="empty"):
        weights_api.build_normlime_weights(model, [])
    with pytest.raises(DatasetError, match="empty"):
        paddlex_interpret.normlime(ds.val_items()[0][0], model, [], save_dir=str(tmp_path))
    empty_list = tmp_path / "empty.txt"
    empty_list.write_text("")
    empty = pdx.datasets.ImageNet(ds.root, str(empty_list), ds.labels_file, model.test_transforms)
    with pytest.raises(DatasetError, match="empty"):
        weights_api.build_normlime_weights(model, empty)
    with pytest.raises(DatasetError):
        weights_api.build_normlime_weights(model, np.zeros((0, 8, 8, 3), np.uint8))


def test_dataset_whose_labels_do_not_match_the_model(pdx, model, ds, tmp_path):
    labels = tmp_path / "labels.txt"
    labels.write_text("cat\ndog\nbird\n")
    other = pdx.datasets.ImageNet(ds.root, ds.val_list, str(labels), model.test_transforms)
    with pytest.raises(DatasetError, match="do not match"):
        weights_api.build_normlime_weights(model, other)
    with pytest.raises(DatasetError, match="do not match"):
        paddlex_interpret.normlime(ds.val_items()[0][0], model, other, save_dir=str(tmp_path),
                                   num_samples=20)
    items = ds.val_items()
    with pytest.raises(DatasetError, match="label id 7"):
        weights_api.build_normlime_weights(model, [(items[0][0], 0), (items[1][0], 7)])
    # a valid cache does not hide a wrong dataset
    with pytest.raises(DatasetError):
        weights_cache.load_or_build_normlime_weights(str(tmp_path / "w.npz"), model, other)
