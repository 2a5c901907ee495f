"""paddlex_interpret.api.datasets: a dataset in any form becomes ``(items, labels, class names)``
checked against the model's classes; an empty dataset or one of other classes is a named
:class:`~paddlex_interpret.errors.DatasetError` wherever a dataset is read (weights builds,
``normlime``, the cache)."""
import numpy as np
import pytest

import paddlex_interpret
from paddlex_interpret.api import weights as weights_api
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
        weights_api.load_or_build_normlime_weights(str(tmp_path / "w.npz"), model, other)


# ------------------------------------------------------------------------------ dataset directories
def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_a_paddlex3_cls_dataset_directory(tmp_path):
    from paddlex_interpret.api.datasets import dataset_from_dir

    _write(tmp_path / "label.txt", "0 red car\n1 blue\n")
    _write(tmp_path / "val.txt", "images/a b.png 1\nimages/c.png 0\n")
    _write(tmp_path / "val_list.txt", "x.png 0\n")  # the PaddleX 3 layout comes first
    _write(tmp_path / "labels.txt", "x\n")
    items, names, layout = dataset_from_dir(str(tmp_path))
    assert layout == "ClsDataset" and names == ["red car", "blue"]
    assert items == [(str(tmp_path / "images" / "a b.png"), 1),
                     (str(tmp_path / "images" / "c.png"), 0)]


def test_a_paddlex2_imagenet_directory_and_a_folder(tmp_path):
    from paddlex_interpret.api.datasets import dataset_from_dir

    _write(tmp_path / "labels.txt", "red\ngreen\n")
    _write(tmp_path / "val_list.txt", "red/0.png 0\ngreen/1.png 1\n")
    items, names, layout = dataset_from_dir(str(tmp_path))
    assert layout == "ImageNet" and names == ["red", "green"] and items[1][1] == 1
    assert dataset_from_dir(str(tmp_path), "val_list.txt", "labels.txt")[1] == names
    folder = tmp_path / "f"
    folder.mkdir()
    assert dataset_from_dir(str(folder)) == (str(folder), None, "folder")


def test_malformed_lists_are_named(tmp_path):
    from paddlex_interpret.api.datasets import dataset_from_dir

    _write(tmp_path / "label.txt", "0 red\n2 blue\n")
    _write(tmp_path / "val.txt", "a.png 0\n")
    with pytest.raises(DatasetError, match=r"label\.txt:2"):
        dataset_from_dir(str(tmp_path))
    _write(tmp_path / "label.txt", "0 red\n")
    _write(tmp_path / "val.txt", "a.png red\n")
    with pytest.raises(DatasetError, match=r"val\.txt:1"):
        dataset_from_dir(str(tmp_path))
