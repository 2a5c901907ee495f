"""How LIME's perturbed batches are spread over what runs the model.

:func:`run_batches` takes the batches of one explanation and runs them

* on the CPU engine's single-thread workers (:meth:`ModelRunner.workers
  <paddlex_interpret.runtime.policy.ModelRunner.workers>`), one Python thread each, each composing
  its next batch straight into its predictor's input while the others compute
  (:func:`run_on_workers`);
* else, on a GPU, composing the next batch in a thread while the model runs the current one
  (:func:`run_overlapped`);
* else one batch after the other; the CPU engine's one predictor takes them in parts of at most
  :data:`CPU_ENGINE_MAX_BATCH` images (:func:`engine_slices`).

The batches are described by two functions the adapter gives: ``compose(rows, out=None)`` (the
float32 model inputs of the mask rows ``rows``, written into ``out`` when it fits) and
``forward(batch)`` (probabilities); ``to_probs(raw)`` turns a worker's raw output into
probabilities. Every path gives the same numbers for the same backend (tested).

Example::

    outputs = run_batches(runner, compose, forward, to_probs, n_rows=1000, batch_size=50,
                          input_shape=(3, 224, 224), parallel="auto", overlap=False)
"""
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

__all__ = ["run_batches", "run_on_workers", "run_overlapped", "gather", "engine_slices",
           "split_tail", "CPU_ENGINE_MAX_BATCH", "RATED_BATCHES"]

#: Batches larger than this run on the CPU engine's one predictor in parts of this many images
#: (the workers and GPUs take the batch as it is): on Paddle 3.3 batches of 40-50 ran much slower
#: per image than 20-32, on 2.6 it made no difference (BENCHMARKS.md, "Where MobileNetV3_small's
#: LIME time goes").
CPU_ENGINE_MAX_BATCH = 32

#: Timed batches (of a size the worker ran before) each worker runs before ``'auto'`` checks how
#: busy their threads were (:func:`run_on_workers`).
RATED_BATCHES = 2


def engine_slices(sl, info):
    """``sl`` cut into the fewest near-equal parts of at most :data:`CPU_ENGINE_MAX_BATCH` images
    (50 -> 25 + 25) when ``info`` (a runner's) says the CPU inference engine runs with its one
    predictor (the same numbers; only the forward batch is smaller); else ``[sl]``."""
    n, step = sl.stop - sl.start, CPU_ENGINE_MAX_BATCH
    if info.get("backend") != "inference" or "gpu" in info or not step or n <= step:
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


def run_batches(runner, compose, forward, to_probs, slices, input_shape, parallel, overlap):
    """Probabilities of the mask rows covered by ``slices`` (consecutive, from 0), as
    ``{start: (slice, probs)}``.

    ``input_shape`` is the ``(C, H, W)`` of the composed inputs, or None when the adapter cannot
    compose into a worker's buffer (then no workers). ``parallel`` is the runner's choice
    (``'auto'``, an int, 0); ``overlap`` composes the next batch in a thread (GPU)."""
    results = {}
    pos = 0
    buf = None
    while pos < len(slices):
        workers = None
        if parallel and input_shape is not None and len(slices) - pos >= 2:
            workers = runner.workers(input_shape, parallel=parallel)
        if workers:
            pos = run_on_workers(runner, workers, compose, to_probs, slices, pos, results,
                                 parallel=parallel)
            continue
        if overlap and len(slices) - pos >= 2:
            run_overlapped(compose, forward, slices[pos:], results)
            break
        for sl in engine_slices(slices[pos], runner.info):
            buf = compose(sl, out=buf)
            results[sl.start] = (sl, forward(buf))
        pos += 1
    return results


def run_on_workers(runner, workers, compose, to_probs, slices, pos, results, parallel="auto"):
    """Run ``slices[pos:]`` on ``workers``, one thread each (the calling thread is the first),
    taking the next batch from a shared counter; the last round of batches is cut in halves
    (:func:`split_tail`) so that the workers finish together. Once every worker has run
    :data:`RATED_BATCHES` batches of a size it ran before (not warm-ups), how busy their threads
    were goes to ``runner.workers_busy``, which may turn them off (``parallel='auto'``: they took
    turns). Returns the index of the first slice not done: ``len(slices)``, or less when the
    workers stopped (turned off, or one failed: logged, and the runner stops using them); the
    caller finishes with the one predictor."""
    todo = split_tail(slices[pos:], len(workers))
    shared = _SharedBatches(runner, workers, compose, to_probs, todo, parallel)
    threads = [threading.Thread(target=shared.work, args=(k, w), daemon=True)
               for k, w in enumerate(workers) if k]
    for t in threads:
        t.start()
    try:
        shared.work(0, workers[0])
    finally:
        for t in threads:
            t.join()
    for i, probs in shared.done.items():
        results[todo[i].start] = (todo[i], probs)
    if shared.error is None and not shared.stop:
        return len(slices)
    if shared.error is not None:
        if isinstance(shared.error, (KeyboardInterrupt, SystemExit)):
            raise shared.error
        runner.parallel_failed("%s: %s" % (type(shared.error).__name__, shared.error))
    return _resume_at(slices, pos, {todo[i].start: todo[i].stop for i in shared.done}, results)


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

    def __init__(self, runner, workers, compose, to_probs, todo, parallel):
        self.runner, self.compose, self.to_probs = runner, compose, to_probs
        self.todo, self.parallel = todo, parallel
        self.shape = tuple(workers[0].input_shape)
        self.lock = threading.Lock()
        self.next, self.error, self.stop, self.rated = 0, None, False, False
        self.done = {}
        # per worker: CPU seconds of its thread and wall seconds over its timed batches (not
        # the first of each batch size: warm-ups), and how many
        self.clocks = [[0.0, 0.0, 0] for _ in workers]

    def _take(self):
        with self.lock:
            i = self.next
            if i >= len(self.todo) or self.error is not None or self.stop:
                return None
            self.next = i + 1
            return i

    def _busy_when_ready(self):
        """The workers' mean CPU time / wall time (their math runs in their own thread), once,
        when every worker has :data:`RATED_BATCHES` timed batches."""
        if self.rated or any(c[2] < RATED_BATCHES for c in self.clocks):
            return None
        self.rated = True
        return sum(c[0] / max(c[1], 1e-9) for c in self.clocks) / len(self.clocks)

    def work(self, k, worker):
        try:
            seen = set()
            while True:
                i = self._take()
                if i is None:
                    return
                sl = self.todo[i]
                b = sl.stop - sl.start
                t, cpu = time.perf_counter(), time.thread_time()
                with worker.lock:  # the buffer is the worker's until its run is done
                    buf = worker.buffer(b)
                    x = self.compose(sl, out=buf)
                    if x is not buf:
                        raise ValueError("composed batch %s does not fit the worker's input %s"
                                         % (x.shape, buf.shape))
                    out = worker.run(b)
                probs = self.to_probs(out)
                cpu, t = time.thread_time() - cpu, time.perf_counter() - t
                with self.lock:
                    self.done[i] = probs
                    if b in seen:
                        clock = self.clocks[k]
                        clock[0], clock[1], clock[2] = clock[0] + cpu, clock[1] + t, clock[2] + 1
                    seen.add(b)
                    busy = self._busy_when_ready()
                if busy is not None and self.runner.workers_busy(self.shape, busy,
                                                                 parallel=self.parallel):
                    with self.lock:
                        self.stop = True
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
