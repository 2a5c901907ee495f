"""What an integration hands the session at a checkpoint, and what the session hands back.

Example::

    from paddlex_interpret.training.report import CheckpointContext
    ctx = CheckpointContext(epoch=3, classifier=PaddleXClassifier(model), layer=model.net,
                            checkpoint_dir="output/epoch_3", dataset=eval_dataset)
"""
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

__all__ = ["CheckpointContext", "CheckpointReport", "WEIGHTS_FILENAME"]

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
