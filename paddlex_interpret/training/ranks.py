"""NormLIME weights at a checkpoint built by every rank of a multi-card run.

PaddleX's ``train_loop`` evaluates on every rank at a checkpoint, then saves it on rank 0 only.
:class:`SharedNormLime` runs right after that evaluation (the hook wraps ``evaluate``; the
``paddle.Model.fit`` callback runs on every rank and calls it at its checkpoints): rank 0
decides whether the checkpoint is explained (the session's schedule) and whether NormLIME is due
(``normlime_freq``), and tells the others; then every rank builds its share of the weights (a
:class:`~paddlex_interpret.training.builders.NormLimeBuilder` over the job's collective: its
images' segmentation, concepts and forward passes, or their LIMEs) on Paddle Inference on its own
device, with its share of the CPU threads, and with rank 0's full state (:func:`rank0_state`:
PaddleX has no SyncBatchNorm, so the ranks' BatchNorm statistics differ while their parameters
agree; the checkpoint is rank 0's model, so every share is built on it). Rank 0 keeps the weights for the save that follows,
where its worker (or rank 0 itself) saves them and explains the probes with them. A failure on
any rank is raised on every rank at the same collective and reported once, by the process that
explains the checkpoint; training goes on.

Example (what :class:`~paddlex_interpret.training.hook.ExplainHook` does)::

    shared = SharedNormLime(session, job_collective())
    shared.at_evaluation(model, epoch=2, is_last=False, dataset=eval_dataset)   # every rank
    decided, fields = shared.take(2)                                            # rank 0
"""
import contextlib
import logging
import time
from typing import Optional

from ..adapters.collective import PaddleCollective
from ..core.sharding import is_local
from ..runtime.distributed import cpu_share, world_size
from ..runtime.modes import preserve_training_state
from .builders import NormLimeBuilder
from .report import CheckpointJob

__all__ = ["SharedNormLime", "rank0_state"]

logger = logging.getLogger("paddlex_interpret")


@contextlib.contextmanager
def rank0_state(layer, collective):
    """Inside the block, ``layer`` on every rank holds rank 0's full state (parameters and
    buffers, broadcast from rank 0): the model rank 0 saves at this checkpoint. Each rank's own
    state is back after the block, so its training is untouched. In one process: nothing."""
    if layer is None or is_local(collective):
        yield
        return
    state = layer.state_dict()
    rank0 = collective.rank == 0
    theirs = collective.broadcast({k: v.numpy() for k, v in state.items()} if rank0 else None)
    if rank0:
        yield
        return
    own = {k: v.numpy().copy() for k, v in state.items()}
    layer.set_state_dict(theirs)
    try:
        yield
    finally:
        layer.set_state_dict(own)


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

    @classmethod
    def for_run(cls, session, wanted: bool = True) -> Optional["SharedNormLime"]:
        """The shared builds of a training run that starts now, or None: not ``wanted`` (the
        integration's ``shared_normlime`` and no weights builder of the user's), no NormLIME, or
        a single process."""
        if not wanted or not session.options.normlime or world_size() < 2:
            return None
        return cls(session)

    def at_evaluation(self, model, epoch, is_last, dataset):
        """On every rank, after a PaddleX model's evaluation at a checkpoint."""
        from ..adapters.paddlex import PaddleXClassifier

        self.at_checkpoint(lambda: PaddleXClassifier(model, backend="inference",
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
        try:
            with rank0_state(layer, self.collective):
                return self._build_on(make_classifier, layer, epoch, dataset)
        except Exception as exc:  # every rank gets here together; the explaining process says it
            logger.debug("NormLIME on rank %d failed at epoch %d", self.collective.rank, epoch,
                         exc_info=True)
            return {"shared_error": "%s: %s" % (type(exc).__name__, exc)}

    def _build_on(self, make_classifier, layer, epoch, dataset):
        """This rank's share, built on the layer as it is now (rank 0's state)."""
        from ..core.sharding import checked

        classifier = checked(self.collective, make_classifier)
        context = CheckpointJob(epoch=epoch, dataset=dataset).context(classifier, layer)
        try:
            with preserve_training_state(layer), classifier.hold_weights():
                return {"global_weights": self.builder(context)}
        finally:
            from ..runtime.cache import release_engines

            release_engines(layer)

    def take(self, epoch):
        """Rank 0, at the checkpoint's save: ``(explained, context fields)``; ``(None, {})``
        when this checkpoint was not seen at an evaluation (the hook then decides alone)."""
        decided = self.decided.pop(epoch, None)
        if decided is None:
            return None, {}
        # not due: no build here either (the session keeps the previous weights)
        return decided, dict(self.built.pop(epoch, {}), shared_weights=True)
