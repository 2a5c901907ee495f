"""Explanations at every checkpoint of a PaddleX 2.x classifier, without changing ``model.train``.

PaddleX 2.1's ``train_loop`` has no callbacks; at every ``save_interval_epochs`` and at the last
epoch it evaluates, saves ``best_model`` and then calls ``self.save_model(save_dir/epoch_N)`` (on
rank 0 only). :class:`ExplainHook` wraps two methods of one model *instance*:

* ``train``: to learn ``num_epochs``, ``eval_dataset``, ``save_dir`` and ``use_vdl`` of the run;
* ``save_model``: after a ``save_dir/epoch_N`` checkpoint has been written, the hook runs the
  shared :class:`~paddlex_interpret.training.session.ExplainSession`: NormLIME weights on the eval
  set (written to ``save_dir/epoch_N/normlime_weights.npz``), LIME and NormLIME-filtered LIME of
  the probes, scores, all logged to VisualDL.

Where the work runs: by default (``background=True``) in a worker process
(:mod:`paddlex_interpret.training.worker`) started with ``train``: the hook hands it the checkpoint
directory, and training goes on while it loads those weights and explains them (a Paddle
Inference predictor run in the training process would slow the rest of the training). Training
waits only for the previous checkpoint still being explained, and for the last one at the end of
``train``. If the worker cannot start or dies, or the options cannot be pickled, the checkpoint is
explained in the training process (``background=False`` asks for that), with the model in eval
mode and its RNG states restored.

The ``best_model`` save and saves outside ``train`` are left alone; ``detach()`` restores the
original methods (the instance's ``__dict__`` is as before ``attach``).

Where the logs go: VisualDL shows one record file per directory (the newest), so the hook does not
write into ``save_dir/vdl_log`` itself (it would hide PaddleX's curves) but into its sub-directory
``save_dir/vdl_log/explain``: ``visualdl --logdir save_dir/vdl_log`` shows PaddleX's loss and
accuracy (run ``.``) and the explanations (run ``explain``) in one board. ``logdir=`` names another
directory. With ``use_vdl=False`` the hook still logs to ``save_dir/vdl_log/explain`` unless
``logdir`` is given, so explanations are never silently lost.

Multi-card (``paddle.distributed.launch``): PaddleX calls ``save_model`` on rank 0 only, so the
checkpoint work runs on rank 0 alone, in its worker process (started without the launcher's
environment: it is not a rank), and the other ranks do not wait for it; the session checks the
rank again before writing anything. Ranks other than 0 train with ``use_vdl=False`` (see
:func:`~paddlex_interpret.runtime.distributed.quiet_other_ranks`). With ``background=False`` the other ranks wait for rank 0 at the
next collective.

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
import pickle
import re
import time

from ..api.datasets import resolve_dataset
from ..runtime.distributed import quiet_other_ranks
from ..runtime.modes import get_rank
from .report import WEIGHTS_FILENAME, CheckpointContext
from .session import ExplainSession

__all__ = ["ExplainHook", "EXPLAIN_SUBDIR"]

logger = logging.getLogger("paddlex_interpret")

#: Sub-directory of ``save_dir/vdl_log`` the hook logs to by default.
EXPLAIN_SUBDIR = "explain"

_EPOCH_DIR = re.compile(r"^epoch_(\d+)$")


class ExplainHook:
    """Explain probe images at every checkpoint of ``model.train(...)`` and log to VisualDL.

    Args:
        probes: image paths or arrays, shown to the model through its test transforms.
        logdir: VisualDL directory; default ``<save_dir>/vdl_log/explain`` of each ``train`` call.
        weights_builder: a :class:`~paddlex_interpret.training.builders.WeightsBuilder` or a
            function ``f(context) -> GlobalWeights`` replacing the default builder on the
            ``eval_dataset`` (e.g. a cached file); it must be picklable to run in the worker.
        background: explain in a worker process from the checkpoint files (default), or in the
            training process (False).
        worker_threads: CPU threads of the worker (default all cores but one).
        worker_device: the Paddle device of the worker process (default ``'cpu'``: on a GPU
            the worker would open a second context on the card training uses, taking its
            memory and time; give ``'gpu:1'`` to explain on another card).
        **options: ``probe_labels``, ``probe_names`` and the
            :class:`~paddlex_interpret.training.options.ExplainOptions` (``num_samples=300``,
            ``seed``, ``freq``, ``normlime``, ``max_images``, ``metrics``, ...).

    Use ``hook.attach(model)`` / ``hook.detach()``, or ``with ExplainHook(...).attach(model):``.
    ``hook.session.history`` holds a
    :class:`~paddlex_interpret.training.report.CheckpointReport` per explained checkpoint.
    """

    def __init__(self, probes, logdir=None, weights_builder=None, background=True,
                 worker_threads=None, worker_device="cpu", **options):
        self.session = ExplainSession(probes, weights_builder=weights_builder, **options)
        self.logdir = logdir
        self.weights_builder = weights_builder
        self.background = bool(background)
        self.worker_threads = worker_threads
        self.worker_device = worker_device
        self._options = dict(options)
        self.model = None
        self._saved = {}
        self._run = None
        self._worker = None
        #: seconds ``model.train`` was held up by the hook in the last run (dispatching a
        #: checkpoint, waiting for the worker's previous one, and the final join)
        self.blocked_seconds = 0.0
        #: peak resident memory of the worker process in the last run (MiB), when it ran
        self.worker_peak_rss_mib = None

    # ------------------------------------------------------------------ attach / detach
    def attach(self, model):
        """Wrap ``model.train`` and ``model.save_model`` of this instance; returns ``self``."""
        if self.model is not None:
            raise RuntimeError("this ExplainHook is already attached to a model; detach() first")
        if getattr(model, "model_type", None) != "classifier" or not hasattr(model, "net"):
            from ..errors import UnsupportedModelError

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
        if self._worker is not None:
            self._worker.terminate()
            self._worker = None
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
        self.blocked_seconds = 0.0
        self.worker_peak_rss_mib = None
        if self.background and get_rank() == 0:  # PaddleX saves checkpoints on rank 0 only
            self.session.close()  # the worker writes the logs of this run
            self.session.sink.log_files[os.path.abspath(logdir)] = \
                "vdlrecords.%010d.log" % time.time()
            self._worker = self._start_worker()
        args, kwargs = quiet_other_ranks(params, args, kwargs)
        finished = False
        try:
            result = original_train(*args, **kwargs)
            finished = True
            return result
        finally:
            self._finish_worker(wait=finished)
            self._run = None
            self.session.flush()

    # ------------------------------------------------------------------ the worker process
    def _start_worker(self):
        """A :class:`~paddlex_interpret.worker.CheckpointWorker` for this run, or None (then
        checkpoints are explained in the training process) when it cannot run here."""
        from .worker import CheckpointWorker, WorkerError, background_supported

        if not background_supported():
            logger.info("explanations: no worker process on this system; explaining in the "
                        "training process")
            return None
        builder = self.weights_builder
        try:
            pickle.dumps((self.session.probes, self._options, builder))
        except Exception as exc:
            logger.info("explanations: the probes, options or weights_builder cannot be sent to "
                        "a worker process (%s); explaining in the training process", exc)
            return None
        try:
            return CheckpointWorker(self.session.probes, self._options, builder,
                                    num_threads=self.worker_threads, device=self.worker_device)
        except WorkerError as exc:
            logger.warning("explanations: %s; explaining in the training process", exc)
            return None

    def _collect(self):
        """Wait for the worker's pending checkpoints and take in their reports."""
        worker = self._worker
        session = self.session
        while worker is not None and worker.pending:
            reply = worker.result()
            if reply.get("log_file") and self._run is not None:
                session.sink.log_files[os.path.dirname(reply["log_file"])] = \
                    os.path.basename(reply["log_file"])
            if reply.get("peak_rss_mib"):
                self.worker_peak_rss_mib = max(self.worker_peak_rss_mib or 0.0,
                                               float(reply["peak_rss_mib"]))
            if reply.get("error"):
                logger.error("explanations (worker): %s", reply["error"])
            report = reply.get("report")
            if report is not None:
                for error in report.errors:  # already in VisualDL; into this process's log too
                    logger.error("explanations (worker): %s", error)
                for old in session.history:
                    old.images, old.explanations = {}, {}
                session.history.append(report)

    def _worker_failed(self, exc, epoch, logdir):
        """The worker died: say so (log and VisualDL text) and explain in-process from now on."""
        if self._worker is not None:
            self._worker.terminate()
        self._worker = None
        try:
            raise exc
        except Exception as err:  # so that the traceback is logged with it
            self.session.log_error(None, CheckpointContext(epoch=epoch, classifier=None,
                                                           logdir=logdir), "worker", err)
        logger.error("explanations: the remaining checkpoints are explained in the training "
                     "process")

    def _finish_worker(self, wait=True):
        worker = self._worker
        if worker is None:
            return
        t0 = time.perf_counter()
        from .worker import WorkerError

        try:
            if wait:
                self._collect()
        except WorkerError as exc:
            run = self._run or {}
            self._worker_failed(exc, 0, run.get("logdir"))
        finally:
            if self._worker is not None:
                state = self._worker.close() if wait else self._worker.terminate()
                if state:
                    self.session.codebook = state.get("codebook") or self.session.codebook
                    self.session.global_weights = state.get("global_weights")
            self._worker = None
            self.blocked_seconds += time.perf_counter() - t0

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
        num_epochs = run.get("num_epochs")
        is_last = num_epochs is not None and epoch >= int(num_epochs)
        if self._worker is not None:
            self._dispatch(epoch, save_dir, is_last, run)
            return
        self._explain_here(epoch, save_dir, is_last, run)

    def _dispatch(self, epoch, save_dir, is_last, run):
        """Hand the checkpoint directory to the worker (after its previous checkpoint is done,
        so that it never falls more than one checkpoint behind)."""
        from .worker import WorkerError

        session = self.session
        t0 = time.perf_counter()
        try:
            if get_rank() != 0 or not session.should_run(is_last):
                return
            try:
                self._collect()
                dataset = run["eval_dataset"]
                items, labels, _ = (resolve_dataset(dataset) if dataset is not None
                                    else (None, None, None))
                model = self.model
                self._worker.submit({
                    "epoch": epoch, "checkpoint_dir": save_dir, "is_last": is_last,
                    "logdir": os.path.abspath(run["logdir"]), "items": items, "labels": labels,
                    "label_names": list(model.labels) if getattr(model, "labels", None) else None,
                    "log_files": dict(session.sink.log_files)})
            except WorkerError as exc:
                self._worker_failed(exc, epoch, run["logdir"])
                self._explain_here(epoch, save_dir, is_last, run, counted=True)
        finally:
            spent = time.perf_counter() - t0
            self.blocked_seconds += spent
            session.schedule.add(spent)

    def _explain_here(self, epoch, save_dir, is_last, run, counted=False):
        """Explain the checkpoint in the training process, from the live model."""
        from ..adapters.paddlex import PaddleXClassifier

        model = self.model
        try:
            # one predictor only: every extra oneDNN predictor in the training process is one
            # more in the process training runs in (BENCHMARKS.md, "Why the hook explains in a
            # worker process")
            classifier = PaddleXClassifier(model, parallel=False)
        except Exception as exc:
            self.session.log_error(None, CheckpointContext(epoch=epoch, classifier=None,
                                                           logdir=run["logdir"]),
                                   "classifier", exc)
            return
        context = CheckpointContext(
            epoch=epoch, classifier=classifier, layer=model.net, checkpoint_dir=save_dir,
            dataset=run["eval_dataset"], logdir=run["logdir"], is_last=is_last,
            label_names=classifier.label_names)
        if counted:  # the frequency was checked already
            try:
                self.session.explain_checkpoint(context)
            except Exception as exc:
                self.session.log_error(None, context, "checkpoint", exc)
        else:
            t0 = time.perf_counter()
            self.session.on_checkpoint(context)
            self.blocked_seconds += time.perf_counter() - t0

    # ------------------------------------------------------------------ conveniences
    @property
    def worker_pid(self):
        """The pid of the worker process explaining this run's checkpoints, or None."""
        return self._worker.pid if self._worker is not None else None

    @property
    def history(self):
        return self.session.history

    @staticmethod
    def weights_file(checkpoint_dir):
        """Path of the NormLIME weights file the hook writes into ``checkpoint_dir``."""
        return os.path.join(os.fspath(checkpoint_dir), WEIGHTS_FILENAME)
