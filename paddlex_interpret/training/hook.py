"""Explanations at every checkpoint of a PaddleX 2.x classifier, without changing ``model.train``.

PaddleX 2.1's ``train_loop`` has no callbacks; at every ``save_interval_epochs`` and at the last
epoch it evaluates, saves ``best_model`` and then calls ``self.save_model(save_dir/epoch_N)`` (on
rank 0 only). :class:`ExplainHook` wraps methods of one model *instance*:

* ``train``: to learn ``num_epochs``, ``eval_dataset``, ``save_dir`` and ``use_vdl`` of the run;
* ``evaluate``: in multi-card runs only (below);
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

Multi-card (``paddle.distributed.launch``): the hook also wraps ``evaluate``, which PaddleX calls
on every rank at a checkpoint: there every rank builds its share of the NormLIME weights
(:mod:`~paddlex_interpret.training.ranks`). PaddleX then calls ``save_model`` on rank 0 only, and
rank 0's worker process (started without the launcher's environment: it is not a rank) explains
the probes with those weights while every rank trains on; the session checks the rank again
before writing anything. Ranks other than 0 train with ``use_vdl=False``
(:func:`~paddlex_interpret.runtime.distributed.quiet_other_ranks`).

Example::

    import paddlex_interpret            # before paddlex
    import paddlex as pdx
    from paddlex_interpret.hooks import ExplainHook

    model = pdx.cls.MobileNetV3_small(num_classes=3)
    with ExplainHook(["data/val/0.png", "data/val/7.png"]).attach(model):
        model.train(num_epochs=10, train_dataset=train, eval_dataset=val,
                    save_interval_epochs=2, save_dir="output", use_vdl=True)
    # visualdl --logdir output/vdl_log
"""
import functools
import inspect
import logging
import os
import re
import time

from ..runtime.devices import device_or_cpu
from ..runtime.distributed import quiet_other_ranks
from ..runtime.modes import get_rank
from .hook_worker import HookWorker
from .ranks import SharedNormLime
from .report import WEIGHTS_FILENAME, CheckpointJob
from .session import ExplainSession

__all__ = ["ExplainHook", "EXPLAIN_SUBDIR"]

logger = logging.getLogger("paddlex_interpret")

#: Sub-directory of ``save_dir/vdl_log`` the hook logs to by default.
EXPLAIN_SUBDIR = "explain"

_EPOCH_DIR = re.compile(r"^epoch_(\d+)$")
_WRAPPED = ("train", "save_model", "evaluate")


class ExplainHook:
    """Explain probe images at every checkpoint of ``model.train(...)`` and log to VisualDL.

    Args:
        probes: image paths or arrays, shown to the model through its test transforms; None
            or ``[]``: none (NormLIME, the class atlas and the shortcut alarm still run).
        logdir: VisualDL directory; default ``<save_dir>/vdl_log/explain`` of each ``train`` call.
        weights_builder: a :class:`~paddlex_interpret.training.builders.WeightsBuilder` or a
            function ``f(context) -> GlobalWeights`` replacing the default builder on the
            ``eval_dataset`` (e.g. a cached file); it must be picklable to run in the worker.
        background: explain in a worker process from the checkpoint files (default), or in the
            training process (False).
        worker_threads: CPU threads of the worker (default all cores but one).
        worker_device: the Paddle device of the worker process (default ``'cpu'``: on a GPU
            the worker would open a second context on the card training uses, taking its
            memory and time; give ``'gpu:1'`` to explain on another card). The worker sees
            that card only, and none on the CPU; a GPU that is not there is logged as an
            error once and the worker explains on the CPU.
        shared_normlime: in a multi-card run (without ``weights_builder``), every rank builds
            its share of a checkpoint's NormLIME weights
            (:class:`~paddlex_interpret.training.ranks.SharedNormLime`); False: rank 0 alone.
        **options: ``probe_labels``, ``probe_names`` and the
            :class:`~paddlex_interpret.training.options.ExplainOptions` (``num_samples='auto'``,
            ``seed``, ``freq``, ``normlime``, ``max_images``, ``metrics``, ...).

    Use ``hook.attach(model)`` / ``hook.detach()``, or ``with ExplainHook(...).attach(model):``.
    ``hook.session.history`` holds a
    :class:`~paddlex_interpret.training.report.CheckpointReport` per explained checkpoint.
    """

    def __init__(self, probes=None, logdir=None, weights_builder=None, background=True,
                 worker_threads=None, worker_device="cpu", shared_normlime=True, **options):
        self.session = ExplainSession(probes, weights_builder=weights_builder, **options)
        self.logdir = logdir
        self.weights_builder = weights_builder
        self.background = bool(background)
        self.worker_threads = worker_threads
        self.worker_device = worker_device
        self.shared_normlime = bool(shared_normlime)
        self._shared = None
        self._options = dict(options)
        self.model = None
        self._saved = {}
        self._run = None
        self._worker = None  # the HookWorker of the current run, or None
        self._worker_device_checked = None
        #: seconds ``model.train`` was held up by the hook in the last run (dispatching a
        #: checkpoint, waiting for the worker's previous one, and the final join)
        self.blocked_seconds = 0.0
        #: peak resident memory of the worker process in the last run (MiB), when it ran
        self.worker_peak_rss_mib = None
        #: where the worker explained, read inside it (``{"device", "gpus",
        #: "CUDA_VISIBLE_DEVICES"}``), after its first report
        self.worker_device_info = None

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
        for name in _WRAPPED:
            if getattr(getattr(model, name, None), "_explain_hook", None) is not None:
                raise RuntimeError("%s.%s is already wrapped by another ExplainHook"
                                   % (type(model).__name__, name))
        self._saved = {name: (name in vars(model), vars(model).get(name)) for name in _WRAPPED}
        original_train = model.train
        original_save = model.save_model
        original_evaluate = model.evaluate
        hook = self

        @functools.wraps(original_train)
        def train(*args, **kwargs):
            return hook._train(original_train, *args, **kwargs)

        @functools.wraps(original_save)
        def save_model(*args, **kwargs):
            return hook._save_model(original_save, *args, **kwargs)

        @functools.wraps(original_evaluate)
        def evaluate(*args, **kwargs):
            result = original_evaluate(*args, **kwargs)
            hook._after_evaluate()
            return result

        for fn in (train, save_model, evaluate):
            fn._explain_hook = self
        model.train, model.save_model, model.evaluate = train, save_model, evaluate
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
            self._worker = HookWorker.start(self.session, self._options, self.weights_builder,
                                            self.worker_threads, self._checked_worker_device())
        args, kwargs = quiet_other_ranks(params, args, kwargs)
        self._shared = SharedNormLime.for_run(
            self.session, self.shared_normlime and self.weights_builder is None)
        finished = False
        try:
            result = original_train(*args, **kwargs)
            finished = True
            return result
        finally:
            self._finish_worker(wait=finished)
            self._run = self._shared = None
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
        num_epochs = run.get("num_epochs")
        is_last = num_epochs is not None and epoch >= int(num_epochs)
        decided, fields = self._shared.take(epoch) if self._shared else (None, {})
        labels = getattr(self.model, "labels", None)
        job = CheckpointJob(epoch=epoch, checkpoint_dir=save_dir, dataset=run["eval_dataset"],
                            logdir=os.path.abspath(run["logdir"]), is_last=is_last,
                            label_names=list(labels) if labels else None, **fields)
        if self._worker is not None:
            self._dispatch(job, decided)
            return
        self._explain_here(job, decided)

    # ------------------------------------------------------------------ every rank (multi-card)
    def _after_evaluate(self):
        """Every rank, after PaddleX's evaluation at a checkpoint: the shared NormLIME build."""
        shared, run = self._shared, self._run
        if shared is None or run is None:
            return
        t0 = time.perf_counter()
        try:
            epoch = int(getattr(self.model, "completed_epochs", 0))
            num_epochs = run.get("num_epochs")
            shared.at_evaluation(self.model, epoch,
                                 num_epochs is not None and epoch >= int(num_epochs),
                                 run["eval_dataset"])
        except Exception:  # never raise into training
            logger.exception("explanations: the ranks' NormLIME build failed")
        finally:
            self._took(time.perf_counter() - t0)

    def _explain_here(self, job, decided=None):
        """Explain the checkpoint in the training process, from the live model (``decided``:
        whether it is explained was decided already, by the schedule)."""
        from ..adapters.paddlex import PaddleXClassifier

        model = self.model
        try:
            classifier = PaddleXClassifier(model)
        except Exception as exc:
            self.session.log_error(None, job.context(), "classifier", exc)
            return
        context = job.context(classifier, model.net)
        if decided is not None:
            if not decided:
                return
            try:
                self.session.explain_checkpoint(context)
            except Exception as exc:
                self.session.log_error(None, context, "checkpoint", exc)
        else:
            t0 = time.perf_counter()
            self.session.on_checkpoint(context)
            self.blocked_seconds += time.perf_counter() - t0

    # ------------------------------------------------------------------ the worker process
    def _checked_worker_device(self):
        """``worker_device``, checked once per hook: a GPU that is not there is a logged error
        (said once, not at every ``train``) and the worker runs on the CPU."""
        if self._worker_device_checked is None:
            self._worker_device_checked = device_or_cpu(self.worker_device,
                                                        "explanations: worker_device")
        return self._worker_device_checked

    def _dispatch(self, job, decided=None):
        """Hand the checkpoint to the worker; when it died, explain here."""
        from .worker import WorkerError

        t0 = time.perf_counter()
        try:
            if get_rank() != 0 or not (self.session.should_run(job.is_last) if decided is None
                                       else decided):
                return
            try:
                self._worker.submit(job)
            except WorkerError as exc:
                self._worker_failed(exc, job)
                self._explain_here(job, decided=True)
        finally:
            self._took(time.perf_counter() - t0)

    def _took(self, seconds):
        """Count ``seconds`` that training was held up (the schedule's time budget too)."""
        self.blocked_seconds += seconds
        self.session.schedule.add(seconds)

    def _worker_failed(self, exc, job):
        """The worker died (at ``job``): it says so, and checkpoints are explained here from
        now on."""
        self._worker.failed(exc, job)
        self._let_worker_go()

    def _finish_worker(self, wait=True):
        """The end of ``train``: the worker's last reports (``wait``), then it ends."""
        if self._worker is None:
            return
        t0 = time.perf_counter()
        try:
            self._worker.finish(wait, (self._run or {}).get("logdir"))
        finally:
            self._let_worker_go()
            self.blocked_seconds += time.perf_counter() - t0

    def _let_worker_go(self):
        """Keep what the worker measured of itself; the hook has no worker from now on."""
        worker, self._worker = self._worker, None
        self.worker_peak_rss_mib = worker.peak_rss_mib or self.worker_peak_rss_mib
        self.worker_device_info = worker.device_info or self.worker_device_info

    @property
    def worker_pid(self):
        """The pid of the worker process explaining this run's checkpoints, or None."""
        return self._worker.pid if self._worker is not None else None

    # ------------------------------------------------------------------ conveniences
    @property
    def history(self):
        return self.session.history

    @property
    def alarms(self):
        """Every class the shortcut alarm was raised for in the last run, by class: an
        :class:`~paddlex_interpret.core.shortcut.Alarm` (class, region, the first and the last
        checkpoint that confirmed it and every one between, the latest evidence, and ``active``:
        still raised at the last explained checkpoint)."""
        return self.session.alarms()

    @staticmethod
    def weights_file(checkpoint_dir):
        """Path of the NormLIME weights file the hook writes into ``checkpoint_dir``."""
        return os.path.join(os.fspath(checkpoint_dir), WEIGHTS_FILENAME)
