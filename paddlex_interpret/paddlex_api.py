"""PaddleX 1.3's ``paddlex.interpret`` API on PaddleX 2.x classifiers.

After ``import paddlex_interpret``, ``paddlex.interpret`` *is* this module. The functions keep PaddleX
1.3's signatures and semantics (classifier only; the explained image is the one the model sees after
its test transforms' geometric steps; the PNG is written into ``save_dir/<image name>/``), take a few
keyword-only extras (seed, top_k, segmenter...) and return the result object instead of ``None``.

Example::

    import paddlex_interpret
    import paddlex as pdx
    model = pdx.load_model("output/best_model")
    exp = pdx.interpret.lime("val/0001.png", model, num_samples=1000, save_dir="explain")
    exp.ranked(exp.labels[0])[:3]     # [(superpixel, weight), ...]
    exp.png_path                       # explain/0001/lime_s1000-0.png
"""
import logging
import os

from .core.images import check_image_path
from .core.lime import LimeExplainer, check_positive_int
from .io import ensure_writable_dir
from .predictors import PaddleXClassifier, check_paddlex_classifier

__all__ = ["lime", "normlime", "glime", "next_free_path"]

logger = logging.getLogger("paddlex_interpret")


def next_free_path(directory, stem, ext=".png"):
    """PaddleX 1.3's naming: ``<stem>-0.png``, or ``-1``, ``-2``... when taken."""
    n = 0
    while os.path.exists(os.path.join(directory, "%s-%d%s" % (stem, n, ext))):
        n += 1
    return os.path.join(directory, "%s-%d%s" % (stem, n, ext))


def _prepare(img_file, model, num_samples, batch_size, save_dir, backend="auto"):
    check_paddlex_classifier(model)
    num_samples = check_positive_int(num_samples, "num_samples")
    if not (isinstance(batch_size, str) and batch_size == "auto"):
        batch_size = check_positive_int(batch_size, "batch_size")
    if isinstance(img_file, (str, bytes, os.PathLike)):
        img_file = check_image_path(img_file)
        name = os.path.splitext(os.path.basename(img_file))[0]
    else:
        name = "image"
    ensure_writable_dir(save_dir)
    return PaddleXClassifier(model, backend=backend), name, num_samples, batch_size


def lime(img_file, model, num_samples=3000, batch_size=50, save_dir="./", *, seed=0, top_k=1,
         labels=None, segmenter="quickshift", segmenter_params=None, fill="black",
         kernel_width=0.25, surrogate=None, save_png=True, progress=False, backend="auto",
         adaptive=None):
    """Explain ``model``'s prediction on ``img_file`` with LIME (PaddleX 1.3 semantics).

    Args:
        img_file: image path (any bit depth, grey/RGBA/palette) or an RGB array.
        model: a PaddleX 2.x classifier (``paddlex.cls.*`` or ``paddlex.load_model``).
        num_samples, batch_size: LIME samples and the model batch size (both >= 1).
        save_dir: where ``<image name>/lime_s<N>-<k>.png`` (and ``.npz``) are written.
        seed: repeatable sampling and segmentation. top_k / labels: which classes to explain.
        segmenter, segmenter_params, fill, kernel_width, surrogate: see :class:`LimeExplainer`.
        backend: ``'auto'`` (Paddle Inference when measured faster), ``'dygraph'`` or
            ``'inference'``: see :mod:`paddlex_interpret.backends`. ``batch_size='auto'`` picks
            it from memory (:func:`paddlex_interpret.backends.suggest_batch_size`).
        adaptive: optional adaptive sampling (see :class:`LimeExplainer`); off by default.

    Returns:
        :class:`paddlex_interpret.Explanation` with ``png_path`` (and ``npz_path``) set.

    Raises:
        UnsupportedModelError: not a classifier, or no test transforms.
        FileNotFoundError / IsADirectoryError / ImageReadError: a bad ``img_file``.
        ValueError: ``num_samples`` or ``batch_size`` < 1. PermissionError: unwritable ``save_dir``.
    """
    classifier, name, num_samples, batch_size = _prepare(img_file, model, num_samples,
                                                         batch_size, save_dir, backend=backend)
    explainer = LimeExplainer(classifier, segmenter=segmenter, segmenter_params=segmenter_params,
                              fill=fill, kernel_width=kernel_width, surrogate=surrogate,
                              num_samples=num_samples, batch_size=batch_size, seed=seed,
                              progress=progress, adaptive=adaptive)
    image = classifier.view(img_file)
    explanation = explainer.explain(image, labels=labels, top_k=top_k)
    explanation.settings["backend"] = classifier.backend_info.get("backend")
    logger.info("predicted %s with probability %.3f", explanation.label_name(
        explanation.predicted_label), explanation.predicted_probability)
    if save_png:
        _save(explanation, save_dir, name, "lime_s%d" % num_samples, figure="lime")
    return explanation


def _save(explanation, save_dir, name, stem, figure):
    from . import rendering

    out_dir = ensure_writable_dir(os.path.join(save_dir, name))
    png = next_free_path(out_dir, stem)
    fig = rendering.lime_figure(explanation) if figure == "lime" else \
        rendering.normlime_figure(explanation)
    rendering.save_figure(fig, png)
    explanation.png_path = png
    explanation.npz_path = explanation.save(png[:-4] + ".npz")
    logger.info("The image of interpretation result saved in %s", png)
    return png


def normlime(img_file, model, dataset=None, num_samples=3000, batch_size=50, save_dir="./",
             normlime_weights_file=None, **kwargs):
    """NormLIME (PaddleX 1.3 semantics); see :mod:`paddlex_interpret.normlime_api`."""
    from .normlime_api import normlime as _normlime

    return _normlime(img_file, model, dataset=dataset, num_samples=num_samples,
                     batch_size=batch_size, save_dir=save_dir,
                     normlime_weights_file=normlime_weights_file, **kwargs)


def glime(img_file_or_array, model_or_classifier, global_weights, codebook=None, beta=10.0,
          num_samples=1000, batch_size=50, **kwargs):
    """GLIME: LIME with a NormLIME prior; see :func:`paddlex_interpret.normlime_api.glime`."""
    from .normlime_api import glime as _glime

    return _glime(img_file_or_array, model_or_classifier, global_weights, codebook=codebook,
                  beta=beta, num_samples=num_samples, batch_size=batch_size, **kwargs)
