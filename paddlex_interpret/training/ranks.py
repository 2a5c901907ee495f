"""NormLIME weights at a checkpoint built by every rank of a multi-card run.

PaddleX's ``train_loop`` evaluates on every rank at a checkpoint, then saves it on rank 0 only.
:class:`SharedNormLime` runs right after that evaluation (the hook wraps ``evaluate``; the
``paddle.Model.fit`` callback runs on every rank and calls it at its checkpoints): rank 0
decides whether the checkpoint is explained (the session's schedule) and whether NormLIME is due
(``normlime_freq``), and tells the others; then every rank builds its share of the weights (a
:class:`~paddlex_interpret.training.builders.NormLimeBuilder` over the job's collective: its
images' segmentation, concepts and forward passes, or their LIMEs) on Paddle Inference on its own
device, with its share of the CPU threads. Rank 0 keeps the weights for the save that follows,
where its worker (or rank 0 itself) saves them and explains the probes with them. A failure on
any rank is raised on every rank at the same collective and reported once, by the process that
explains the checkpoint; training goes on.

Example (what :class:`~paddlex_interpret.training.hook.ExplainHook` does)::

    shared = SharedNormLime(session, job_collective())
    shared.at_evaluation(model, epoch=2, is_last=False, dataset=eval_dataset)   # every rank
    decided, fields = shared.take(2)                                            # rank 0
"""
import logging
import time

from ..adapters.collective import PaddleCollective
from ..runtime.distributed import cpu_share
from ..runtime.modes import preserve_training_state
from .builders import NormLimeBuilder
from .report import CheckpointContext

__all__ = ["SharedNormLime"]

logger = logging.getLogger("paddlex_interpret")


class SharedNormLime:
    """The shared NormLIME builds of one training run (see the module docstring).

    Args:
        session: rank 0's :class:`~paddlex_interpret.training.session.ExplainSession` (its
            options and schedule; on the other ranks only its options are read).
        collective: the job's :class:`~paddlex_interpret.core.sharding.Collective` (default
            :class:`~paddlex_interpret.adapters.collective.PaddleCollective`).
    """

    def __init__(self, session, collective=None):
        self.session = session
        self.collective = collective if collective is not None else PaddleCollective()
        self.builder = NormLimeBuilder(session.options, collective=self.collective)
        self.decided = {}  # epoch -> explained (rank 0)
        self.built = {}  # epoch -> context fields for the session (rank 0)
        self.explained = 0
        #: seconds rank 0 spent in the shared builds of this run
        self.seconds = 0.0

    def at_evaluation(self, model, epoch, is_last, dataset):
        """On every rank, after a PaddleX model's evaluation at a checkpoint."""
        from ..adapters.paddlex import PaddleXClassifier

        self.at_checkpoint(lambda: PaddleXClassifier(model, backend="inference", parallel=False,
                                                     num_threads=cpu_share()),
                           model.net, epoch, is_last, dataset)

    def at_checkpoint(self, make_classifier, layer, epoch, is_last, dataset):
        """On every rank at a checkpoint: decide together, build together (``make_classifier()``:
        this rank's classifier of the current weights, on Paddle Inference)."""
        o, rank0 = self.session.options, self.collective.rank == 0
        go = due = False
        if rank0:
            go = self.session.should_run(is_last)
            due = bool(go and o.normlime and self.explained % o.normlime_freq == 0)
            self.explained += int(go)
        go, due = self.collective.broadcast((go, due) if rank0 else None)
        if rank0:
            self.decided[epoch] = go
        if due:
            t0 = time.perf_counter()
            fields = self._build(make_classifier, layer, epoch, dataset)
            if rank0:
                self.built[epoch] = fields
                self.seconds += time.perf_counter() - t0

    def _build(self, make_classifier, layer, epoch, dataset):
        """This rank's share; ``{"global_weights"| "shared_error": ...}`` for the session."""
        from ..core.sharding import checked

        try:
            classifier = checked(self.collective, make_classifier)
            context = CheckpointContext(epoch=epoch, classifier=classifier, layer=layer,
                                        dataset=dataset, label_names=classifier.label_names)
            try:
                with preserve_training_state(layer), classifier.hold_weights():
                    return {"global_weights": self.builder(context)}
            finally:
                from ..runtime.cache import release_engines

                release_engines(layer)
        except Exception as exc:  # every rank gets here together; the explaining process says it
            logger.debug("NormLIME on rank %d failed at epoch %d", self.collective.rank, epoch,
                         exc_info=True)
            return {"shared_error": "%s: %s" % (type(exc).__name__, exc)}

    def take(self, epoch):
        """Rank 0, at the checkpoint's save: ``(explained, context fields)``; ``(None, {})``
        when this checkpoint was not seen at an evaluation (the hook then decides alone)."""
        decided = self.decided.pop(epoch, None)
        if decided is None:
            return None, {}
        # not due: no build here either (the session keeps the previous weights)
        return decided, dict(self.built.pop(epoch, {}), shared_weights=True)
