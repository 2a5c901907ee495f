"""PaddleX 1.3's ``paddlex.interpret`` on PaddleX 2.x classifiers: after ``import
paddlex_interpret``, ``paddlex.interpret`` *is* this module.

The functions keep PaddleX 1.3's signatures and semantics, take a few keyword-only extras (seed,
top_k, labels, segmenter, fill...) and return the result object instead of ``None``. No logic
lives here: :mod:`~paddlex_interpret.api.lime`, :mod:`~paddlex_interpret.api.normlime` and
:mod:`~paddlex_interpret.api.glime` hold it; the gradient methods (``gradcam``, ``smoothgrad``,
``integrated_gradients``, ``input_x_gradient``, :mod:`~paddlex_interpret.api.saliency`) and the
shortcut ``audit`` (:mod:`~paddlex_interpret.api.audit`) sit beside them, with ``occlusion``
(:mod:`~paddlex_interpret.api.occlusion`: predictions only, so exported models too).

Example::

    import paddlex_interpret
    import paddlex as pdx
    model = pdx.load_model("output/best_model")
    exp = pdx.interpret.lime("val/0001.png", model, num_samples=1000, save_dir="explain")
    exp.png_path                       # explain/0001/lime_s1000-0.png
"""
from .glime import glime
from .lime import lime
from .normlime import normlime
from .audit import audit
from .occlusion import occlusion
from .saliency import gradcam, input_x_gradient, integrated_gradients, smoothgrad

__all__ = ["lime", "normlime", "glime", "gradcam", "smoothgrad", "integrated_gradients",
           "input_x_gradient", "occlusion", "audit"]
