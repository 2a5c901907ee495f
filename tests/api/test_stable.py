"""Explanations that hold still, on the session's shapes model with every default
(``num_samples='auto'``, the stratified sampler, ``fill='auto'``): three seeds give the same
top superpixels, the certified ones are the same and lie on the object the model reads, and the
budget records what it spent. PaddleX 1.3's estimator stays available by name."""
import numpy as np
import pytest

import paddlex_interpret  # noqa: F401  (before paddlex)
from paddlex_interpret import PaddleXClassifier
from paddlex_interpret.core.lime import LimeExplainer
from paddlex_interpret.core.perturbation import sample_masks
from paddlex_interpret.core.sampling import cosine_distance_to_all_on, exponential_kernel
from pxi_testing.reliance import object_reliance


@pytest.fixture(scope="module")
def read_objects(trained_classifier):
    """Val images ``(path, label, mask)`` of the classes the model provably reads from their
    object (hiding the object alone takes the class's probability away), 4 per class."""
    clf = PaddleXClassifier(trained_classifier.model)
    ds = trained_classifier.dataset
    items = {}
    for path, label, _ in ds.val_items():
        if len(items.setdefault(int(label), [])) < 4:
            items[int(label)].append((path, int(label), ds.mask_for(path)))
    reliance = object_reliance(clf, [(clf.view(p), l, m) for v in items.values()
                                     for p, l, m in v])
    read = [c for c in sorted(reliance) if reliance[c] > 0.5]
    return [it for c in read for it in items[c]], reliance


def test_three_seeds_give_the_same_top_superpixels_on_the_object(pdx, trained_classifier,
                                                                  read_objects, tmp_path):
    items, reliance = read_objects
    assert len(items) >= 8, reliance  # the model reads at least two classes from their object
    certified_on_object, certified = 0, 0
    for path, label, mask in items:
        exps = [pdx.interpret.lime(path, trained_classifier.model, labels=[label],
                                   save_dir=str(tmp_path), save_png=False, seed=s)
                for s in range(3)]
        for e in exps:
            assert e.settings["num_samples"] == "auto"
            assert 0 < e.settings["num_samples_used"] <= e.settings["budget_cap"]
            assert e.weight_se.shape == e.weights.shape
        assert len({int(np.argmax(e.weights[0])) for e in exps}) == 1  # the same top one
        cert = [e.certified_top(3) for e in exps]
        if all(cert):
            certified += 1
            first = exps[0]
            best = max(cert[0], key=lambda s: first.weights[0][s])
            certified_on_object += bool(np.asarray(mask, bool)[first.segments == best].mean()
                                        > 0.5)
            # the top-j the error bars certify is the same set whatever the seed
            j = min(len(c) for c in cert)
            assert len({tuple(sorted(np.argsort(-e.weights[0], kind="stable")[:j]))
                        for e in exps}) == 1
    assert certified >= len(items) // 2
    assert certified_on_object == certified


def test_paddlex13_lime_by_name_gives_its_bits(trained_classifier):
    """``sampler='bernoulli'`` with an int budget and ``fill='black'`` is PaddleX 1.3's LIME:
    its masks, the model on them, and scikit-learn's weighted ridge."""
    from sklearn.linear_model import Ridge

    clf = PaddleXClassifier(trained_classifier.model)
    image = clf.view(trained_classifier.dataset.val_items()[0][0])
    run = LimeExplainer(clf, sampler="bernoulli", fill="black", num_samples=200, batch_size=50,
                        seed=4, segmenter="quickshift").run(image)
    exp = run.explanation
    masks = sample_masks(200, exp.n_segments, np.random.default_rng(4))
    np.testing.assert_array_equal(run.masks, masks)
    black = np.zeros_like(image)
    outputs = clf.predict_masks(image, black, exp.segments, masks, 50)
    np.testing.assert_array_equal(run.outputs, outputs)
    label = int(exp.labels[0])
    ridge = Ridge(alpha=1.0).fit(masks, outputs[:, label],
                                 sample_weight=exponential_kernel(cosine_distance_to_all_on(masks)))
    np.testing.assert_allclose(exp.weights[0], ridge.coef_, rtol=1e-8, atol=1e-10)
    assert exp.settings["num_samples_used"] == 200 and "budget" not in exp.settings
