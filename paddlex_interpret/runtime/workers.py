"""Whether the CPU engine's single-thread workers can run at the same time on this Paddle:
:func:`probe_busy` runs them at once on a probe batch and measures how busy their threads were.

Each worker's math runs in the thread that calls it, so a thread's CPU time over its wall time is
near 1 when the workers run side by side and near 1 / (number of workers) when they take turns
(Paddle 3.x's ``predictor.run()`` holds the GIL). The outputs are thrown away.
"""
import threading
import time

import numpy as np

__all__ = ["probe_busy"]


def probe_busy(workers, probe, runs=2):
    """Mean CPU time / wall time of the ``workers``' threads running ``runs`` batches of
    ``probe`` ``(B, C, H, W)`` each, all at once, after one warm-up run each."""
    b = len(probe)
    for worker in workers:  # warm-up: the first run at a batch shape builds oneDNN's kernels
        with worker.lock:
            np.copyto(worker.buffer(b), probe)
            worker.run(b)
    busy = [0.0] * len(workers)
    start = threading.Barrier(len(workers))

    def run(k, worker):
        start.wait()
        t, cpu = time.perf_counter(), time.thread_time()
        for _ in range(runs):
            with worker.lock:
                worker.run(b)
        busy[k] = (time.thread_time() - cpu) / max(time.perf_counter() - t, 1e-9)

    threads = [threading.Thread(target=run, args=(k, w), daemon=True)
               for k, w in enumerate(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return float(np.mean(busy))
