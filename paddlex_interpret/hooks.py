"""Explanations at every checkpoint of a PaddleX 2.x classifier, without changing ``model.train``.

PaddleX 2.1's ``train_loop`` has no callbacks; at every ``save_interval_epochs`` and at the last
epoch it evaluates, saves ``best_model`` and then calls ``self.save_model(save_dir/epoch_N)`` (on
rank 0 only). :class:`ExplainHook` wraps two methods of one model *instance*:

* ``train``: to learn ``num_epochs``, ``eval_dataset``, ``save_dir`` and ``use_vdl`` of the run;
* ``save_model``: after a ``save_dir/epoch_N`` checkpoint has been written, the hook runs the
  shared :class:`~paddlex_interpret.explain_session.ExplainSession`: NormLIME weights on the eval
  set (written to ``save_dir/epoch_N/normlime_weights.npz``), LIME and NormLIME-filtered LIME of
  the probes, scores, all logged to VisualDL.

The ``best_model`` save and saves outside ``train`` are left alone; ``detach()`` restores the
original methods (the instance's ``__dict__`` is as before ``attach``).

Where the logs go: VisualDL shows one record file per directory (the newest), so the hook does not
write into ``save_dir/vdl_log`` itself (it would hide PaddleX's curves) but into its sub-directory
``save_dir/vdl_log/explain``: ``visualdl --logdir save_dir/vdl_log`` shows PaddleX's loss and
accuracy (run ``.``) and the explanations (run ``explain``) in one board. ``logdir=`` names another
directory. With ``use_vdl=False`` the hook still logs to ``save_dir/vdl_log/explain`` unless
``logdir`` is given, so explanations are never silently lost.

Multi-card (``paddle.distributed.launch``): PaddleX calls ``save_model`` on rank 0 only, so the
whole checkpoint work (NormLIME weights included) runs on rank 0 alone, and the session checks the
rank again before writing anything. The other ranks wait at the next collective.

Example::

    import paddlex_interpret            # before paddlex
    import paddlex as pdx
    from paddlex_interpret.hooks import ExplainHook

    model = pdx.cls.MobileNetV3_small(num_classes=3)
    with ExplainHook(["data/val/0.png", "data/val/7.png"], num_samples=300).attach(model):
        model.train(num_epochs=10, train_dataset=train, eval_dataset=val,
                    save_interval_epochs=2, save_dir="output", use_vdl=True)
    # visualdl --logdir output/vdl_log
"""
import functools
import inspect
import logging
import os
import re

from .explain_session import (CheckpointContext, ExplainSession, WEIGHTS_FILENAME,
                              core_weights_builder)

__all__ = ["ExplainHook", "paddlex_weights_builder", "dataset_items", "EXPLAIN_SUBDIR"]

logger = logging.getLogger("paddlex_interpret")

#: Sub-directory of ``save_dir/vdl_log`` the hook logs to by default.
EXPLAIN_SUBDIR = "explain"

_EPOCH_DIR = re.compile(r"^epoch_(\d+)$")


def dataset_items(dataset):
    """``(paths, labels)`` of a PaddleX 2.x classification dataset (``file_list`` of
    ``{'image': path, 'label': id}``), or of a sequence of ``(image, label)`` pairs."""
    file_list = getattr(dataset, "file_list", None)
    if file_list is not None:
        return ([d["image"] for d in file_list], [int(d["label"]) for d in file_list])
    pairs = list(dataset)
    return [p[0] for p in pairs], [int(p[1]) for p in pairs]


def paddlex_weights_builder(session, context):
    """NormLIME global weights for a PaddleX model on the ``eval_dataset`` given to ``train``.

    Runs on rank 0 alone (PaddleX saves checkpoints there only). The eval images are read through
    the model's own test transforms; the concept codebook is fitted once per run and the concept
    occurrences are cached, so each checkpoint costs one forward pass per image in ``'fast'``
    mode (see :func:`~paddlex_interpret.explain_session.core_weights_builder`). Returns None (and
    logs why) when ``train`` got no eval dataset.
    """
    dataset = context.extra.get("dataset")
    if dataset is None:
        logger.info("explanations: no eval_dataset given to train(); NormLIME weights skipped")
        return None
    if "normlime_items" not in context.extra:
        context.extra["normlime_items"], context.extra["normlime_labels"] = dataset_items(dataset)
    return core_weights_builder(session, context)


class ExplainHook:
    """Explain probe images at every checkpoint of ``model.train(...)`` and log to VisualDL.

    Args:
        probes: image paths or arrays, shown to the model through its test transforms.
        logdir: VisualDL directory; default ``<save_dir>/vdl_log/explain`` of each ``train`` call.
        weights_builder: ``f(session, context) -> GlobalWeights`` replacing
            :func:`paddlex_weights_builder` (e.g. a cached file).
        **options: everything :class:`~paddlex_interpret.explain_session.ExplainSession` takes
            (``probe_labels``, ``num_samples=300``, ``seed``, ``freq``, ``normlime``,
            ``max_images``, ``metrics``, ...).

    Use ``hook.attach(model)`` / ``hook.detach()``, or ``with ExplainHook(...).attach(model):``.
    ``hook.session.history`` holds a :class:`~paddlex_interpret.explain_session.CheckpointReport`
    per explained checkpoint.
    """

    def __init__(self, probes, logdir=None, weights_builder=None, **options):
        self.session = ExplainSession(probes, **options)
        self.logdir = logdir
        self.weights_builder = weights_builder or paddlex_weights_builder
        self.model = None
        self._saved = {}
        self._run = None

    # ------------------------------------------------------------------ attach / detach
    def attach(self, model):
        """Wrap ``model.train`` and ``model.save_model`` of this instance; returns ``self``."""
        if self.model is not None:
            raise RuntimeError("this ExplainHook is already attached to a model; detach() first")
        if getattr(model, "model_type", None) != "classifier" or not hasattr(model, "net"):
            from .errors import UnsupportedModelError

            raise UnsupportedModelError(
                "ExplainHook needs a paddlex.cv.models classifier (paddlex.cls.* or "
                "paddlex.load_model), got %s" % type(model).__name__)
        for name in ("train", "save_model"):
            if getattr(getattr(model, name, None), "_explain_hook", None) is not None:
                raise RuntimeError("%s.%s is already wrapped by another ExplainHook"
                                   % (type(model).__name__, name))
        self._saved = {name: (name in vars(model), vars(model).get(name))
                       for name in ("train", "save_model")}
        original_train = model.train
        original_save = model.save_model
        hook = self

        @functools.wraps(original_train)
        def train(*args, **kwargs):
            return hook._train(original_train, *args, **kwargs)

        @functools.wraps(original_save)
        def save_model(*args, **kwargs):
            return hook._save_model(original_save, *args, **kwargs)

        train._explain_hook = self
        save_model._explain_hook = self
        model.train = train
        model.save_model = save_model
        self.model = model
        return self

    def detach(self):
        """Restore the model's original methods and close the VisualDL writer."""
        model = self.model
        if model is not None:
            for name, (had, value) in self._saved.items():
                if had:
                    setattr(model, name, value)
                else:
                    model.__dict__.pop(name, None)
        self.model = None
        self._saved = {}
        self._run = None
        self.session.close()
        return model

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.detach()
        return False

    # ------------------------------------------------------------------ wrappers
    def _train(self, original_train, *args, **kwargs):
        try:
            sig = inspect.signature(original_train)
            bound = sig.bind(*args, **kwargs)
            bound.apply_defaults()
            params = dict(bound.arguments)
        except (TypeError, ValueError):
            params = dict(kwargs)
        save_dir = params.get("save_dir", "output")
        logdir = self.logdir or os.path.join(save_dir, "vdl_log", EXPLAIN_SUBDIR)
        self._run = {"num_epochs": params.get("num_epochs"),
                     "eval_dataset": params.get("eval_dataset"),
                     "save_dir": os.path.abspath(save_dir), "use_vdl": params.get("use_vdl", True),
                     "logdir": logdir}
        self.session.reset_run()
        try:
            return original_train(*args, **kwargs)
        finally:
            self._run = None
            self.session.flush()

    def _save_model(self, original_save, *args, **kwargs):
        result = original_save(*args, **kwargs)
        try:
            self._after_save(*args, **kwargs)
        except Exception:  # never raise into training
            logger.exception("explanations: unexpected error after save_model")
        return result

    def _after_save(self, *args, **kwargs):
        run = self._run
        if run is None:
            return
        save_dir = kwargs.get("save_dir", args[0] if args else None)
        if save_dir is None:
            return
        save_dir = os.path.abspath(os.fspath(save_dir))
        match = _EPOCH_DIR.match(os.path.basename(save_dir.rstrip(os.sep)))
        if match is None or os.path.dirname(save_dir.rstrip(os.sep)) != run["save_dir"]:
            return  # best_model, or a save outside this run's checkpoints
        epoch = int(match.group(1))
        model = self.model
        from .predictors import PaddleXClassifier

        try:
            classifier = PaddleXClassifier(model)
        except Exception as exc:
            self.session._log_error(None, CheckpointContext(epoch=epoch, classifier=None,
                                                            logdir=run["logdir"]),
                                    "classifier", exc)
            return
        num_epochs = run.get("num_epochs")
        context = CheckpointContext(
            epoch=epoch, classifier=classifier, layer=model.net, checkpoint_dir=save_dir,
            weights_builder=self.weights_builder, logdir=run["logdir"],
            is_last=num_epochs is not None and epoch >= int(num_epochs),
            label_names=list(model.labels) if getattr(model, "labels", None) else None,
            extra={"model": model, "dataset": run["eval_dataset"]})
        self.session.on_checkpoint(context)

    # ------------------------------------------------------------------ conveniences
    @property
    def history(self):
        return self.session.history

    @staticmethod
    def weights_file(checkpoint_dir):
        """Path of the NormLIME weights file the hook writes into ``checkpoint_dir``."""
        return os.path.join(os.fspath(checkpoint_dir), WEIGHTS_FILENAME)
