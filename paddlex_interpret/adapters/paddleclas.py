"""A PaddleX 3 / PaddleClas exported image classifier as a
:class:`~paddlex_interpret.core.classifier.Classifier`: the ``inference/`` directory PaddleX 3's
training writes into every checkpoint (``output/best_model/inference``, ``output/epoch_N/
inference``), or one exported by PaddleClas (``tools/export_model.py``).

The directory holds the program (``inference.json``, Paddle 3's default, or
``inference.pdmodel``), its weights (``inference.pdiparams``) and ``inference.yml``: the
preprocessing (``PreProcess.transform_ops``, run as PaddleX 3 runs it:
:mod:`~paddlex_interpret.adapters.clas_transforms`) and the class names
(``PostProcess.Topk.label_list``). The forward passes run on a Paddle Inference predictor of the
program (CPU with oneDNN and all cores, or a GPU). The outputs are probabilities whether or not
the program ends in a softmax: PaddleClas's export appends one, and a program that does not end in
one gets a softmax here (:func:`~paddlex_interpret.adapters.program.output_op`; PaddleX 3's own
``predict`` reports such a program's raw outputs as scores).

No gradients: the directory has no Python network. Methods that need only predictions work
(LIME, NormLIME, GLIME, occlusion, the metrics); the gradient methods say why they cannot run.
With PaddleClas installed, a checkpoint's network gives gradients too
(:mod:`~paddlex_interpret.adapters.paddleclas_net`).

Example::

    import paddlex_interpret
    exp = paddlex_interpret.lime("cat.jpg", "output/best_model/inference", save_dir="explain")
    clf = PaddleClasClassifier("output/best_model")       # the checkpoint: its inference/ is used
    clf.predict(clf.view("cat.jpg")[None])                 # (1, classes) probabilities
"""
import logging
import os
import threading
import zlib
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from ..core.classifier import Classifier, as_probabilities
from ..errors import UnsupportedModelError
from ..runtime.devices import current_device, suggest_batch_size
from ..runtime.engine import run_predictor
from ..runtime.modes import math_threads_kept
from .clas_transforms import ClasTransforms
from .program import check_loadable, output_op, paddle_version

__all__ = ["PaddleClasClassifier", "is_paddleclas_dir", "find_inference_dir", "program_files",
           "read_inference_config", "INFERENCE_SUBDIR"]

logger = logging.getLogger("paddlex_interpret")

#: where a PaddleX 3 / PaddleClas checkpoint keeps its exported model
INFERENCE_SUBDIR = "inference"
_CONFIG = "inference.yml"
_PARAMS = "inference.pdiparams"


def program_files(model_dir: str) -> Optional[Tuple[str, str]]:
    """``(program, params)`` of the exported model in ``model_dir``, or None. With both formats
    there, ``inference.json`` is PaddleX 3's choice; on Paddle 2.x the ``.pdmodel`` is taken."""
    params = os.path.join(model_dir, _PARAMS)
    if not os.path.isfile(params):
        return None
    found = [os.path.join(model_dir, n) for n in ("inference.json", "inference.pdmodel")
             if os.path.isfile(os.path.join(model_dir, n))]
    if not found:
        return None
    version = paddle_version() or "3"
    if len(found) == 2 and version.split(".")[0].isdigit() and int(version.split(".")[0]) < 3:
        return found[1], params
    return found[0], params


def is_paddleclas_dir(path: Any) -> bool:
    """True for a directory with ``inference.yml``, a program and ``inference.pdiparams``."""
    if not isinstance(path, (str, bytes, os.PathLike)):
        return False
    path = os.fsdecode(path)
    return (os.path.isdir(path) and os.path.isfile(os.path.join(path, _CONFIG))
            and program_files(path) is not None)


def find_inference_dir(path: Any) -> Optional[str]:
    """The exported model ``path`` names: ``path`` itself, or a checkpoint's ``inference/``
    (``output/best_model`` -> ``output/best_model/inference``); None when neither."""
    if not isinstance(path, (str, bytes, os.PathLike)):
        return None
    path = os.fsdecode(path)
    if is_paddleclas_dir(path):
        return path
    nested = os.path.join(path, INFERENCE_SUBDIR)
    return nested if is_paddleclas_dir(nested) else None


def read_inference_config(model_dir: str) -> Dict[str, Any]:
    """``inference.yml`` as a dict; an unreadable file raises
    :class:`~paddlex_interpret.errors.UnsupportedModelError` naming it."""
    import yaml

    path = os.path.join(model_dir, _CONFIG)
    try:
        with open(path, encoding="utf-8") as f:
            config = yaml.safe_load(f)
    except (OSError, yaml.YAMLError) as exc:
        raise UnsupportedModelError("cannot read %s: %s" % (path, exc)) from None
    if not isinstance(config, dict):
        raise UnsupportedModelError("%s is not a PaddleX 3 / PaddleClas inference config (a "
                                    "mapping with PreProcess and PostProcess)" % path)
    return config


def classifier_settings(config: Dict[str, Any], where: str) -> Tuple[ClasTransforms,
                                                                     Optional[List[str]]]:
    """``(transforms, class names or None)`` of an inference config; a model that is not a
    single-label classifier raises :class:`~paddlex_interpret.errors.UnsupportedModelError`."""
    post = config.get("PostProcess") or {}
    if not isinstance(post, dict) or "Topk" not in post:
        kind = next(iter(post), None) if isinstance(post, dict) else None
        what = {"MultiLabelThreshOutput": "a multi-label classifier",
                "NormalizeFeatures": "a feature extractor (image retrieval)"}.get(
                    kind, "not a classifier (PostProcess %r, not Topk)" % (kind,))
        raise UnsupportedModelError("%s: the model is %s; LIME, NormLIME and GLIME here explain "
                                    "single-label image classifiers" % (where, what))
    names = (post.get("Topk") or {}).get("label_list")
    transforms = ClasTransforms((config.get("PreProcess") or {}).get("transform_ops"))
    return transforms, ([str(n) for n in names] if names else None)


def _predictor(program, params, device, num_threads):
    import paddle
    import paddle.inference as pi

    if str(device).startswith("gpu") and not paddle.is_compiled_with_cuda():
        raise ValueError("device %r: this PaddlePaddle build has no GPU support (install "
                         "paddlepaddle-gpu, or give device='cpu')" % (device,))
    config = pi.Config(program, params)
    if str(device).startswith("gpu"):
        index = int(str(device).split(":")[1]) if ":" in str(device) else 0
        config.enable_use_gpu(256, index)
    else:
        config.disable_gpu()
        config.set_cpu_math_library_num_threads(int(num_threads or os.cpu_count() or 1))
        (getattr(config, "enable_onednn", None) or config.enable_mkldnn)()
    config.switch_ir_optim(True)
    if hasattr(config, "switch_use_feed_fetch_ops"):
        config.switch_use_feed_fetch_ops(False)
    if hasattr(config, "disable_glog_info"):
        config.disable_glog_info()
    with math_threads_kept():
        return pi.create_predictor(config)


def _softmax(x):
    z = np.asarray(x, np.float64)
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


class PaddleClasClassifier(Classifier):
    """``images -> probabilities`` of an exported PaddleX 3 / PaddleClas classifier (see the module
    docstring).

    Args:
        model_dir: the ``inference/`` directory, or a checkpoint directory holding one.
        device: ``'cpu'``, ``'gpu'`` or ``'gpu:N'`` (default the current Paddle device).
        num_threads: CPU threads of the predictor (default all cores).
        batch_size: the batch size suggested to LIME (default: from memory).

    Raises:
        UnsupportedModelError: not such a directory, an op or a post-process PaddleX 3's
            classifier does not run, or a Paddle 3 program on Paddle 2.x (before any Paddle call).
    """

    def __init__(self, model_dir: Any, device: Optional[str] = None,
                 num_threads: Optional[int] = None, batch_size: Optional[int] = None):
        found = find_inference_dir(model_dir)
        if found is None:
            raise UnsupportedModelError(
                "%r is not an exported PaddleX 3 / PaddleClas classifier (it needs inference.yml, "
                "inference.json or inference.pdmodel, and inference.pdiparams, in it or in its "
                "inference/ directory)" % (os.fsdecode(model_dir),))
        self.model_dir = found
        program, params = self._files = program_files(found)
        self.transforms, self.label_names = classifier_settings(
            read_inference_config(found), os.path.join(found, _CONFIG))
        self.num_classes = len(self.label_names) if self.label_names else None
        check_loadable(program)
        self.head = output_op(program)
        self.device = device or current_device()
        self.batch_size = batch_size
        self.predictor = _predictor(program, params, self.device, num_threads)
        self._input = self.predictor.get_input_handle(self.predictor.get_input_names()[0])
        self._output = self.predictor.get_output_handle(self.predictor.get_output_names()[0])
        self._lock = threading.Lock()
        if self.head != "softmax":
            logger.info("%s ends in %s, not a softmax: its outputs are taken as logits and "
                        "turned into probabilities", program, self.head or "an op not read")

    def view(self, image: Any) -> np.ndarray:
        """The image the model sees: read, resized and cropped by ``inference.yml``'s ops."""
        return self.transforms.view(image)

    def preprocess(self, images: np.ndarray) -> np.ndarray:
        return self.transforms.preprocess(images)

    def _run(self, x):
        with self._lock:
            out = run_predictor(self.predictor, self._input, self._output, x)
        if self.label_names and out.shape[-1] != len(self.label_names):
            raise UnsupportedModelError("%s: label_list names %d classes but the model outputs "
                                        "%d" % (self.model_dir, len(self.label_names),
                                                out.shape[-1]))
        return self._probabilities(out)

    def _probabilities(self, out):
        """A softmax program's outputs as they are; another's through a softmax. When the output
        op could not be read, PaddleX 1.3's rule per row (:func:`as_probabilities`)."""
        if self.head == "softmax" or self.head is None:
            return as_probabilities(out)
        return _softmax(out)

    def __call__(self, images: np.ndarray) -> np.ndarray:
        return self._run(self.preprocess(images))

    def input_table(self) -> np.ndarray:
        """The exported preprocessing's per-channel table: LIME's batches are composed
        directly as model inputs."""
        return self.transforms.lut

    def predict_inputs(self, inputs: np.ndarray) -> np.ndarray:
        return self._run(inputs)

    def suggest_batch_size(self, image: np.ndarray) -> int:
        if self.batch_size:
            return int(self.batch_size)
        return suggest_batch_size(np.shape(image), device=self.device)

    def fingerprint(self) -> str:
        """The weights (a CRC of ``inference.pdiparams``) and the preprocessing."""
        crc = 0
        with open(self._files[1], "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                crc = zlib.crc32(chunk, crc)
        return "%08x-%08x" % (crc & 0xFFFFFFFF,
                              zlib.crc32(self.transforms.describe().encode()) & 0xFFFFFFFF)

    @property
    def backend_info(self) -> Dict[str, Any]:
        return {"backend": "inference", "reason": "exported PaddleX 3 / PaddleClas model",
                "path": "predictor of %s" % os.path.basename(self._files[0]),
                "device": self.device, "output": self.head}

    def gradient_unavailable(self) -> str:
        """Why the gradient methods cannot run on this model (their error message)."""
        return ("%s is an exported inference model (a traced program and its weights), which "
                "gives predictions only: LIME, NormLIME, GLIME and occlusion work on it. For "
                "gradients, load the checkpoint's network with PaddleClas installed: "
                "paddlex_interpret.PaddleClasNetwork.from_checkpoint(<checkpoint directory>)"
                % self.model_dir)
