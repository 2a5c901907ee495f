"""The Python network of a PaddleX 3 / PaddleClas checkpoint, for the methods that need gradients.

A checkpoint directory of a PaddleX 3 training run (``output/epoch_N``, ``output/best_model``)
holds the network's weights (``<name>.pdparams``) beside the exported model (``inference/``); the
run directory holds the training config (``config.yaml``, whose ``Arch`` names the network).
With PaddleClas's library (``ppcls``) importable, :class:`PaddleClasNetwork` rebuilds the network
(``ppcls.arch.build_model``), loads the weights the exported model was made of and explains it
as any Paddle network: LIME, NormLIME and the metrics through the package's runtime, and the
gradient methods and the class atlas too. Its view and inputs are the exported model's
(``inference/inference.yml``, :mod:`~paddlex_interpret.adapters.clas_transforms`); its outputs
are the network's logits (the export appends the softmax).

With EMA training PaddleClas saves the EMA weights as ``<name>.pdparams`` and the raw ones as
``<name>.pdema``, and exports the raw network to ``inference/``: the raw weights are loaded, so
that the network is the exported model.

``ppcls`` is found as a module (a PaddleClas checkout, as PaddleX 3's plugin installs it) or
inside the PyPI ``paddleclas`` wheel (``pip install --no-deps paddleclas``), whose directory is
put on ``sys.path`` (its own ``__init__`` imports a whole predictor stack that is not needed).

Example::

    from paddlex_interpret import PaddleClasNetwork
    net = PaddleClasNetwork.from_checkpoint("output/epoch_3")
    exp = paddlex_interpret.gradcam("cat.jpg", net)
    net.load_checkpoint("output/epoch_4")        # the next checkpoint: only its weights are read
"""
import importlib
import importlib.util
import logging
import os
import sys
from typing import Any, Dict, Optional

from ..errors import UnsupportedModelError
from .base import PaddleClassifier
from .paddleclas import classifier_settings, find_inference_dir, read_inference_config

__all__ = ["PaddleClasNetwork", "import_ppcls", "quiet_ppcls_logger", "checkpoint_weights",
           "read_run_config"]

logger = logging.getLogger("paddlex_interpret")


def import_ppcls():
    """PaddleClas's ``ppcls`` package; ImportError saying how to get it when it is not there."""
    try:
        return importlib.import_module("ppcls")
    except ImportError:
        pass
    spec = importlib.util.find_spec("paddleclas")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("PaddleClas's library (ppcls) is not installed: pip install --no-deps "
                          "paddleclas==2.6.0 (or install PaddleX 3's PaddleClas plugin)")
    root = list(spec.submodule_search_locations)[0]
    if root not in sys.path:
        sys.path.append(root)
    return importlib.import_module("ppcls")


def checkpoint_weights(checkpoint_dir: str) -> str:
    """The weights file of a checkpoint that its ``inference/`` was exported from:
    ``<name>.pdema`` when there is one (EMA training), else ``<name>.pdparams``."""
    name = os.path.basename(os.path.normpath(checkpoint_dir))
    for ext in (".pdema", ".pdparams"):
        path = os.path.join(checkpoint_dir, name + ext)
        if os.path.isfile(path):
            return path
    raise UnsupportedModelError("%s has no %s.pdparams: not a PaddleX 3 / PaddleClas checkpoint"
                                % (checkpoint_dir, name))


def read_run_config(run_dir: str) -> Dict[str, Any]:
    """The training run's ``config.yaml`` (it names the network in ``Arch``)."""
    import yaml

    path = os.path.join(run_dir, "config.yaml")
    try:
        with open(path, encoding="utf-8") as f:
            config = yaml.safe_load(f)
    except (OSError, yaml.YAMLError) as exc:
        raise UnsupportedModelError("cannot read the run's config %s: %s" % (path, exc)) from None
    if not isinstance(config, dict) or not isinstance(config.get("Arch"), dict) \
            or "name" not in config["Arch"]:
        raise UnsupportedModelError("%s names no network (Arch.name)" % path)
    return config


def quiet_ppcls_logger():
    """PaddleClas's networks log through ``ppcls.utils.logger``, which fails until its
    ``init_logger`` has run, and that one prints to stdout (where a command's JSON goes): its
    logger becomes the standard ``ppcls`` logger instead, errors only."""
    from ppcls.utils import logger as ppcls_logger

    if getattr(ppcls_logger, "_logger", None) is None:
        quiet = logging.getLogger("ppcls")
        quiet.setLevel(logging.ERROR)
        ppcls_logger._logger = quiet


def _build(config):
    ppcls = import_ppcls()
    quiet_ppcls_logger()
    from ppcls.arch import build_model

    arch = dict(config["Arch"])
    arch.pop("use_sync_bn", None)  # one process: plain BatchNorm
    try:
        return build_model({"Arch": arch, "Global": dict(config.get("Global") or {})},
                           mode="infer")
    except Exception as exc:
        raise UnsupportedModelError("PaddleClas (%s) cannot build the network %r of the run's "
                                    "config: %s" % (list(ppcls.__path__)[0], arch.get("name"),
                                                    exc)) from exc


class PaddleClasNetwork(PaddleClassifier):
    """A PaddleClas network with its exported model's preprocessing (see the module docstring).

    Args:
        layer: the ``paddle.nn.Layer`` (logits out).
        transforms: its :class:`~paddlex_interpret.adapters.clas_transforms.ClasTransforms`.
        label_names: class names (the exported model's label list).
        backend, device, num_threads, batch_size: see
            :class:`~paddlex_interpret.adapters.base.PaddleClassifier`.
    """

    def __init__(self, layer, transforms, label_names=None, *, backend="auto", device=None,
                 num_threads=None, batch_size=None):
        super().__init__(backend, device, num_threads, batch_size)
        self.layer = layer
        self.transforms = transforms
        self.label_names = list(label_names) if label_names else None
        self.num_classes = len(self.label_names) if self.label_names else None
        self._lut = transforms.lut
        self.checkpoint_dir: Optional[str] = None

    @classmethod
    def from_checkpoint(cls, checkpoint_dir: str, **options) -> "PaddleClasNetwork":
        """The network of ``checkpoint_dir`` (``output/epoch_N``): its run's ``config.yaml``,
        its weights and its ``inference/inference.yml``. Raises ImportError without PaddleClas,
        :class:`~paddlex_interpret.errors.UnsupportedModelError` for a directory that is not a
        checkpoint."""
        checkpoint_dir = os.fspath(checkpoint_dir)
        exported = find_inference_dir(checkpoint_dir)
        if exported is None or exported == checkpoint_dir:
            raise UnsupportedModelError("%s is not a PaddleX 3 / PaddleClas checkpoint (it needs "
                                        "<name>.pdparams and an inference/ directory)"
                                        % checkpoint_dir)
        checkpoint_weights(checkpoint_dir)
        config = read_run_config(os.path.dirname(os.path.abspath(checkpoint_dir)))
        transforms, names = classifier_settings(read_inference_config(exported),
                                                os.path.join(exported, "inference.yml"))
        net = cls(_build(config), transforms, names, **options)
        net.load_checkpoint(checkpoint_dir)
        return net

    def load_checkpoint(self, checkpoint_dir: str) -> None:
        """Load a checkpoint's weights into the network (the same network, e.g. the next epoch)."""
        import paddle

        path = checkpoint_weights(os.fspath(checkpoint_dir))
        state = paddle.load(path)
        own = self.layer.state_dict()
        missing = [k for k in own if k not in state]
        if missing:
            raise UnsupportedModelError("%s does not hold the network's weights (missing %s...)"
                                        % (path, ", ".join(missing[:3])))
        self.layer.set_state_dict({k: v for k, v in state.items() if k in own})  # not the loss's
        self.layer.eval()
        self.checkpoint_dir = os.fspath(checkpoint_dir)

    def _layer(self):
        return self.layer

    def view(self, image: Any):
        """The image the model sees (the exported model's read, resize and crop)."""
        return self.transforms.view(image)

    def preprocess(self, images):
        return self.transforms.preprocess(images)
