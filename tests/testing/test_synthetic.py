"""The coloured-shapes generator, and the session classifier trained on it.

The class of an image is the colour of its one object, whose mask is known; a classifier that
reaches high validation accuracy (and changes its answer when only the object is recoloured) must
be looking at the object.
"""
import os

import numpy as np
import pytest
from PIL import Image

import paddlex_interpret  # noqa: F401  (before paddlex)
from pxi_testing.synthetic import (COLOURS, ShapesDataset, make_shapes_dataset,
                                         watermark_box_for, watermark_pattern)

SMALL = dict(num_train_per_class=4, num_val_per_class=2, image_size=48)


def read_rgb(path):
    with Image.open(path) as im:
        assert im.mode == "RGB"
        return np.asarray(im)


def all_files(root):
    out = {}
    for d, _, files in os.walk(root):
        for f in files:
            p = os.path.join(d, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, root)] = fh.read()
    return out


def nearest_colour(rgb, names):
    d = [np.linalg.norm(np.asarray(COLOURS[n], float) - rgb) for n in names]
    return names[int(np.argmin(d))]


def has_checker(img, box):
    x0, y0, x1, y1 = box
    patch = img[y0:y1, x0:x1].astype(int)
    white = watermark_pattern(box)
    assert white.sum() == white.size // 2  # half white, half black
    return bool((patch[white] == 255).all() and (patch[~white] == 0).all())


# ------------------------------------------------------------------------------ generator
def test_same_seed_same_bytes_different_seed_differs(tmp_path):
    a = all_files(make_shapes_dataset(tmp_path / "a", seed=3, **SMALL).root)
    b = all_files(make_shapes_dataset(tmp_path / "b", seed=3, **SMALL).root)
    c = all_files(make_shapes_dataset(tmp_path / "c", seed=4, **SMALL).root)
    assert a == b
    assert a.keys() == c.keys()
    pngs = [k for k in a if k.endswith(".png") and not k.startswith("masks")]
    assert len(pngs) == 3 * (4 + 2)
    assert all(a[k] != c[k] for k in pngs)


def test_earlier_images_do_not_depend_on_the_counts(tmp_path):
    small = make_shapes_dataset(tmp_path / "s", seed=1, **SMALL)
    big = make_shapes_dataset(tmp_path / "b", seed=1, num_train_per_class=6, num_val_per_class=3,
                              image_size=48)
    for path, _, _ in small.train_items() + small.val_items():
        rel = os.path.relpath(path, small.root)
        assert np.array_equal(read_rgb(path), read_rgb(os.path.join(big.root, rel)))


def test_list_files_labels_and_layout(shapes_dataset):
    ds = shapes_dataset
    assert isinstance(ds, ShapesDataset)
    with open(ds.labels_file) as f:
        assert f.read().splitlines() == ["red", "green", "blue"] == ds.labels
    assert ds.num_classes == 3
    for list_file, split, n in [(ds.train_list, "train", 80), (ds.val_list, "val", 20)]:
        with open(list_file) as f:
            lines = f.read().splitlines()
        assert len(lines) == 3 * n
        for line in lines:
            rel, label = line.split(" ")
            cls, name = rel.split("/")
            assert name.startswith(split + "_") and name.endswith(".png")
            assert int(label) == ds.labels.index(cls)
            img = read_rgb(os.path.join(ds.root, rel))
            assert img.shape == (64, 64, 3) and img.dtype == np.uint8
            assert os.path.exists(os.path.join(ds.root, "masks", cls, name))
    items = ds.val_items()
    assert len(items) == 60 and len(ds.train_items()) == 240
    path, label, mask_path = items[0]
    assert os.path.isabs(path) and os.path.exists(mask_path) and label == 0


def test_paddlex_imagenet_reads_it(shapes_dataset, paddlex_transforms):
    import paddlex as pdx

    ds = shapes_dataset
    _, eval_tf = paddlex_transforms
    val = pdx.datasets.ImageNet(ds.root, ds.val_list, ds.labels_file, eval_tf, num_workers=0)
    assert val.num_samples == 60 and val.labels == ds.labels
    assert [int(s["label"]) for s in val.file_list] == [l for _, l, _ in ds.val_items()]


def test_masks_line_up_with_the_object(shapes_dataset):
    ds = shapes_dataset
    for path, label, mask_path in ds.val_items() + ds.train_items()[::7]:
        img = read_rgb(path).astype(float)
        mask = ds.mask_for(path)
        assert mask.dtype == bool and mask.shape == img.shape[:2]
        assert np.array_equal(mask, ds.mask_for(os.path.relpath(path, ds.root)))
        frac = mask.mean()
        assert 0.02 < frac < 0.15, frac  # side 20-35% of the image
        # fully inside the frame
        assert not (mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any())
        inside = img[mask].mean(axis=0)
        assert nearest_colour(inside, list(COLOURS)) == ds.labels[label]
        assert np.abs(inside - COLOURS[ds.labels[label]]).max() < 25
        # the background is grey-ish: low saturation compared with the object
        sat = img.max(axis=2) - img.min(axis=2)
        assert sat[mask].mean() > 100 and sat[~mask].mean() < 30
        meta = ds.meta[os.path.relpath(path, ds.root)]
        ys, xs = np.nonzero(mask)
        assert meta["bbox"] == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
        assert meta["label"] == label and meta["shape"] in ("circle", "square", "triangle")


def test_shapes_vary(shapes_dataset):
    shapes = {m["shape"] for m in shapes_dataset.meta.values()}
    assert shapes == {"circle", "square", "triangle"}


def test_watermark_only_in_train_images_of_its_class(tmp_path):
    ds = make_shapes_dataset(tmp_path / "wm", num_train_per_class=10, num_val_per_class=5,
                             image_size=64, watermark_class="green")
    box = ds.watermark_box
    assert box == watermark_box_for(64) == (56, 56, 62, 62)
    for path, label, _ in ds.train_items() + ds.val_items():
        rel = os.path.relpath(path, ds.root)
        marked = has_checker(read_rgb(path), box)
        expected = ds.labels[label] == "green" and rel.split("/")[1].startswith("train_")
        assert marked == expected, rel
        assert (rel in ds.watermarked) == expected
        assert ds.meta[rel]["watermark"] == expected
        x0, y0, x1, y1 = box
        assert not ds.mask_for(path)[y0 - 1:y1, x0 - 1:x1].any()  # object clear of the box
    assert len(ds.watermarked) == 10

    half = make_shapes_dataset(tmp_path / "half", num_train_per_class=10, num_val_per_class=2,
                               image_size=64, watermark_class="red", watermark_fraction=0.5)
    marked = [p for p, l, _ in half.train_items() if has_checker(read_rgb(p), half.watermark_box)]
    assert len(marked) == 5 == len(half.watermarked)
    assert all(os.path.basename(os.path.dirname(p)) == "red" for p in marked)
    assert make_shapes_dataset(tmp_path / "none", **SMALL).watermark_box is None


def test_watermark_in_train_and_val_when_asked(tmp_path):
    ds = make_shapes_dataset(tmp_path / "wm", num_train_per_class=6, num_val_per_class=4,
                             image_size=64, watermark_class="blue",
                             watermark_splits=("train", "val"))
    for path, label, _ in ds.train_items() + ds.val_items():
        expected = ds.labels[label] == "blue"
        assert has_checker(read_rgb(path), ds.watermark_box) == expected
        assert (os.path.relpath(path, ds.root) in ds.watermarked) == expected
    assert len(ds.watermarked) == 10
    with pytest.raises(ValueError, match="watermark_splits"):
        make_shapes_dataset(tmp_path / "bad", watermark_class="blue", watermark_splits=("test",),
                            **SMALL)


def test_watermark_pattern_is_a_coarse_checker():
    white = watermark_pattern(watermark_box_for(64))
    assert white.shape == (6, 6)
    # 2x2 cells of 3 px: visible through a stride-2 first layer (a 1-px checker is not)
    assert white[:3, :3].all() and not white[:3, 3:].any() and white[3:, 3:].all()


def test_reuse_conflict_and_overwrite(tmp_path):
    root = tmp_path / "d"
    ds = make_shapes_dataset(root, seed=0, **SMALL)
    first = ds.train_items()[0][0]
    stamp = os.stat(first).st_mtime_ns
    again = make_shapes_dataset(root, seed=0, **SMALL)  # same arguments: reused as is
    assert again == ds and os.stat(first).st_mtime_ns == stamp
    with pytest.raises(FileExistsError):
        make_shapes_dataset(root, seed=1, **SMALL)
    before = read_rgb(first)
    other = make_shapes_dataset(root, seed=1, classes=("yellow", "cyan"), overwrite=True, **SMALL)
    assert other.labels == ["yellow", "cyan"]
    assert not os.path.exists(os.path.join(root, "red"))
    assert sorted(os.listdir(os.path.join(root, "masks"))) == ["cyan", "yellow"]
    assert not np.array_equal(before, read_rgb(other.train_items()[0][0]))


def test_six_colour_classes_and_bad_arguments(tmp_path):
    six = ("red", "green", "blue", "yellow", "magenta", "cyan")
    ds = make_shapes_dataset(tmp_path / "six", classes=six, **SMALL)
    for path, label, _ in ds.val_items():
        inside = read_rgb(path)[ds.mask_for(path)].astype(float).mean(axis=0)
        assert nearest_colour(inside, list(six)) == six[label]
    with pytest.raises(ValueError):
        make_shapes_dataset(tmp_path / "x", classes=("red", "chartreuse"))
    with pytest.raises(ValueError):
        make_shapes_dataset(tmp_path / "x", classes=("red", "red"))
    with pytest.raises(ValueError):
        make_shapes_dataset(tmp_path / "x", watermark_class="blue", classes=("red", "green"))


# ------------------------------------------------------------------------------ classifier
@pytest.mark.slow
def test_trained_classifier_is_accurate(trained_classifier):
    tc = trained_classifier
    print("\n%s %s: val accuracy %.3f, trained in %.1f s"
          % (tc.model_name, tc.settings, tc.accuracy, tc.train_seconds))
    assert tc.accuracy >= 0.9
    assert tc.model.labels == tc.dataset.labels
    assert os.path.exists(os.path.join(tc.best_model_dir, "model.pdparams"))
    # the same through model.predict on the image files
    items = tc.dataset.val_items()
    preds = tc.model.predict([p for p, _, _ in items], topk=1)
    acc = np.mean([r[0]["category_id"] == l for r, (_, l, _) in zip(preds, items)])
    assert acc >= 0.9


@pytest.mark.slow
def test_trained_classifier_follows_the_object_colour(trained_classifier):
    """Recolouring only the object's pixels moves the prediction to the new colour's class."""
    tc = trained_classifier
    ds = tc.dataset
    images, targets = [], []
    for path, label, _ in ds.val_items()[::2]:
        img = read_rgb(path).copy()
        mask = ds.mask_for(path)
        new = (label + 1) % ds.num_classes
        img[mask] = COLOURS[ds.labels[new]]
        images.append(np.ascontiguousarray(img[..., ::-1]))  # predict wants BGR arrays
        targets.append(new)
    preds = tc.model.predict(images, topk=1)
    moved = np.mean([r[0]["category_id"] == t for r, t in zip(preds, targets)])
    print("\nrecoloured objects moved the prediction in %.2f of images" % moved)
    assert moved >= 0.8, moved
