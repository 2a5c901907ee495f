"""The hook's side of its worker process: starting it with a run, handing it checkpoints,
taking in its reports, and explaining in the training process when it cannot run or dies.
:class:`WorkerSide` is the part of :class:`~paddlex_interpret.training.hook.ExplainHook` that does
it (the worker itself is :mod:`~paddlex_interpret.training.worker`).

Example (what ``ExplainHook._train`` does)::

    self._worker = self._start_worker()       # None: checkpoints are explained here
    ...
    self._finish_worker(wait=True)            # the last reports, then the worker ends
"""
import logging
import os
import pickle
import time

from ..api.datasets import resolve_dataset
from ..runtime.devices import device_or_cpu
from ..runtime.modes import get_rank
from .report import CheckpointContext

__all__ = ["WorkerSide"]

logger = logging.getLogger("paddlex_interpret")


class WorkerSide:
    """Worker handling for :class:`~paddlex_interpret.training.hook.ExplainHook` (which gives
    ``session``, ``model``, ``weights_builder``, ``worker_threads``, ``worker_device``,
    ``_options``, ``_worker``, ``_run``, ``blocked_seconds``, ``worker_peak_rss_mib``,
    ``worker_device_info`` and ``_explain_here``)."""

    _worker_device_checked = None

    def _checked_worker_device(self):
        """``worker_device``, checked once per hook: a GPU that is not there is a logged error
        (said once, not at every ``train``) and the worker runs on the CPU."""
        if self._worker_device_checked is None:
            self._worker_device_checked = device_or_cpu(self.worker_device,
                                                        "explanations: worker_device")
        return self._worker_device_checked

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
                                    num_threads=self.worker_threads,
                                    device=self._checked_worker_device())
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
            if reply.get("device"):
                self.worker_device_info = reply["device"]
            if reply.get("peak_rss_mib"):
                self.worker_peak_rss_mib = max(self.worker_peak_rss_mib or 0.0,
                                               float(reply["peak_rss_mib"]))
            if reply.get("error"):
                logger.error("explanations (worker): %s", reply["error"])
            report = reply.get("report")
            if report is not None:
                for error in report.errors:  # already in VisualDL; into this process's log too
                    logger.error("explanations (worker): %s", error)
                for kind, _, message in report.alarm_events:  # one line per event
                    (logger.warning if kind == "raised" else logger.info)("%s", message)
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
        states = [r.alarm_state for r in self.session.history if r.alarm_state]
        if states:  # the alarm's memory goes on from the worker's last report
            self.session.atlas_stage.memory.restore(states[-1])

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

    def _dispatch(self, epoch, save_dir, is_last, run, decided=None, fields=None):
        """Hand the checkpoint directory to the worker (after its previous checkpoint is done,
        so that it never falls more than one checkpoint behind)."""
        from .worker import WorkerError

        session = self.session
        t0 = time.perf_counter()
        try:
            if get_rank() != 0 or not (session.should_run(is_last) if decided is None
                                       else decided):
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
                    "log_files": dict(session.sink.log_files), **(fields or {})})
            except WorkerError as exc:
                self._worker_failed(exc, epoch, run["logdir"])
                self._explain_here(epoch, save_dir, is_last, run, decided=True, fields=fields)
        finally:
            spent = time.perf_counter() - t0
            self.blocked_seconds += spent
            session.schedule.add(spent)

    @property
    def worker_pid(self):
        """The pid of the worker process explaining this run's checkpoints, or None."""
        return self._worker.pid if self._worker is not None else None
