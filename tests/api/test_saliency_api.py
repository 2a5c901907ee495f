"""pdx.interpret.gradcam / smoothgrad / integrated_gradients on the trained shapes classifier."""
import os

import numpy as np

from paddlex_interpret.adapters.paddlex import PaddleXClassifier
from pxi_testing.reliance import object_reliance, peak_on_object, relied_classes


def relied_on(trained, items):
    """The classes whose probability falls by more than 0.3 when their object is greyed out:
    the ones the model provably decides on the object."""
    clf = PaddleXClassifier(trained.model, backend="dygraph")
    return relied_classes(object_reliance(clf, [
        (clf.view(path), label, trained.dataset.mask_for(path)) for path, label, _ in items]))


def pointing(trained, pdx, method, **kwargs):
    """``{class: (hits, images)}``: the map's peak on the object, over the held-out images of
    the classes the model relies on."""
    items = trained.dataset.val_items()
    classes = relied_on(trained, items)
    assert classes, "the trained model relies on no object"
    got = {}
    for path, label, _ in items:
        if label in classes:
            heat = getattr(pdx.interpret, method)(path, trained.model, labels=[label],
                                                  segmenter=None, **kwargs).heatmap(label)
            hits, total = got.get(label, (0, 0))
            got[label] = (hits + peak_on_object(heat, trained.dataset.mask_for(path)), total + 1)
    return got


def test_integrated_gradients_points_at_the_object_the_model_uses(trained, pdx):
    got = pointing(trained, pdx, "integrated_gradients", steps=16)
    hits, total = map(sum, zip(*got.values()))
    # chance is the object's share of the image (about 7 %); over training seeds 0-2, 39 / 40,
    # 40 / 40 and 59 / 60 (BENCHMARKS.md, "Gradient methods")
    assert hits / total >= 0.85, got


def test_gradcam_points_at_the_object_far_above_chance(trained, pdx):
    got = pointing(trained, pdx, "gradcam")
    hits, total = map(sum, zip(*got.values()))
    # chance is about 7 %. Grad-CAM's channel-averaged gradients are coarser than IG's: over
    # training seeds 0-2, 22 / 40, 22 / 40 and 37 / 60 (BENCHMARKS.md, "Gradient methods")
    assert hits / total >= 0.4, got


def test_a_gradient_explanation_is_saved_like_lime(trained, pdx, tmp_path):
    path = trained.dataset.val_items()[0][0]
    exp = pdx.interpret.integrated_gradients(path, trained.model, save_dir=str(tmp_path),
                                             steps=8)
    assert os.path.exists(exp.png_path) and exp.png_path.endswith("integrated_gradients-0.png")
    assert exp.npz_path.endswith(".npz") and exp.n_segments > 1  # quickshift superpixels
    again = pdx.interpret.smoothgrad(path, trained.model, n_samples=4, seed=1)
    assert np.array_equal(again.maps, pdx.interpret.smoothgrad(path, trained.model, n_samples=4,
                                                               seed=1).maps)
