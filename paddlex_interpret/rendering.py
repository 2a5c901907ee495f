"""Pictures of an :class:`~paddlex_interpret.core.explanation.Explanation` (no weights computed here).

Figures are built on :class:`matplotlib.figure.Figure` with the Agg canvas; ``matplotlib.pyplot`` is
never imported, so rendering is safe in training processes and on headless machines.

Example::

    >>> import numpy as np
    >>> from paddlex_interpret.core.explanation import Explanation
    >>> from paddlex_interpret import rendering
    >>> seg = np.repeat(np.repeat(np.arange(4).reshape(2, 2), 8, 0), 8, 1)
    >>> e = Explanation(image=np.full((16, 16, 3), 100, np.uint8), segments=seg,
    ...                 probabilities=np.array([0.2, 0.8]), labels=np.array([1]),
    ...                 weights=np.array([[0.5, -0.3, 0.0, 0.1]]), intercepts=np.array([0.1]),
    ...                 scores=np.array([0.9]), local_predictions=np.array([0.7]))
    >>> rendering.overlay(e, 1, num_features=2).shape
    (16, 16, 3)
    >>> fig = rendering.lime_figure(e)
    >>> rendering.figure_to_array(fig).shape
    (1000, 2500, 3)
"""
import os

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from skimage.segmentation import mark_boundaries

from .io import atomic_write

__all__ = ["FRACTIONS", "overlay", "heatmap_overlay", "segmentation_image", "lime_figure",
           "normlime_figure", "render_panel", "save_figure", "figure_to_array", "atlas_image"]

#: Positive-weight fractions of PaddleX 1.3's figures (one column each).
FRACTIONS = (0.6, 0.7, 0.75, 0.8, 0.85)
_PANEL_INCHES = 5


def _to_uint8(float_image):
    return np.clip(np.rint(float_image * 255.0), 0, 255).astype(np.uint8)


def overlay(explanation, label, num_features=5, kind="lime", positive_only=False):
    """The image with its ``num_features`` top superpixels tinted and outlined.

    PaddleX 1.3's ``get_image_and_mask(label, positive_only=False, num_features=n)`` followed by
    ``mark_boundaries``: superpixels are taken in ``explanation.ranked(label, kind)`` order; those
    with weight >= 0 get their green channel set to the image maximum, negative ones their red
    channel; the chosen superpixels' boundaries are drawn in yellow. With ``positive_only`` only
    positive superpixels are chosen. Returns ``(H, W, 3)`` uint8.

    >>> overlay(e, e.labels[0], num_features=3)  # doctest: +SKIP
    """
    image = np.asarray(explanation.image)
    chosen = explanation.ranked(label, kind)
    if positive_only:
        chosen = [(s, w) for s, w in chosen if w > 0]
    chosen = chosen[:max(int(num_features), 0)]
    # Per-segment lookup: 0 = untouched, 1 = negative (red), 2 = positive (green), as in 1.3's mask.
    lut = np.zeros(explanation.n_segments, dtype=np.int32)
    for seg, w in chosen:
        lut[seg] = 1 if w < 0 else 2
    mask = lut[explanation.segments]
    tinted = image.copy()
    vmax = image.max() if image.size else 0
    tinted[..., 0][mask == 1] = vmax
    tinted[..., 1][mask == 2] = vmax
    return _to_uint8(mark_boundaries(tinted, mask))


def heatmap_overlay(explanation, label, kind="lime", alpha=0.5, cmap="RdYlGn"):
    """The image blended (weight ``alpha``) with a diverging colour map of the superpixel weights.

    ``explanation.heatmap(label, kind)`` in [-1, 1] is mapped through ``cmap`` (red negative,
    yellow neutral, green positive). Returns ``(H, W, 3)`` uint8, e.g. for VisualDL ``add_image``.

    >>> heatmap_overlay(e, e.labels[0], alpha=0.4)  # doctest: +SKIP
    """
    import matplotlib

    heat = explanation.heatmap(label, kind)
    colours = matplotlib.colormaps[cmap]((heat + 1.0) / 2.0)[..., :3]
    image = np.asarray(explanation.image, dtype=np.float64) / 255.0
    return _to_uint8((1.0 - alpha) * image + alpha * colours)


def spread_overlay(explanation, label, alpha=0.6, cmap="Purples"):
    """The image blended with each superpixel's standard error (its error bar), from 0 (white)
    to the largest one (dark purple); ``(H, W, 3)`` uint8 and that largest standard error
    relative to the largest ``|weight|`` of ``label``. None when there are no error bars."""
    import matplotlib

    se = explanation.se_for(label)
    if se is None:
        return None, None
    w = explanation.weights_for(label)
    scale = float(np.max(np.abs(w))) or 1.0
    top = float(np.max(se)) or 1.0
    colours = matplotlib.colormaps[cmap](np.clip(se / top, 0.0, 1.0)[explanation.segments])[..., :3]
    image = np.asarray(explanation.image, dtype=np.float64) / 255.0
    return _to_uint8((1.0 - alpha) * image + alpha * colours), float(np.max(se / scale))


def segmentation_image(explanation):
    """The image with the superpixel boundaries drawn in yellow; ``(H, W, 3)`` uint8."""
    return _to_uint8(mark_boundaries(np.asarray(explanation.image), explanation.segments))


def _new_figure(nrows, ncols):
    fig = Figure(figsize=(_PANEL_INCHES * ncols, _PANEL_INCHES * nrows))
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    return fig, axes


def _first_row(explanation, label, axes):
    name = explanation.label_name(label)
    proba = float(explanation.probabilities[int(label)])
    axes[0].imshow(explanation.image)
    axes[0].set_title("label %s, proba: %.3f" % (name, proba))
    axes[1].imshow(segmentation_image(explanation))
    axes[1].set_title("superpixel segmentation")


def lime_figure(explanation, label=None):
    """PaddleX 1.3's LIME figure: a 2 x 5 grid of 5-inch panels.

    Row 1: the image and its superpixels. Row 2: for each fraction in :data:`FRACTIONS`, the
    :func:`overlay` of the ``n = num_features_for_mass(label, fraction)`` top superpixels.
    ``label`` defaults to ``explanation.labels[0]``.

    >>> save_figure(lime_figure(e), "lime.png")  # doctest: +SKIP
    """
    label = int(explanation.labels[0] if label is None else label)
    name = explanation.label_name(label)
    fig, axes = _new_figure(2, len(FRACTIONS))
    _first_row(explanation, label, axes[0])
    for ax, fraction in zip(axes[1], FRACTIONS):
        n = explanation.num_features_for_mass(label, fraction)
        ax.imshow(overlay(explanation, label, n))
        ax.set_title("label %s, first %d superpixels" % (name, n))
    return fig


def saliency_figure(explanation, label=None):
    """A gradient method's figure, 1 x 3: the image, its map over the image, and the superpixels
    holding half of the map's positive mass (``label`` defaults to ``labels[0]``)."""
    label = int(explanation.labels[0] if label is None else label)
    name = explanation.label_name(label)
    method = explanation.settings.get("method", "saliency")
    fig, axes = _new_figure(1, 3)
    axes[0, 0].imshow(explanation.image)
    axes[0, 0].set_title("label %s, proba: %.3f" % (name, float(
        explanation.probabilities[label])))
    axes[0, 1].imshow(heatmap_overlay(explanation, label, kind="map"))
    axes[0, 1].set_title("%s, label %s" % (method, name))
    n = explanation.num_features_for_mass(label, 0.5)
    axes[0, 2].imshow(overlay(explanation, label, n))
    axes[0, 2].set_title("first %d superpixels" % n)
    return fig


def normlime_figure(explanation, label=None):
    """PaddleX 1.3's NormLIME figure: a 4 x 5 grid of 5-inch panels.

    Rows 2-4 show the LIME, NormLIME and combined weights' overlays with the same superpixel
    counts (chosen from the LIME weights as in :func:`lime_figure`).

    Raises:
        ValueError: ``explanation.extra`` lacks the ``'normlime'`` or ``'combined'`` table.

    >>> save_figure(normlime_figure(e), "normlime.png")  # doctest: +SKIP
    """
    missing = [k for k in ("normlime", "combined") if k not in explanation.extra]
    if missing:
        raise ValueError("normlime_figure needs explanation.extra[%s]; missing: %s"
                         % (", ".join(repr(k) for k in ("normlime", "combined")),
                            ", ".join(repr(k) for k in missing)))
    label = int(explanation.labels[0] if label is None else label)
    fig, axes = _new_figure(4, len(FRACTIONS))
    _first_row(explanation, label, axes[0])
    counts = [explanation.num_features_for_mass(label, f) for f in FRACTIONS]
    for row, (kind, title) in zip(axes[1:], (("lime", "LIME"), ("normlime", "NormLIME"),
                                              ("combined", "Combined"))):
        for ax, n in zip(row, counts):
            ax.imshow(overlay(explanation, label, n, kind=kind))
            ax.set_title("%s: first %d superpixels" % (title, n))
    return fig


def _fit_nearest(img, height, width):
    """``img`` scaled (nearest neighbour, aspect kept) to fit ``height x width`` pixels."""
    img = np.asarray(img)
    if img.dtype != np.uint8:
        img = np.clip(np.rint(np.asarray(img, np.float64) * 255.0), 0, 255).astype(np.uint8)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    h, w = img.shape[:2]
    scale = min(height / h, width / w)
    oh, ow = max(1, int(round(h * scale))), max(1, int(round(w * scale)))
    rows = np.minimum((np.arange(oh) + 0.5) * h / oh, h - 1).astype(np.intp)
    cols = np.minimum((np.arange(ow) + 0.5) * w / ow, w - 1).astype(np.intp)
    return img[rows][:, cols, :3]


def atlas_image(mean_image, mass, hot=None, size=256, alpha=0.55, cmap="inferno", box=None):
    """A class atlas as a picture: the class's mean image blended with its explanation mass
    (``(H, W)``, scaled to its peak, through ``cmap``), the hot region (``(H, W)`` bool, or None)
    outlined in cyan and ``box`` (``(x0, y0, x1, y1)``, exclusive ends: the shortcut alarm's
    region) drawn in magenta, scaled (nearest) to ``size`` pixels a side. ``(size, size, 3)``
    uint8.
    """
    import matplotlib

    mass = np.asarray(mass, np.float64)
    peak = mass.max()
    colours = matplotlib.colormaps[cmap](np.clip(mass / peak, 0, 1) if peak > 0 else
                                         np.zeros_like(mass))[..., :3]
    image = np.asarray(mean_image, np.float64) / 255.0
    out = _fit_nearest(_to_uint8((1.0 - alpha) * image + alpha * colours), size, size)
    if hot is not None:
        region = _fit_nearest(np.asarray(hot, np.uint8)[..., None].repeat(3, 2), size,
                              size)[..., 0]
        out = _to_uint8(mark_boundaries(out, region.astype(np.int32), color=(0, 1, 1)))
    if box is not None:
        h, w = mass.shape
        x0, y0, x1, y1 = box
        sx, sy = size / float(w), size / float(h)
        a, b = int(round(x0 * sx)), int(round(y0 * sy))
        c, d = max(a + 1, int(round(x1 * sx)) - 1), max(b + 1, int(round(y1 * sy)) - 1)
        t = max(1, size // 128)
        out = np.array(out, copy=True)
        for rows, cols in (((b, b + t), (a, c + 1)), ((d - t + 1, d + 1), (a, c + 1)),
                           ((b, d + 1), (a, a + t)), ((b, d + 1), (c - t + 1, c + 1))):
            out[max(rows[0], 0):rows[1], max(cols[0], 0):cols[1]] = (255, 0, 255)
    return out


def _legend_bar(width, height=8, cmap="RdYlGn"):
    """``(height, width, 3)`` uint8: the diverging colour map from -1 (left) to +1 (right)."""
    import matplotlib

    ramp = matplotlib.colormaps[cmap](np.linspace(0.0, 1.0, max(2, int(width))))[:, :3]
    return np.repeat(_to_uint8(ramp)[None], int(height), axis=0)


def render_panel(explanation, label, kind="lime", num_features=5, title=None, dpi=100,
                 panel_inches=2.4):
    """A compact 1 x 3 panel for VisualDL: the image, the ``num_features`` top superpixels of
    ``kind`` (green for the label, red against it, as in PaddleX 1.3), and the heat map of
    ``kind`` with its colour bar (red: against, green: for); ``title`` on top. For
    ``kind='normlime'`` the second panel shows NormLIME and the third the combined weights.
    For LIME a fourth panel shows the error bars (:func:`spread_overlay`) and the second's title
    says how many of the top superpixels are certified (``certified_top``). Returns
    ``(H, W, 3)`` uint8.

    The pictures are scaled (nearest neighbour) and pasted into the canvas; matplotlib only draws
    the texts (no Axes: their ticks cost more than the rest of a checkpoint's rendering)."""
    def top(which, title):
        # superpixels with (almost) no weight are not "top": keep those >= 5% of the largest
        w = np.abs(explanation.weights_for(label, which))
        n = min(int(num_features), int((w >= 0.05 * w.max()).sum()) if w.max() > 0 else 0)
        return overlay(explanation, label, n, kind=which), "%s top %d" % (title, n)

    if kind == "normlime":
        panels = [(explanation.image, "image"), top("normlime", "NormLIME"),
                  top("combined", "LIME x NormLIME")]
        legend = [None, "green: for, red: against", "green: for, red: against"]
    else:
        shown, name = top(kind, "LIME")
        spread, worst = spread_overlay(explanation, label) if kind == "lime" else (None, None)
        if spread is not None:
            name += ", %d certified" % len(explanation.certified_top(num_features, label))
        panels = [(explanation.image, "image"), (shown, name),
                  (heatmap_overlay(explanation, label, kind=kind), "LIME weights")]
        legend = [None, "green: for, red: against", "bar"]
        if spread is not None:
            panels.append((spread, "error bars (1 s.e.)"))
            legend.append("darkest: s.e. %.0f%% of the top weight" % (100 * worst))
    n = len(panels)
    foot = 0.3  # inches under the pictures for the legends
    fig_w, fig_h = panel_inches * n, panel_inches + 0.55 + foot
    width, height = int(round(fig_w * dpi)), int(round(fig_h * dpi))
    foot_px = foot * dpi
    box_w = 0.98 * width / (n + 0.04 * (n - 1))
    box_h = 0.79 * (height - foot_px)
    fig = Figure(figsize=(fig_w, fig_h), dpi=dpi)
    fig.patch.set_facecolor("white")
    canvas = FigureCanvasAgg(fig)
    for i, (img, name) in enumerate(panels):
        pic = _fit_nearest(img, int(box_h), int(box_w))
        ph, pw = pic.shape[:2]
        x0 = 0.01 * width + i * box_w * 1.04 + (box_w - pw) / 2.0
        y0 = foot_px + 0.01 * height + (box_h - ph) / 2.0
        fig.figimage(pic, xo=int(round(x0)), yo=int(round(y0)), origin="upper")
        fig.text((x0 + pw / 2.0) / width, (y0 + ph + 4) / height, name, fontsize=9,
                 ha="center", va="bottom")
        if legend[i] == "bar":
            bar_w = int(pw * 0.6)
            bx = x0 + (pw - bar_w) / 2.0
            fig.figimage(_legend_bar(bar_w), xo=int(round(bx)), yo=int(round(foot_px * 0.45)),
                         origin="upper")
            for frac, text, ha in ((0.0, "against", "right"), (1.0, "for", "left")):
                fig.text((bx + frac * bar_w + (-3 if frac == 0 else 3)) / width,
                         foot_px * 0.55 / height, text, fontsize=8, ha=ha, va="center")
        elif legend[i]:
            fig.text((x0 + pw / 2.0) / width, foot_px * 0.55 / height, legend[i], fontsize=8,
                     ha="center", va="center")
    if title:
        fig.suptitle(title, fontsize=10)
    canvas.draw()
    out = np.array(canvas.buffer_rgba())[..., :3]
    fig.clear()
    return out


def save_figure(fig, path):
    """Render ``fig`` to ``path`` atomically (format from the extension, PNG by default), then
    free the figure. An existing file at ``path`` is untouched if rendering fails. Returns ``path``.

    >>> save_figure(lime_figure(e), "out/lime.png")  # doctest: +SKIP
    """
    path = os.fspath(path)
    fmt = os.path.splitext(path)[1].lstrip(".").lower() or "png"
    try:
        if not isinstance(fig.canvas, FigureCanvasAgg):
            FigureCanvasAgg(fig)
        with atomic_write(path, "wb") as f:
            fig.savefig(f, format=fmt)
    finally:
        fig.clear()
    return path


def figure_to_array(fig):
    """Draw ``fig`` with Agg and return its pixels as ``(H, W, 3)`` uint8 RGB (e.g. for VisualDL).

    >>> figure_to_array(lime_figure(e)).dtype  # doctest: +SKIP
    dtype('uint8')
    """
    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    canvas.draw()
    return np.array(canvas.buffer_rgba())[..., :3]
