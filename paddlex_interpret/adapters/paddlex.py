"""A PaddleX 2.x classifier as a :class:`~paddlex_interpret.core.classifier.Classifier`, through
its own test transforms.

:meth:`PaddleXClassifier.view` runs the geometric steps (everything before ``Normalize``) and
gives the image the model sees (PaddleX 1.3: ``test_transforms[:-2]``, rounded to uint8);
``__call__`` runs the remaining steps (``Normalize``: PaddleX's own, evaluated once on the 256
values of each channel and applied to whole batches as a lookup table) and ``model.net``.

Example::

    import paddlex_interpret, paddlex as pdx
    from paddlex_interpret import PaddleXClassifier
    clf = PaddleXClassifier(pdx.load_model("output/best_model"))
    image = clf.view("dog.jpg")            # uint8 HWC after Resize/CenterCrop
    probs = clf(image[None])               # (1, num_classes)
    clf.backend_info                       # {'backend': 'inference', 'reason': ..., ...}
"""
from ..errors import UnsupportedModelError
from ..runtime.fingerprint import model_fingerprint
from .base import PaddleClassifier
from .transforms import TransformSplit

__all__ = ["PaddleXClassifier", "check_paddlex_classifier", "is_paddlex_model"]


def is_paddlex_model(obj):
    """True for a ``paddlex.cv.models`` model (or anything that looks like one: a ``net`` and
    ``labels``), which :func:`check_paddlex_classifier` then vets."""
    return hasattr(obj, "model_type") or (hasattr(obj, "net") and hasattr(obj, "labels"))


def check_paddlex_classifier(model):
    """Raise :class:`UnsupportedModelError` naming the problem unless ``model`` is a usable PaddleX
    classifier (``model_type == 'classifier'``, a ``net`` and ``test_transforms``)."""
    model_type = getattr(model, "model_type", None)
    if model_type is None or not hasattr(model, "net"):
        raise UnsupportedModelError(
            "expected a paddlex.cv.models classifier (e.g. paddlex.cls.MobileNetV3_small or "
            "paddlex.load_model(...)), got %s" % type(model).__name__)
    if model_type != "classifier":
        raise UnsupportedModelError(
            "LIME/NormLIME explain image classifiers only; %s is a %s model"
            % (type(model).__name__, model_type))
    transforms = getattr(model, "test_transforms", None)
    if transforms is None or not getattr(transforms, "transforms", None):
        raise UnsupportedModelError(
            "%s has no test_transforms: train it with an eval_dataset, load it with "
            "paddlex.load_model, or set model.test_transforms = paddlex.transforms.Compose([...])"
            % type(model).__name__)
    return model


class PaddleXClassifier(PaddleClassifier):
    """``images -> probabilities`` for a PaddleX 2.x classifier, through its own test transforms.

    Args:
        model: a ``paddlex.cv.models.BaseClassifier`` with ``test_transforms``.
        transforms: a ``paddlex.transforms.Compose`` to use instead of ``model.test_transforms``.
        backend, device, num_threads, batch_size: see
            :class:`~paddlex_interpret.adapters.base.PaddleClassifier`.
    """

    def __init__(self, model, transforms=None, *, backend="auto", device=None, num_threads=None,
                 batch_size=None):
        super().__init__(backend, device, num_threads, batch_size)
        if transforms is None:
            check_paddlex_classifier(model)
            transforms = model.test_transforms
        self.model = model
        self.label_names = list(model.labels) if getattr(model, "labels", None) else None
        self.num_classes = getattr(model, "num_classes", None)
        self.transforms = TransformSplit(transforms)
        self._lut = self.transforms.lut

    def _layer(self):
        return self.model.net

    def fingerprint(self):
        return model_fingerprint(self.model.net, self.transforms.ops)

    def view(self, image):
        """The image the model sees: path or array (RGB) -> uint8 HWC after the geometric steps
        of the test transforms."""
        return self.transforms.view(image)

    def preprocess(self, images):
        """``(B, H, W, 3)`` uint8 -> ``(B, 3, H, W)`` float32 via the transforms after the view."""
        return self.transforms.preprocess(images)
