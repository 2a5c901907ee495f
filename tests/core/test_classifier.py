"""paddlex_interpret.core.classifier: the declared Classifier protocol and its defaults, the one
rule that turns outputs into probabilities (per row), class names and argument checks."""
import numpy as np
import pytest

from helpers import BrightnessModel, grid_segments
from paddlex_interpret.core.classifier import (Classifier, FunctionClassifier, as_classifier,
                                               as_probabilities, check_positive_int,
                                               resolve_labels)
from paddlex_interpret.core.fill import make_fill
from paddlex_interpret.core.perturbation import iter_batches, perturb, sample_masks


def softmax(x):
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


class Recording(Classifier):
    """Logits of the mean colour per channel; keeps a copy of every batch it is given."""

    def __init__(self):
        self.batches = []

    def __call__(self, images):
        self.batches.append(np.array(images, copy=True))
        return images.mean(axis=(1, 2)) / 64.0  # (B, 3) logits


# ------------------------------------------------------------------------------ the protocol
def _problem(seed):
    """``(image, segments, fill, masks)``: a 32 px image, a 4 x 4 grid, its mean fill, 37 masks."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (32, 32, 3)).astype(np.uint8)
    seg = grid_segments(32, 32, 4)
    return image, seg, make_fill(image, seg, "mean"), sample_masks(37, 16, rng)


def test_predict_masks_default_composes_and_calls_the_model_batch_by_batch():
    image, seg, fill, masks = _problem(0)
    clf = Recording()
    done = []
    got = clf.predict_masks(image, fill, seg, masks, 10, on_batch=done.append)
    slices = list(iter_batches(37, 10))
    assert [len(b) for b in clf.batches] == [10, 10, 10, 7] and done == [10, 10, 10, 7]
    for batch, sl in zip(clf.batches, slices):  # the model saw perturb's images, in order
        np.testing.assert_array_equal(batch, perturb(image, fill, seg, masks[sl]))
    expected = np.concatenate([as_probabilities(Recording()(perturb(image, fill, seg, masks[sl])))
                               for sl in slices])
    assert got.shape == (37, 3) and got.dtype == np.float64
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_allclose(got.sum(axis=1), 1.0)
    # without a progress callback: the same numbers
    np.testing.assert_array_equal(Recording().predict_masks(image, fill, seg, masks, 10), got)


class Tabled(Classifier):
    """A model whose preprocessing is a per-channel table of uint8 values: it declares the table
    and is given normalised inputs; keeps a copy of every batch of inputs."""

    table = np.stack([np.linspace(-1.0, 1.0, 256, dtype=np.float32) * (c + 1) for c in range(3)])

    def __init__(self):
        self.batches = []

    def preprocess(self, images):
        return np.stack([self.table[c][images[..., c]] for c in range(3)], axis=1)

    def __call__(self, images):
        return self.predict_inputs(self.preprocess(images))

    def input_table(self):
        return self.table

    def predict_inputs(self, inputs):
        self.batches.append(np.array(inputs, copy=True))
        return as_probabilities(inputs.mean(axis=(2, 3)))


def test_predict_masks_composes_normalised_inputs_for_a_model_with_a_table():
    """The one loop, with a table: each batch composed directly as the normalised inputs (bit for
    bit the table applied to perturb's images) and given to predict_inputs, never to __call__."""
    image, seg, fill, masks = _problem(1)
    clf = Tabled()
    done = []
    got = clf.predict_masks(image, fill, seg, masks, 10, on_batch=done.append)
    assert [len(b) for b in clf.batches] == [10, 10, 10, 7] and done == [10, 10, 10, 7]
    for batch, sl in zip(clf.batches, iter_batches(37, 10)):
        assert batch.dtype == np.float32
        np.testing.assert_array_equal(batch, clf.preprocess(perturb(image, fill, seg, masks[sl])))
    expected = np.concatenate([Tabled()(perturb(image, fill, seg, masks[sl]))
                               for sl in iter_batches(37, 10)])
    np.testing.assert_array_equal(got, expected)
    # compose: the same inputs, into a buffer that fits (else a new array)
    buf = np.empty((5, 3, 32, 32), np.float32)
    assert clf.compose(image, fill, seg, masks[:5], out=buf) is buf
    np.testing.assert_array_equal(buf, clf.preprocess(perturb(image, fill, seg, masks[:5])))
    assert clf.compose(image, fill, seg, masks[:4], out=buf).shape == (4, 3, 32, 32)
    # a table without predict_inputs is an error naming the class
    class NoInputs(Classifier):
        def input_table(self):
            return Tabled.table

    with pytest.raises(NotImplementedError, match="NoInputs"):
        NoInputs().predict_masks(image, fill, seg, masks, 10)


def test_the_other_defaults():
    clf = BrightnessModel()  # a Classifier that gives only __call__ and view
    image = np.zeros((32, 32, 3), np.uint8)
    image[:, :16] = 255
    # hold_weights: a no-op block (gives the classifier, changes nothing, hides no error)
    before = clf(image[None])
    with clf.hold_weights() as held:
        assert held is clf
        inside = clf(image[None])
    np.testing.assert_array_equal(inside, before)
    with pytest.raises(KeyError):
        with clf.hold_weights():
            raise KeyError("not swallowed")
    assert clf.suggest_batch_size(image) == 50
    assert Classifier().suggest_batch_size(np.zeros((512, 512, 3), np.uint8)) == 50
    assert clf.fingerprint() is None and clf.backend_info == {}
    np.testing.assert_allclose(clf.predict(image[None]), [[0.0, 1.0]])
    with pytest.raises(NotImplementedError):
        Classifier()(image[None])
    # the default view reads a path or converts an array to uint8 RGB
    grey = Classifier().view(np.full((4, 5), 7, np.uint8))
    assert grey.shape == (4, 5, 3) and grey.dtype == np.uint8 and (grey == 7).all()


def test_view_default_reads_a_path(tmp_path):
    from PIL import Image

    rgb = np.random.default_rng(1).integers(0, 256, (6, 9, 3)).astype(np.uint8)
    Image.fromarray(rgb).save(tmp_path / "x.png")
    np.testing.assert_array_equal(Classifier().view(str(tmp_path / "x.png")), rgb)
    np.testing.assert_array_equal(Classifier().view(tmp_path / "x.png"), rgb)


def test_function_classifier_and_as_classifier():
    fn = lambda b: np.zeros((len(b), 3))  # noqa: E731
    clf = FunctionClassifier(fn, label_names=("a", "b", "c"), fingerprint="v1")
    assert clf.label_names == ["a", "b", "c"] and clf.num_classes == 3
    assert clf.fingerprint() == "v1" and clf.fn is fn
    np.testing.assert_allclose(clf.predict(np.zeros((2, 4, 4, 3), np.uint8)), 1 / 3)
    bare = FunctionClassifier(fn)
    assert bare.label_names is None and bare.num_classes is None and bare.fingerprint() is None
    with pytest.raises(TypeError, match="callable"):
        FunctionClassifier("not a function")
    # as_classifier: a Classifier passes through, a function is wrapped
    model = BrightnessModel()
    assert as_classifier(model) is model
    assert as_classifier(model, label_names=["x", "y"]) is model
    assert model.label_names == ["dark", "bright"]
    wrapped = as_classifier(fn, label_names=["p", "q", "r"])
    assert isinstance(wrapped, FunctionClassifier) and wrapped.fn is fn
    assert wrapped.label_names == ["p", "q", "r"]
    with pytest.raises(TypeError):
        as_classifier(42)


# ------------------------------------------------------------------------------ probabilities
def test_as_probabilities_decides_per_row():
    logits = np.array([[2.0, 0.0, 1.0], [0.3, 0.3, 5.0]])
    np.testing.assert_allclose(as_probabilities(logits), softmax(logits), rtol=1e-12)
    probs = np.array([[0.2, 0.5, 0.3], [1.0, 0.0, 0.0]])
    out = as_probabilities(probs)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, probs)  # unchanged, bit for bit
    mixed = np.array([[0.2, 0.5, 0.3], [2.0, 0.0, 1.0], [0.1, 0.1, 0.8], [4.0, 4.0, 4.0]])
    out = as_probabilities(mixed)
    np.testing.assert_array_equal(out[[0, 2]], mixed[[0, 2]])
    np.testing.assert_allclose(out[[1, 3]], softmax(mixed[[1, 3]]), rtol=1e-12)
    # a row that sums to 1 but has a negative entry is not a probability vector: softmax
    neg = np.array([[1.5, -0.5], [0.4, 0.6]])
    out = as_probabilities(neg)
    np.testing.assert_allclose(out[0], softmax(neg[:1])[0], rtol=1e-12)
    np.testing.assert_array_equal(out[1], [0.4, 0.6])
    # within the 1e-4 tolerance a row is a probability vector; beyond it, logits
    np.testing.assert_array_equal(as_probabilities([[0.5, 0.50005]]), [[0.5, 0.50005]])
    np.testing.assert_allclose(as_probabilities([[0.5, 0.5002]]),
                               softmax(np.array([[0.5, 0.5002]])))
    original = logits.copy()
    as_probabilities(logits)
    np.testing.assert_array_equal(logits, original)  # the input is not changed in place
    with pytest.raises(ValueError, match="batch, num_classes"):
        as_probabilities(np.zeros(3))


# ------------------------------------------------------------------------------ labels, ints
def test_resolve_labels_names_and_ids():
    names = ["red", "green", "blue"]
    assert resolve_labels(None, names) is None
    assert resolve_labels(["blue", "red"], names).tolist() == [2, 0]
    assert resolve_labels("green", names).tolist() == [1]
    assert resolve_labels([2, "green"], names).tolist() == [2, 1]
    assert resolve_labels(1).tolist() == [1]
    assert resolve_labels(np.array([0, 2]), names).tolist() == [0, 2]
    assert resolve_labels(np.int64(2)).dtype == np.int64
    with pytest.raises(ValueError, match=r"unknown class 'purple'.*'red', 'green', 'blue'"):
        resolve_labels(["red", "purple"], names)
    with pytest.raises(ValueError, match="unknown class 'red'.*unnamed"):
        resolve_labels(["red"], None)


@pytest.mark.parametrize("bad", [0, -1, 1.0, 2.5, True, False, None, "3"])
def test_check_positive_int_names_the_argument(bad):
    with pytest.raises(ValueError, match="num_things must be an integer >= 1"):
        check_positive_int(bad, "num_things")


def test_check_positive_int_accepts_integers():
    assert check_positive_int(3, "n") == 3 and check_positive_int(np.int32(7), "n") == 7
    assert type(check_positive_int(np.int64(7), "n")) is int
