"""The hook's worker process for one training run, as the hook sees it: started with the run,
handed checkpoints, its reports taken into the hook's session, closed at the end.

:class:`HookWorker` is an object the :class:`~paddlex_interpret.training.hook.ExplainHook` owns
(one per ``train`` call); everything it needs comes through its constructor (the session whose
history and VisualDL sink its reports go to, and the child process), and everything it learns is
on its attributes. Whether a checkpoint is explained, and explaining it in the training process
when the worker cannot run or dies, stay with the hook. The child process itself is
:class:`~paddlex_interpret.training.worker.CheckpointWorker`.

Example (what ``ExplainHook._train`` does)::

    worker = HookWorker.start(session, options, weights_builder, num_threads, device)
    # None: checkpoints are explained in the training process
    worker.submit(job)          # after the previous checkpoint's report is in
    worker.finish(wait=True, logdir=logdir)   # the last reports, then the worker ends
"""
import dataclasses
import logging
import os
import pickle
from typing import Any, Dict, Optional

from ..api.datasets import resolve_dataset
from .report import CheckpointJob

__all__ = ["HookWorker"]

logger = logging.getLogger("paddlex_interpret")


class HookWorker:
    """The worker process of one run (see the module docstring).

    Args:
        session: the hook's :class:`~paddlex_interpret.training.session.ExplainSession`: the
            worker's reports are appended to its ``history``, the record file the worker writes
            goes into its sink's ``log_files``, and its final codebook and weights into it.
        process: the running :class:`~paddlex_interpret.training.worker.CheckpointWorker`.
    """

    def __init__(self, session, process) -> None:
        self.session = session
        self.process = process
        #: peak resident memory of the worker process (MiB), after its first report
        self.peak_rss_mib: Optional[float] = None
        #: where the worker explains, read inside it, after its first report
        self.device_info: Optional[Dict[str, Any]] = None

    @classmethod
    def start(cls, session, options: Dict[str, Any], weights_builder, num_threads: Optional[int],
              device: str) -> Optional["HookWorker"]:
        """A worker for this run, or None (then checkpoints are explained in the training
        process, and the reason is logged) when it cannot run here."""
        from .worker import CheckpointWorker, WorkerError, background_supported

        if not background_supported():
            logger.info("explanations: no worker process on this system; explaining in the "
                        "training process")
            return None
        try:
            pickle.dumps((session.probes, options, weights_builder))
        except Exception as exc:
            logger.info("explanations: the probes, options or weights_builder cannot be sent to "
                        "a worker process (%s); explaining in the training process", exc)
            return None
        try:
            return cls(session, CheckpointWorker(session.probes, options, weights_builder,
                                                 num_threads=num_threads, device=device))
        except WorkerError as exc:
            logger.warning("explanations: %s; explaining in the training process", exc)
            return None

    @property
    def pid(self) -> int:
        return self.process.pid

    def submit(self, job: CheckpointJob) -> None:
        """Hand the worker one :class:`~paddlex_interpret.training.report.CheckpointJob`, once
        its previous one is done (so that it never falls more than one checkpoint behind). Raises
        ``WorkerError`` when it died."""
        self.collect()
        self.process.submit(self.portable(job))

    def portable(self, job: CheckpointJob) -> CheckpointJob:
        """``job`` as the worker gets it: its dataset as items (with labels), and the record
        file the run's VisualDL log goes on in."""
        dataset = job.dataset
        if dataset is not None:
            items, labels, _ = resolve_dataset(dataset)
            dataset = list(zip(items, labels)) if labels else list(items)
        return dataclasses.replace(job, dataset=dataset,
                                   record_file=self.session.sink.log_files.get(job.logdir))

    def collect(self) -> None:
        """Wait for the pending checkpoints and take in their reports. Raises ``WorkerError``
        when the worker died."""
        session = self.session
        while self.process.pending:
            result = self.process.result()
            if result.record_file:
                session.sink.log_files[os.path.dirname(result.record_file)] = \
                    os.path.basename(result.record_file)
            if result.device:
                self.device_info = result.device
            if result.peak_rss_mib:
                self.peak_rss_mib = max(self.peak_rss_mib or 0.0, float(result.peak_rss_mib))
            if result.error:
                logger.error("explanations (worker): %s", result.error)
            report = result.report
            if report is not None:
                for error in report.errors:  # already in VisualDL; into this process's log too
                    logger.error("explanations (worker): %s", error)
                for kind, _, message in report.alarm_events:  # one line per event
                    (logger.warning if kind == "raised" else logger.info)("%s", message)
                for old in session.history:
                    old.images, old.explanations = {}, {}
                session.history.append(report)

    def failed(self, exc: BaseException, job: CheckpointJob) -> None:
        """The worker died (``exc``): it is stopped, the loss is said (log and VisualDL text at
        ``job``'s epoch), and the alarm's memory goes on from its last report in the session."""
        self.process.terminate()
        try:
            raise exc
        except Exception as err:  # so that the traceback is logged with it
            self.session.log_error(None, job.context(), "worker", err)
        logger.error("explanations: the remaining checkpoints are explained in the training "
                     "process")
        state = self.session.last_alarm_state()
        if state:
            self.session.atlas_stage.memory.restore(state)

    def finish(self, wait: bool = True, logdir: Optional[str] = None) -> None:
        """End the worker: with ``wait``, its last reports are taken in, it closes its VisualDL
        writer and its final state (the run's codebook and weights) goes into the session; else
        it is stopped at once. ``logdir``: where a loss is said (the run's log directory)."""
        from .worker import WorkerError

        if not wait:
            self.process.terminate()
            return
        try:
            self.collect()
        except WorkerError as exc:
            self.failed(exc, CheckpointJob(epoch=0, logdir=logdir))
            return
        state = self.process.close()
        if state:
            self.session.codebook = state.get("codebook") or self.session.codebook
            self.session.global_weights = state.get("global_weights")

    def terminate(self) -> None:
        """Stop the worker now (no goodbye)."""
        self.process.terminate()
