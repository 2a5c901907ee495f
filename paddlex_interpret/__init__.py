"""paddlex_interpret: LIME, NormLIME and GLIME explanations for PaddleX 2.x image classifiers.

Importing the package is cheap (numpy, Paddle and PaddleX are imported on first use). It

* installs the ``paddle.fluid`` -> ``paddle.base`` import alias PaddleX 2.1 needs on Paddle >= 2.6
  (:mod:`paddlex_interpret.compat`), and
* makes ``paddlex.interpret`` (``lime``, ``normlime``) this package's PaddleX 1.3-compatible API,
  whether ``paddlex`` is imported before or after us.

Example::

    import paddlex_interpret
    import paddlex as pdx
    model = pdx.load_model("output/best_model")
    result = pdx.interpret.lime("dog.jpg", model, num_samples=1000, save_dir="out")
    print(result.labels, result.ranked(result.labels[0])[:5])
"""
from . import compat as _compat

__version__ = "0.1.0"

_compat.enable_paddlex_plugin()

_LAZY = {
    "lime": ("paddlex_interpret.api.lime", "lime"),
    "normlime": ("paddlex_interpret.api.normlime", "normlime"),
    "glime": ("paddlex_interpret.api.glime", "glime"),
    "gradcam": ("paddlex_interpret.api.saliency", "gradcam"),
    "smoothgrad": ("paddlex_interpret.api.saliency", "smoothgrad"),
    "integrated_gradients": ("paddlex_interpret.api.saliency", "integrated_gradients"),
    "input_x_gradient": ("paddlex_interpret.api.saliency", "input_x_gradient"),
    "occlusion": ("paddlex_interpret.api.occlusion", "occlusion"),
    "audit": ("paddlex_interpret.api.audit", "audit"),
    "watch": ("paddlex_interpret.training.watch", "watch"),
    "SaliencyExplanation": ("paddlex_interpret.core.saliency", "SaliencyExplanation"),
    "build_normlime_weights": ("paddlex_interpret.api.weights", "build_normlime_weights"),
    "load_or_build_normlime_weights": ("paddlex_interpret.api.weights",
                                       "load_or_build_normlime_weights"),
    "Explanation": ("paddlex_interpret.core.explanation", "Explanation"),
    "LimeExplainer": ("paddlex_interpret.core.lime", "LimeExplainer"),
    "Classifier": ("paddlex_interpret.core.classifier", "Classifier"),
    "GlobalWeights": ("paddlex_interpret.core.normlime.weights", "GlobalWeights"),
    "ConceptCodebook": ("paddlex_interpret.core.normlime.concepts", "ConceptCodebook"),
    "PaddleXClassifier": ("paddlex_interpret.adapters.paddlex", "PaddleXClassifier"),
    "LayerClassifier": ("paddlex_interpret.adapters.layer", "LayerClassifier"),
    "PaddleClasClassifier": ("paddlex_interpret.adapters.paddleclas", "PaddleClasClassifier"),
    "PaddleClasNetwork": ("paddlex_interpret.adapters.paddleclas_net", "PaddleClasNetwork"),
    "ExplainHook": ("paddlex_interpret.training.hook", "ExplainHook"),
    "ExplainCallback": ("paddlex_interpret.training.callback", "ExplainCallback"),
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name):
    if name in _LAZY:
        import importlib

        module_name, attr = _LAZY[name]
        value = getattr(importlib.import_module(module_name), attr)
        globals()[name] = value
        return value
    raise AttributeError("module 'paddlex_interpret' has no attribute %r" % name)
