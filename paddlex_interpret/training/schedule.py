"""When a checkpoint is explained: every ``freq``-th one and the last, within an optional time
budget (a fraction of the training time).

Example::

    >>> from paddlex_interpret.training.schedule import Schedule
    >>> s = Schedule(freq=3)
    >>> [s.should_run() for _ in range(5)] + [s.should_run(is_last=True)]
    [True, False, False, True, False, True]
"""
import logging
import time

__all__ = ["Schedule"]

logger = logging.getLogger("paddlex_interpret")


class Schedule:
    """Counts checkpoints and the time spent on them since :meth:`start`.

    Args:
        freq: explain every ``freq``-th checkpoint (and the last).
        max_overhead: skip a checkpoint when the time explaining so far plus the last
            checkpoint's would exceed this fraction of the training time so far (None: no
            budget). The first and the last always run.
    """

    def __init__(self, freq=1, max_overhead=None):
        self.freq = int(freq)
        self.max_overhead = max_overhead
        self.start()

    def start(self):
        """A new training run starts now."""
        self.triggers = 0
        self.explained = 0
        self._run_start = time.perf_counter()
        self.spent = 0.0
        self.last = 0.0

    def add(self, seconds):
        """Count ``seconds`` that training was held up by the explanations."""
        self.spent += seconds
        if seconds > 0.01:
            self.last = seconds

    def should_run(self, is_last=False):
        """Count one checkpoint; True when this one is explained."""
        self.triggers += 1
        if is_last:
            return True
        if (self.triggers - 1) % self.freq != 0:
            return False
        if self.max_overhead is not None:
            training = time.perf_counter() - self._run_start - self.spent
            if self.spent + self.last > self.max_overhead * training:
                logger.info("explanations: checkpoint skipped to keep within max_overhead=%.2f "
                            "(%.1f s explaining vs %.1f s training so far)", self.max_overhead,
                            self.spent, training)
                return False
        return True

    def next_index(self):
        """The index of the checkpoint being explained now (0 for the first explained)."""
        index = self.explained
        self.explained += 1
        return index
