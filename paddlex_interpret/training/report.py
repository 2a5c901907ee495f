"""What an integration hands the session at a checkpoint, and what the session hands back; the
same across the hook's process boundary: the :class:`CheckpointJob` the hook sends its worker
process and the :class:`CheckpointResult` it answers with.

Example::

    from paddlex_interpret.training.report import CheckpointJob
    job = CheckpointJob(epoch=3, checkpoint_dir="output/epoch_3", dataset=eval_dataset)
    ctx = job.context(PaddleXClassifier(model), model.net)     # a CheckpointContext
"""
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

__all__ = ["CheckpointContext", "CheckpointJob", "CheckpointReport", "CheckpointResult",
           "WEIGHTS_FILENAME"]

#: File name of the NormLIME weights written into each checkpoint directory.
WEIGHTS_FILENAME = "normlime_weights.npz"


@dataclass
class CheckpointContext:
    """What an integration knows at a checkpoint.

    Attributes:
        epoch: the VisualDL step (completed epochs, 1-based).
        classifier: a :class:`~paddlex_interpret.core.classifier.Classifier` of the model's
            current weights (e.g. ``PaddleXClassifier``).
        layer: the ``paddle.nn.Layer`` whose mode and RNG state are saved and restored.
        checkpoint_dir: where the NormLIME weights file goes (None: not written).
        weights_path: explicit path for the weights file (overrides ``checkpoint_dir``).
        dataset: the images NormLIME learns from (anything
            :func:`~paddlex_interpret.api.datasets.resolve_dataset` reads; None: no NormLIME).
        logdir: VisualDL directory for this run (None: the session's).
        is_last: the final checkpoint of the run (always explained, whatever ``freq``).
        label_names: class names.
        shared_weights: the ranks of a job built this checkpoint's NormLIME weights together:
            ``global_weights`` holds them, or ``shared_error`` says why that build failed; the
            session saves and uses them instead of building.
        global_weights, shared_error: see ``shared_weights``.
    """

    epoch: int
    classifier: Any
    layer: Any = None
    checkpoint_dir: Optional[str] = None
    weights_path: Optional[str] = None
    dataset: Any = None
    logdir: Optional[str] = None
    is_last: bool = False
    label_names: Optional[List[str]] = None
    shared_weights: bool = False
    global_weights: Any = None
    shared_error: Optional[str] = None

    def weights_file(self):
        """Where this checkpoint's NormLIME weights go, or None."""
        import os

        if self.weights_path:
            return self.weights_path
        if self.checkpoint_dir:
            return os.path.join(self.checkpoint_dir, WEIGHTS_FILENAME)
        return None


@dataclass
class CheckpointJob:
    """A checkpoint to explain, everything but its model: what an integration knows at a
    checkpoint, and what the hook sends its worker process (picklable: a dataset sent there is a
    list of items, or of ``(item, label)`` pairs). :meth:`context` makes the session's
    :class:`CheckpointContext` of it with the model's classifier: the one way the hook, its
    worker, the callback, the ranks and the watcher make one.

    Attributes: ``epoch`` to ``shared_error`` as in :class:`CheckpointContext`, and
    ``record_file``: the name of the VisualDL record file in ``logdir`` to append to (the one
    file the training process and the worker write a run into; None: a new one).
    """

    epoch: int
    checkpoint_dir: Optional[str] = None
    weights_path: Optional[str] = None
    dataset: Any = None
    logdir: Optional[str] = None
    is_last: bool = False
    label_names: Optional[List[str]] = None
    shared_weights: bool = False
    global_weights: Any = None
    shared_error: Optional[str] = None
    record_file: Optional[str] = None

    def context(self, classifier=None, layer=None) -> CheckpointContext:
        """The session's context of this checkpoint: ``classifier`` of its weights (None only
        to report an error) and the ``layer`` whose training state is kept; the class names are
        the job's, else the classifier's."""
        names = self.label_names
        if names is None and classifier is not None:
            names = classifier.label_names
        return CheckpointContext(
            epoch=int(self.epoch), classifier=classifier, layer=layer,
            checkpoint_dir=self.checkpoint_dir, weights_path=self.weights_path,
            dataset=self.dataset, logdir=self.logdir, is_last=bool(self.is_last),
            label_names=None if names is None else list(names),
            shared_weights=bool(self.shared_weights), global_weights=self.global_weights,
            shared_error=self.shared_error)


@dataclass
class CheckpointReport:
    """What one checkpoint produced (also kept in ``ExplainSession.history``; only the latest
    report keeps its ``images`` and ``explanations``, older ones keep numbers and text).
    ``backend`` is the classifier's ``backend_info`` after the checkpoint (which backend ran, and
    for Paddle Inference whether the program was traced or only new weights were written, with
    the seconds of that export and of the predictor build). ``pid`` is the process that explained
    it (the hook's worker process, or the training process). ``alarms``: the shortcut alarms
    raised at this checkpoint (:class:`~paddlex_interpret.core.shortcut.Alarm`: class, region,
    first and last checkpoint, evidence); ``alarm_events``: ``(kind, class name, message)`` of
    the alarms raised or cleared here (``'raised'`` / ``'cleared'``: one log line each);
    ``alarm_state``: the alarm's memory after it
    (:meth:`~paddlex_interpret.core.shortcut.ShortcutMemory.state`), so that the training
    process goes on from it if the worker process dies."""

    epoch: int
    scalars: Dict[str, float] = field(default_factory=dict)
    images: Dict[str, np.ndarray] = field(default_factory=dict)
    texts: Dict[str, str] = field(default_factory=dict)
    errors: List[str] = field(default_factory=list)
    explanations: Dict[str, Any] = field(default_factory=dict)
    weights_file: Optional[str] = None
    seconds: float = 0.0
    timings: Dict[str, float] = field(default_factory=dict)
    backend: Dict[str, Any] = field(default_factory=dict)
    pid: int = 0
    alarms: List[Any] = field(default_factory=list)
    alarm_events: List[Tuple[str, str, str]] = field(default_factory=list)
    alarm_state: Dict[str, Any] = field(default_factory=dict)


@dataclass
class CheckpointResult:
    """The worker process's answer to a :class:`CheckpointJob`.

    Attributes:
        epoch: the job's.
        report: the :class:`CheckpointReport`, or None when the checkpoint could not be
            explained (``error`` says why).
        record_file: the path of the VisualDL record file the worker wrote into.
        error: what went wrong, or None.
        peak_rss_mib: the worker's peak resident memory (MiB) so far.
        device: where the worker explained, read inside it (``{"device", "gpus",
            "CUDA_VISIBLE_DEVICES"}``).
    """

    epoch: int
    report: Optional[CheckpointReport] = None
    record_file: Optional[str] = None
    error: Optional[str] = None
    peak_rss_mib: Optional[float] = None
    device: Optional[Dict[str, Any]] = None
