import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from paddlex_interpret import rendering
from paddlex_interpret.core.explanation import Explanation

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def make_explanation(extra=None):
    """32x32 grey image, 4 quadrant superpixels: 0 positive, 1 negative, 2 and 3 small/zero."""
    seg = np.repeat(np.repeat(np.arange(4).reshape(2, 2), 16, 0), 16, 1)
    image = np.full((32, 32, 3), 100, np.uint8)
    image[0, 0] = 200  # image max
    weights = np.array([[0.6, -0.4, 0.05, 0.0]])
    return Explanation(image=image, segments=seg, probabilities=np.array([0.25, 0.75]),
                       labels=np.array([1]), weights=weights, intercepts=np.array([0.1]),
                       scores=np.array([0.9]), local_predictions=np.array([0.7]),
                       label_names=["cat", "dog"], extra=extra)


def interior(seg_id, margin=2):
    """Pixel slices of quadrant ``seg_id`` away from its boundaries."""
    r, c = divmod(seg_id, 2)
    return (slice(16 * r + margin, 16 * r + 16 - margin),
            slice(16 * c + margin, 16 * c + 16 - margin))


def test_overlay_colours_positive_green_negative_red():
    e = make_explanation()
    out = rendering.overlay(e, 1, num_features=2)
    assert out.shape == (32, 32, 3) and out.dtype == np.uint8
    pos = out[interior(0)].reshape(-1, 3)
    neg = out[interior(1)].reshape(-1, 3)
    assert (pos[:, 1] == 200).all() and (pos[:, 1] > pos[:, 0]).all()
    assert (neg[:, 0] == 200).all() and (neg[:, 0] > neg[:, 1]).all()
    # untouched quadrants keep the image, except at the outlines of the chosen ones
    for s in (2, 3):
        np.testing.assert_array_equal(out[interior(s)], e.image[interior(s)])
    yellow = (out[..., 0] == 255) & (out[..., 1] == 255) & (out[..., 2] == 0)
    assert yellow.any()
    assert yellow[16:, :].any()  # the outline of quadrant 0 / 1 spills into the row below


def test_overlay_num_features_and_positive_only():
    e = make_explanation()
    one = rendering.overlay(e, 1, num_features=1)
    np.testing.assert_array_equal(one[interior(1)], e.image[interior(1)])
    pos = rendering.overlay(e, 1, num_features=2, positive_only=True)
    # the second positive one (segment 2) is tinted instead of the negative segment 1
    np.testing.assert_array_equal(pos[interior(1)], e.image[interior(1)])
    assert (pos[interior(2)][..., 1] == 200).all()
    none = rendering.overlay(e, 1, num_features=0)
    np.testing.assert_array_equal(none, e.image)


def test_heatmap_and_segmentation_images():
    e = make_explanation()
    h = rendering.heatmap_overlay(e, 1, alpha=0.5)
    assert h.shape == (32, 32, 3) and h.dtype == np.uint8
    p, n = h[interior(0)][0, 0].astype(int), h[interior(1)][0, 0].astype(int)
    assert p[1] > p[0] and n[0] > n[1]
    np.testing.assert_array_equal(rendering.heatmap_overlay(e, 1, alpha=0.0), e.image)
    s = rendering.segmentation_image(e)
    assert s.shape == (32, 32, 3) and s.dtype == np.uint8
    assert (s[15, 2] == [255, 255, 0]).all()
    np.testing.assert_array_equal(s[interior(3)], e.image[interior(3)])


def _read_png(path):
    with Image.open(path) as im:
        return im.size  # (width, height)


def test_lime_figure_layout_and_save(tmp_path):
    e = make_explanation()
    fig = rendering.lime_figure(e)
    dpi = fig.dpi
    titles = [ax.get_title() for ax in fig.axes]
    assert len(fig.axes) == 10
    assert titles[0] == "label dog, proba: 0.750"
    assert titles[1] == "superpixel segmentation"
    assert all(t.startswith("label dog, first ") for t in titles[5:])
    path = rendering.save_figure(fig, str(tmp_path / "lime.png"))
    assert path == str(tmp_path / "lime.png")
    assert _read_png(path) == (round(25 * dpi), round(10 * dpi))
    assert os.listdir(tmp_path) == ["lime.png"]


def test_normlime_figure_layout_and_save(tmp_path):
    w = make_explanation().weights
    e = make_explanation(extra={"normlime": -w, "combined": w * 2})
    fig = rendering.normlime_figure(e)
    dpi = fig.dpi
    titles = [ax.get_title() for ax in fig.axes]
    assert len(fig.axes) == 20
    assert [t.split(":")[0] for t in titles[5:]] == ["LIME"] * 5 + ["NormLIME"] * 5 + ["Combined"] * 5
    assert [t.split(":")[1] for t in titles[5:10]] == [t.split(":")[1] for t in titles[10:15]]
    path = rendering.save_figure(fig, tmp_path / "normlime.png")
    assert _read_png(path) == (round(25 * dpi), round(20 * dpi))


def test_normlime_figure_requires_extra_tables():
    with pytest.raises(ValueError, match="normlime"):
        rendering.normlime_figure(make_explanation())
    with pytest.raises(ValueError, match="combined"):
        rendering.normlime_figure(make_explanation(extra={"normlime": np.zeros((1, 4))}))


def test_figure_to_array():
    fig = rendering.lime_figure(make_explanation())
    arr = rendering.figure_to_array(fig)
    assert arr.dtype == np.uint8 and arr.shape == (round(10 * fig.dpi), round(25 * fig.dpi), 3)


def test_save_figure_is_atomic(tmp_path, monkeypatch):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    path = tmp_path / "fig.png"
    path.write_bytes(b"old contents")

    def boom(self, *args, **kwargs):
        raise RuntimeError("rendering failed midway")

    monkeypatch.setattr(FigureCanvasAgg, "print_png", boom)
    with pytest.raises(RuntimeError, match="midway"):
        rendering.save_figure(rendering.lime_figure(make_explanation()), path)
    assert path.read_bytes() == b"old contents"
    assert os.listdir(tmp_path) == ["fig.png"]


def test_module_does_not_import_pyplot(tmp_path):
    code = ("import sys, numpy as np, paddlex_interpret.rendering as r; "
            "from paddlex_interpret.core.explanation import Explanation; "
            "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot imported'; "
            "seg = np.repeat(np.repeat(np.arange(4).reshape(2, 2), 8, 0), 8, 1); "
            "e = Explanation(image=np.full((16, 16, 3), 100, np.uint8), segments=seg, "
            "probabilities=np.array([0.2, 0.8]), labels=np.array([1]), "
            "weights=np.array([[0.5, -0.3, 0.0, 0.1]]), intercepts=np.array([0.1]), "
            "scores=np.array([0.9]), local_predictions=np.array([0.7])); "
            "r.save_figure(r.lime_figure(e), sys.argv[1]); "
            "assert 'matplotlib.pyplot' not in sys.modules, "
            "'pyplot imported by lime_figure or save_figure'")
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("MPLBACKEND", None)
    out = str(tmp_path / "probe.png")
    proc = subprocess.run([sys.executable, "-c", code, out], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert os.path.exists(out)


def test_the_visualdl_panel_shows_the_error_bars():
    plain = make_explanation()
    with_bars = make_explanation()
    with_bars.weight_cov = np.diag([1e-4, 4e-2, 1e-4, 1e-4])[None]
    a = rendering.render_panel(plain, 1, "lime", 2, "epoch 1")
    b = rendering.render_panel(with_bars, 1, "lime", 2, "epoch 1")
    assert a.shape[0] == b.shape[0] and b.shape[1] > a.shape[1]  # a fourth picture
    spread, worst = rendering.spread_overlay(with_bars, 1)
    # the superpixel with the widest error bar is the darkest, relative to the top weight
    assert spread[interior(1)].mean() < spread[interior(0)].mean()
    assert worst == pytest.approx(0.2 / 0.6)
    assert rendering.spread_overlay(plain, 1) == (None, None)


def test_the_atlas_picture_boxes_the_alarm_s_region_where_it_is():
    from paddlex_interpret.rendering import atlas_image

    mean = np.full((64, 64, 3), 90, np.uint8)
    mass = np.zeros((64, 64))
    mass[56:62, 56:62] = 1.0
    hot = mass > 0
    img = atlas_image(mean, mass, hot, box=(56, 56, 62, 62))
    magenta = (img[..., 0] == 255) & (img[..., 1] == 0) & (img[..., 2] == 255)
    ys, xs = np.nonzero(magenta)
    assert img.shape == (256, 256, 3) and (xs.min(), ys.min()) == (224, 224)
    assert (xs.max(), ys.max()) == (247, 247)
    assert not magenta[:200, :200].any()
    plain = atlas_image(mean, mass)  # no hot region, no box
    assert not ((plain[..., 0] == 255) & (plain[..., 1] == 0) & (plain[..., 2] == 255)).any()
