"""Where an explanation is written: PaddleX 1.3's layout ``save_dir/<image name>/<stem>-<k>.png``
with the result's ``.npz`` beside it, both written atomically.

Example::

    from paddlex_interpret.api.output import save_explanation
    png = save_explanation(exp, "out", "0001", "lime_s1000")   # out/0001/lime_s1000-0.png
"""
from __future__ import annotations

import logging
import os
from typing import Any

from ..core.explanation import Explanation
from ..io import ensure_writable_dir

__all__ = ["next_free_path", "save_explanation", "image_name"]

logger = logging.getLogger("paddlex_interpret")


def next_free_path(directory: str, stem: str, ext: str = ".png") -> str:
    """PaddleX 1.3's naming: ``<stem>-0.png``, or ``-1``, ``-2``... when taken."""
    n = 0
    while os.path.exists(os.path.join(directory, "%s-%d%s" % (stem, n, ext))):
        n += 1
    return os.path.join(directory, "%s-%d%s" % (stem, n, ext))


def image_name(img_file: Any) -> str:
    """The name of the result directory for an image: its file name without extension, or
    ``'image'`` for an array."""
    if isinstance(img_file, (str, bytes, os.PathLike)):
        return os.path.splitext(os.path.basename(os.fsdecode(img_file)))[0]
    return "image"


def save_explanation(explanation: Explanation, save_dir: str, name: str, stem: str,
                     figure: str = "lime") -> str:
    """Render ``explanation`` (``figure``: ``'lime'`` or ``'normlime'``, PaddleX 1.3's figures, or
    ``'saliency'`` for a gradient method's map)
    into ``save_dir/<name>/<stem>-<k>.png`` and save its ``.npz`` beside it; sets
    ``explanation.png_path`` / ``npz_path`` and returns the PNG path."""
    from .. import rendering

    out_dir = ensure_writable_dir(os.path.join(save_dir, name))
    png = next_free_path(out_dir, stem)
    fig = {"lime": rendering.lime_figure, "normlime": rendering.normlime_figure,
           "saliency": rendering.saliency_figure}[figure](explanation)
    rendering.save_figure(fig, png)
    explanation.png_path = png
    explanation.npz_path = explanation.save(png[:-4] + ".npz")
    logger.info("The image of interpretation result saved in %s", png)
    return png
