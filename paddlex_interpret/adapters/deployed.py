"""A deployed PaddleX classifier as a :class:`~paddlex_interpret.core.classifier.Classifier`:
a ``paddlex.deploy.Predictor`` or an exported inference-model directory
(``paddlex --export_inference`` / ``model.export_inference_model``: ``model.pdmodel`` or
``model.json``, ``model.pdiparams``, ``model.yml``), explained without its training code.

The test transforms and class names come from the directory's ``model.yml`` (through PaddleX's
own ``load_model(..., with_net=False)``); the forward passes run on a Paddle Inference predictor
of the shipped program: the ``Predictor``'s own (on the device it was built for), or one built
here on ``device`` (default the current Paddle device, ``paddle.get_device()``: a card when the
process runs on a GPU, else the CPU with oneDNN and all cores).
LIME's perturbed batches are composed as normalised inputs directly, as for a live model.

Example::

    import paddlex as pdx
    exp = pdx.interpret.lime("val/0001.png", "output/inference_model", save_dir="explain")
    exp = pdx.interpret.lime("val/0001.png", pdx.deploy.Predictor("output/inference_model"))
"""
import os
import threading
import zlib

from ..core.classifier import Classifier, as_probabilities
from ..errors import UnsupportedModelError
from ..runtime.devices import check_device, current_device
from ..runtime.engine import configure_device, run_predictor
from ..runtime.fingerprint import transforms_fingerprint
from ..runtime.modes import math_threads_kept
from .transforms import TransformSplit

__all__ = ["DeployedClassifier", "is_deployed_model", "program_files", "predictor_config"]


def program_files(model_dir):
    """``(program file, params file)`` of an exported inference model, or None."""
    params = os.path.join(model_dir, "model.pdiparams")
    for name in ("model.pdmodel", "model.json"):
        program = os.path.join(model_dir, name)
        if os.path.exists(program) and os.path.exists(params):
            return program, params
    return None


def is_deployed_model(obj):
    """A ``paddlex.deploy.Predictor``, or the path of an exported inference-model directory."""
    if isinstance(obj, (str, bytes, os.PathLike)):
        path = os.fsdecode(obj)
        return os.path.isdir(path) and program_files(path) is not None and \
            os.path.exists(os.path.join(path, "model.yml"))
    return hasattr(obj, "predictor") and hasattr(obj, "model_dir") and hasattr(obj, "_model")


def predictor_config(program, params, device, num_threads=None):
    """``(paddle.inference.Config, what was set)`` of an exported program on ``device`` (a
    checked name; :func:`~paddlex_interpret.runtime.engine.configure_device`)."""
    import paddle.inference as pi

    config = pi.Config(program, params)
    opts = configure_device(config, device, int(num_threads or os.cpu_count() or 1))
    config.switch_ir_optim(True)
    if hasattr(config, "switch_use_feed_fetch_ops"):
        config.switch_use_feed_fetch_ops(False)
    if hasattr(config, "disable_glog_info"):
        config.disable_glog_info()
    return config, opts


class DeployedClassifier(Classifier):
    """``images -> probabilities`` of a deployed PaddleX classifier (see the module docstring).

    Args:
        model: a ``paddlex.deploy.Predictor`` or an exported inference-model directory.
        num_threads: CPU threads of the predictor built for a directory (default all cores).
        batch_size: the batch size suggested to LIME (default 50).
        device: where the predictor built for a directory runs: ``'cpu'``, ``'gpu'``,
            ``'gpu:N'`` (default the current Paddle device); a GPU that is not there raises
            :class:`~paddlex_interpret.errors.DeviceError` before anything is loaded. A
            ``paddlex.deploy.Predictor`` runs where it was built (its ``use_gpu``, ``gpu_id``).
    """

    def __init__(self, model, num_threads=None, batch_size=None, device=None):
        import paddle.inference as pi

        from ..compat import ensure_paddlex

        if isinstance(model, (str, bytes, os.PathLike)):
            model_dir = os.fsdecode(model)
            files = program_files(model_dir)
            if files is None or not os.path.exists(os.path.join(model_dir, "model.yml")):
                raise UnsupportedModelError(
                    "%r is not an exported PaddleX inference model (it needs model.pdmodel or "
                    "model.json, model.pdiparams and model.yml)" % model_dir)
            device = check_device(device) if device else current_device()
            pdx_model = ensure_paddlex().load_model(model_dir, with_net=False)
            config, self.options = predictor_config(*files, device, num_threads)
            with math_threads_kept():
                predictor = pi.create_predictor(config)
        else:
            if device is not None:
                raise ValueError("device=%r: a paddlex.deploy.Predictor runs where it was built "
                                 "(its use_gpu and gpu_id); give the model directory to choose"
                                 % (device,))
            model_dir, pdx_model, predictor = model.model_dir, model._model, model.predictor
            files = program_files(model_dir)
            self.options = {"device": "paddlex.deploy.Predictor's own"}
        if getattr(pdx_model, "model_type", None) != "classifier":
            raise UnsupportedModelError("LIME/NormLIME explain image classifiers only; %r is a "
                                        "%s model" % (model_dir, getattr(pdx_model, "model_type",
                                                                          "unknown")))
        self.model_dir, self.model, self.predictor = model_dir, pdx_model, predictor
        self.label_names = list(pdx_model.labels) if getattr(pdx_model, "labels", None) else None
        self.num_classes = len(self.label_names) if self.label_names else None
        self.transforms = TransformSplit(pdx_model.test_transforms)
        self.batch_size = batch_size
        self._files = files
        self._input = predictor.get_input_handle(predictor.get_input_names()[0])
        self._output = predictor.get_output_handle(predictor.get_output_names()[0])
        self._lock = threading.Lock()

    def view(self, image):
        return self.transforms.view(image)

    def preprocess(self, images):
        return self.transforms.preprocess(images)

    def _run(self, x):
        with self._lock:
            return run_predictor(self.predictor, self._input, self._output, x)

    def __call__(self, images):
        return self._run(self.preprocess(images))

    def input_table(self):
        """The test transforms' per-channel table (None when they are not one): LIME's batches
        are then composed directly as normalised inputs."""
        return self.transforms.lut

    def predict_inputs(self, inputs):
        return as_probabilities(self._run(inputs))

    def suggest_batch_size(self, image):
        return int(self.batch_size or 50)

    def fingerprint(self):
        """The shipped weights (a CRC of the params file) and the test transforms."""
        crc = 0
        if self._files is not None:
            with open(self._files[1], "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    crc = zlib.crc32(chunk, crc)
        return "%08x-%s" % (crc & 0xFFFFFFFF, transforms_fingerprint(self.transforms.ops))

    @property
    def backend_info(self):
        return dict(self.options, backend="inference", reason="deployed model",
                    path="deployed predictor")
