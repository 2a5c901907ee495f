"""paddlex_interpret.core.saliency: Grad-CAM, SmoothGrad and Integrated Gradients on numpy, and
their result."""
import numpy as np
import pytest

from paddlex_interpret.core import saliency


def test_gradcam_weights_channels_by_their_mean_gradient_and_keeps_the_positive_part():
    acts = np.zeros((2, 4, 4))
    acts[0, :2, :2] = 1.0  # channel 0 top-left
    acts[1, 2:, 2:] = 1.0  # channel 1 bottom-right
    grads = np.stack([np.full((4, 4), 1.0), np.full((4, 4), -1.0)])
    m = saliency.gradcam_map(acts, grads, (4, 4))
    assert m[0, 0] > 0 and m[3, 3] == 0.0  # the channel that lowers the score is cut by relu
    assert saliency.gradcam_map(acts, -grads, (4, 4))[0, 0] == 0.0
    with pytest.raises(ValueError, match="one shape"):
        saliency.gradcam_map(acts, grads[:1], (4, 4))


def test_integrated_gradients_are_complete_on_a_linear_model():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(3, 5, 5))
    x = rng.normal(size=(3, 5, 5)).astype(np.float32)
    f = lambda batch: (batch * w).sum(axis=(1, 2, 3))
    grad = lambda batch, label: np.broadcast_to(w, batch.shape).astype(np.float32)
    ig = saliency.integrated_gradients(grad, x, 0, steps=8)
    assert ig.shape == (5, 5)
    assert ig.sum() == pytest.approx(f(x[None])[0] - f(np.zeros_like(x)[None])[0], rel=1e-5)


def test_smoothgrad_is_seeded():
    x = np.random.default_rng(1).normal(size=(3, 6, 6)).astype(np.float32)
    grad = lambda batch, label: batch ** 2  # depends on the noise
    a = saliency.smoothgrad(grad, x, 0, n_samples=6, seed=3, batch_size=4)
    assert np.array_equal(a, saliency.smoothgrad(grad, x, 0, n_samples=6, seed=3, batch_size=6))
    assert not np.array_equal(a, saliency.smoothgrad(grad, x, 0, n_samples=6, seed=4))


def test_a_saliency_explanation_is_an_explanation_that_round_trips(tmp_path):
    seg = np.repeat(np.repeat(np.arange(4).reshape(2, 2), 4, 0), 4, 1)
    maps = np.zeros((1, 8, 8))
    maps[0, :4, 4:] = 2.0  # superpixel 1 holds the map
    e = saliency.SaliencyExplanation(np.zeros((8, 8, 3), np.uint8), seg, np.array([0.3, 0.7]),
                                     [1], maps, settings={"method": "gradcam"})
    assert e.ranked(1)[0] == (1, 2.0) and e.heatmap(1).max() == 1.0
    assert e.heatmap(1, kind="lime")[0, 7] == 1.0
    back = saliency.SaliencyExplanation.load(e.save(str(tmp_path / "g.npz")))
    assert np.array_equal(back.maps, e.maps) and np.array_equal(back.weights, e.weights)
    assert back.settings["method"] == "gradcam"
    whole = saliency.SaliencyExplanation(e.image, None, e.probabilities, [1], maps)
    assert whole.n_segments == 1


def test_input_x_gradient_is_the_input_times_its_gradient():
    from paddlex_interpret.core.saliency import input_x_gradient

    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 4, 5)).astype(np.float32)
    w = rng.normal(size=(3, 4, 5)).astype(np.float32)
    calls = []

    def linear_gradient(batch, label):  # score = sum(w * x): its gradient is w
        calls.append(batch.shape)
        return np.broadcast_to(w, batch.shape)

    m = input_x_gradient(linear_gradient, x, 0)
    np.testing.assert_allclose(m, (x * w).sum(0), rtol=1e-6)
    assert calls == [(1, 3, 4, 5)]  # one backward pass
    assert m.sum() == pytest.approx(float((w * x).sum()), rel=1e-5)  # = f(x) - f(0)
