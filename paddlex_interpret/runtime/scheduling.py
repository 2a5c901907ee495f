"""How an explanation's batches are spread over what runs the model, along a
:class:`~paddlex_interpret.runtime.policy.Plan` fixed before the first batch.

:func:`run_batches` runs them

* on the CPU engine's single-thread workers (the plan's ``workers``), one Python thread each,
  each composing its next batch straight into its predictor's input while the others compute
  (:func:`run_on_workers`);
* else, on a GPU, composing the next batch in a thread while the model runs the current one
  (:func:`run_overlapped`);
* else one batch after the other; the CPU engine's one predictor takes them in parts of at most
  :data:`CPU_ENGINE_MAX_BATCH` images (:func:`engine_slices`).

The batches are described by two functions the adapter gives: ``compose(rows, out=None)`` (the
float32 model inputs of the mask rows ``rows``, written into ``out`` when it fits) and
``forward(batch)`` (probabilities); ``to_probs(raw)`` turns a worker's raw output into
probabilities. The engine's outputs do not depend on the batch size or on which of its
predictors ran them, so every path gives the same numbers (tested); the path changes inside an
explanation only when a worker fails (logged), to the one predictor.

Example::

    plan = runner.plan((3, 224, 224), probe=first_batch)
    results = run_batches(compose, forward, to_probs, slices, plan, overlap=False,
                          on_failure=runner.parallel_failed)
"""
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

__all__ = ["run_batches", "run_on_workers", "run_overlapped", "gather", "engine_slices",
           "split_tail", "CPU_ENGINE_MAX_BATCH"]

#: Batches larger than this run on the CPU engine's one predictor in parts of this many images
#: (the workers and GPUs take the batch as it is): on Paddle 3.3 batches of 40-50 ran much slower
#: per image than 20-32, on 2.6 it made no difference (BENCHMARKS.md, "Where MobileNetV3_small's
#: LIME time goes").
CPU_ENGINE_MAX_BATCH = 32


def engine_slices(sl, plan):
    """``sl`` cut into the fewest near-equal parts of at most :data:`CPU_ENGINE_MAX_BATCH` images
    (50 -> 25 + 25) when the ``plan`` runs the CPU engine's one predictor (the same numbers; only
    the forward batch is smaller); else ``[sl]``."""
    n, step = sl.stop - sl.start, CPU_ENGINE_MAX_BATCH
    if plan.backend != "inference" or plan.gpu or not step or n <= step:
        return [sl]
    parts = -(-n // step)
    size, extra = divmod(n, parts)
    cuts = [sl.start]
    for k in range(parts):
        cuts.append(cuts[-1] + size + (1 if k < extra else 0))
    return [slice(a, b) for a, b in zip(cuts, cuts[1:])]


def split_tail(slices, workers):
    """``slices`` with the last ``workers`` of them (the last round, one batch per worker) cut in
    two halves each: with a shared counter the workers then finish at most half a batch apart
    instead of a whole batch. Only the halves of a full batch are new shapes, so an inference
    engine warms up at most one more shape (two when the last batch is not full).

    >>> [s.stop - s.start for s in split_tail([slice(0, 50), slice(50, 100), slice(100, 150)], 2)]
    [50, 25, 25, 25, 25]
    """
    if workers < 2 or len(slices) < 2:
        return list(slices)
    half = (slices[0].stop - slices[0].start + 1) // 2
    cut = max(0, len(slices) - workers)
    out = list(slices[:cut])
    for sl in slices[cut:]:
        out.extend(slice(a, min(a + half, sl.stop)) for a in range(sl.start, sl.stop, half))
    return out


def run_batches(compose, forward, to_probs, slices, plan, overlap=False, on_failure=None):
    """Probabilities of the mask rows covered by ``slices`` (consecutive, from 0), as
    ``{start: (slice, probs)}``, run along ``plan``. ``overlap`` composes the next batch in a
    thread (GPU); ``on_failure(reason)`` is told when a worker fails (the rest then runs on the
    one predictor)."""
    results = {}
    pos = 0
    if plan.workers and len(slices) >= 2:
        pos = run_on_workers(plan.workers, compose, to_probs, slices, results,
                             on_failure=on_failure)
    if pos < len(slices) and overlap and len(slices) - pos >= 2:
        run_overlapped(compose, forward, slices[pos:], results)
        return results
    buf = None
    for sl in slices[pos:]:
        for part in engine_slices(sl, plan):
            buf = compose(part, out=buf)
            results[part.start] = (part, forward(buf))
    return results


def run_on_workers(workers, compose, to_probs, slices, results, on_failure=None):
    """Run ``slices`` on ``workers``, one thread each (the calling thread is the first), taking
    the next batch from a shared counter; the last round of batches is cut in halves
    (:func:`split_tail`) so that the workers finish together. Returns the index of the first
    slice not done: ``len(slices)``, or less when a worker failed (``on_failure`` is told; the
    caller finishes with the one predictor)."""
    todo = split_tail(slices, len(workers))
    shared = _SharedBatches(compose, to_probs, todo)
    threads = [threading.Thread(target=shared.work, args=(w,), daemon=True)
               for w in workers[1:]]
    for t in threads:
        t.start()
    try:
        shared.work(workers[0])
    finally:
        for t in threads:
            t.join()
    for i, probs in shared.done.items():
        results[todo[i].start] = (todo[i], probs)
    if shared.error is None:
        return len(slices)
    if isinstance(shared.error, (KeyboardInterrupt, SystemExit)):
        raise shared.error
    if on_failure is not None:
        on_failure("%s: %s" % (type(shared.error).__name__, shared.error))
    return _resume_at(slices, 0, {todo[i].start: todo[i].stop for i in shared.done}, results)


def _resume_at(slices, pos, covered, results):
    """The first slice from ``pos`` that the workers did not cover entirely; the parts of it
    and of later slices that they did are dropped from ``results`` (the caller redoes them)."""
    for k in range(pos, len(slices)):
        start, stop = slices[k].start, slices[k].stop
        while start in covered and start < stop:
            start = covered[start]
        if start < stop:
            for j in [j for j in results if j >= slices[k].start]:
                del results[j]
            return k
    return len(slices)


class _SharedBatches:
    """The batches of :func:`run_on_workers` and what the worker threads report back."""

    def __init__(self, compose, to_probs, todo):
        self.compose, self.to_probs, self.todo = compose, to_probs, todo
        self.lock = threading.Lock()
        self.next, self.error = 0, None
        self.done = {}

    def _take(self):
        with self.lock:
            i = self.next
            if i >= len(self.todo) or self.error is not None:
                return None
            self.next = i + 1
            return i

    def work(self, worker):
        try:
            while True:
                i = self._take()
                if i is None:
                    return
                sl = self.todo[i]
                b = sl.stop - sl.start
                with worker.lock:  # the buffer is the worker's until its run is done
                    buf = worker.buffer(b)
                    x = self.compose(sl, out=buf)
                    if x is not buf:
                        raise ValueError("composed batch %s does not fit the worker's input %s"
                                         % (x.shape, buf.shape))
                    out = worker.run(b)
                probs = self.to_probs(out)
                with self.lock:
                    self.done[i] = probs
        except BaseException as exc:  # noqa: B902 - reported by the calling thread
            with self.lock:
                if self.error is None:
                    self.error = exc


def run_overlapped(compose, forward, slices, results):
    """Compose the next batch in a thread while the model runs the current one."""
    bufs = [None, None]
    with ThreadPoolExecutor(max_workers=1) as pool:
        job = pool.submit(compose, slices[0])
        for i, sl in enumerate(slices):
            batch = job.result()
            bufs[i % 2] = batch
            if i + 1 < len(slices):
                job = pool.submit(compose, slices[i + 1], bufs[(i + 1) % 2])
            results[sl.start] = (sl, forward(batch))


def gather(results, n_rows):
    """``(n_rows, C)`` float64 probabilities from :func:`run_batches`'s ``{start: (slice,
    probs)}``."""
    outputs = None
    for sl, probs in results.values():
        if outputs is None:
            outputs = np.empty((n_rows, probs.shape[1]), dtype=np.float64)
        outputs[sl] = probs
    return outputs
