"""The linking pass of :mod:`~paddlex_interpret.core.quickshift`: each pixel's parent is the
nearest denser pixel within ``max_dist``, ties going to scikit-image's raster order (the smallest
``(distance, raster rank)``), visited nearest offset first; the numpy path and the compiled
kernel's wrapper, and the threads both passes run on.
"""
from __future__ import annotations

import ctypes
import threading
from typing import Any, Callable, Sequence, TypeVar

import numpy as np

__all__ = ["link_numpy", "link_compiled", "nearest_first", "run_threads"]

_T = TypeVar("_T")


def nearest_first(offsets: Sequence[tuple[int, int]]) -> tuple[list[float], list[int]]:
    """``(spatial, order)``: each offset's squared length, and the offsets' indices sorted by it
    (raster order among equals)."""
    spatial = [float(dr * dr + dc * dc) for dr, dc in offsets]
    return spatial, sorted(range(len(offsets)), key=lambda i: (spatial[i], i))


class _Linker:
    """The numpy linking of :func:`link_numpy`: the best ``(distance, index)`` so far per pixel,
    improved ring by ring (dense rings over all pixels, then only the undecided ones)."""

    def __init__(self, img, dens, kept, offsets):
        self.img, self.dens, self.kept, self.offsets = img, dens, kept, offsets
        self.n = img.n
        self.shifts = [img.shift(dr, dc) for dr, dc in offsets]
        self.spatial, self.order = nearest_first(offsets)
        self.closest = np.full(self.n, np.finfo(np.float64).max)
        self.choice = np.full(self.n, -1, dtype=np.int32)

    def stored(self, i):
        """The kept colour distances of offset i (for d = -e those of e, aligned with the
        partners), or None."""
        dr, dc = self.offsets[i]
        return self.kept.get((dr, dc)) if self.shifts[i] > 0 else self.kept.get((-dr, -dc))

    def colour_of(self, i, lo, hi, out, tmp):
        k = self.shifts[i]
        colour = self.stored(i)
        if colour is not None:
            return colour[lo:hi] if k > 0 else colour[lo + k:hi + k]
        return self.img.colour_distance(k, lo, hi, out=out, tmp=tmp)

    def dense_band(self, r0, r1, todo):
        n, dens, closest, choice = self.n, self.dens, self.closest, self.choice
        size = r1 - r0
        buf, tmp = np.empty(size), np.empty(size)
        better, tie = np.empty(size, bool), np.empty(size, bool)
        for i in todo:
            k = self.shifts[i]
            lo, hi = max(r0, -k), min(r1, n - k)
            if lo >= hi:
                continue
            m = hi - lo
            dist = np.add(self.colour_of(i, lo, hi, buf[:m], tmp[:m]), self.spatial[i],
                          out=buf[:m])
            cl, ch = closest[lo:hi], choice[lo:hi]
            b = np.less(dist, cl, out=better[:m])
            t = np.equal(dist, cl, out=tie[:m])
            t &= ch > i
            b |= t
            b &= np.greater(dens[lo + k:hi + k], dens[lo:hi], out=tie[:m])
            np.copyto(cl, dist, where=b)
            np.copyto(ch, i, where=b)

    def dense_rings(self, num_threads, sparse_fraction):
        """All pixels, ring by ring, until fewer than ``sparse_fraction`` of them are left
        undecided. Returns ``(j, s, undecided)``:
        the position in ``order`` reached, the last ring's spatial distance and the mask of the
        pixels still undecided."""
        order, spatial = self.order, self.spatial
        j, s, undecided = 0, 0.0, None
        real = np.isfinite(self.dens)
        bands = self.img.row_cuts(num_threads)
        while j < len(order):
            s = spatial[order[j]]
            ring = []
            while j < len(order) and spatial[order[j]] == s:
                ring.append(order[j])
                j += 1
            run_threads(self.dense_band, [(lo, hi, ring) for lo, hi in bands])
            if j < len(order):
                undecided = real & (self.closest >= spatial[order[j]])
                if undecided.mean() < sparse_fraction * real.mean():
                    break
        return j, s, undecided

    def sparse_rings(self, j, s, undecided):
        """Only the undecided pixels, dropped as soon as they are decided."""
        n, dens, closest, choice = self.n, self.dens, self.closest, self.choice
        act = np.flatnonzero(undecided)
        cl, ch, da = closest[act], choice[act], dens[act]
        for i in self.order[j:]:
            if not act.size:
                break
            if self.spatial[i] > s:
                s = self.spatial[i]
                live = cl >= s
                if not live.all():
                    closest[act[~live]], choice[act[~live]] = cl[~live], ch[~live]
                    act, cl, ch, da = act[live], cl[live], ch[live], da[live]
                    if not act.size:
                        break
            k = self.shifts[i]
            q = act + k
            inside = (q >= 0) & (q < n)
            q[~inside] = act[~inside]  # itself: not denser than itself
            colour = self.stored(i)
            if colour is not None:
                colour = colour.take(act if k > 0 else q, mode="clip")
            else:
                colour = self.img.colour_distance_at(act, k)
            dist = colour + self.spatial[i]
            b = (dist < cl) | ((dist == cl) & (ch > i))
            b &= dens[q] > da
            cl[b] = dist[b]
            ch[b] = i
        closest[act], choice[act] = cl, ch


def link_numpy(img: Any, dens: np.ndarray, kept: np.ndarray, offsets: Sequence[tuple[int, int]],
               num_threads: int, sparse_fraction: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
    """``(closest, choice)``: per flat pixel the squared distance to its parent and the parent's
    index in ``offsets`` (raster order; -1: none), the smallest ``(distance, index)`` among the
    denser pixels. ``kept``: colour distances the density pass kept (``{(dr, dc): array}``);
    ``sparse_fraction``: below this fraction of undecided pixels the search goes on for those
    alone."""
    linker = _Linker(img, dens, kept, offsets)
    j, s, undecided = linker.dense_rings(num_threads, sparse_fraction)
    if j < len(linker.order):
        linker.sparse_rings(j, s, undecided)
    return linker.closest, linker.choice


def link_compiled(fn: Any, img: Any, dens: np.ndarray, offsets: Sequence[tuple[int, int]],
                  num_threads: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`link_numpy` in the compiled kernel ``fn``: per pixel, offsets nearest first,
    stopping at the first whose spatial distance alone exceeds the best distance found."""
    n = img.n
    lengths, order = nearest_first(offsets)
    shifts = np.array([img.shift(*offsets[i]) for i in order], dtype=np.int64)
    spatial = np.array([lengths[i] for i in order])
    index = np.array(order, dtype=np.int32)
    finite = np.maximum(dens, -np.finfo(np.float64).max)  # padding: -DBL_MAX, not -inf
    planes = img.plane_pointers()
    closest = np.empty(n)
    choice = np.empty(n, dtype=np.int32)

    def part(lo: int, hi: int) -> None:
        status = fn(ctypes.cast(planes, ctypes.c_void_p), len(img.chans), n, finite.ctypes.data,
                    shifts.ctypes.data, spatial.ctypes.data, index.ctypes.data, len(order),
                    lo, hi, closest.ctypes.data, choice.ctypes.data)
        if status != 0:
            raise RuntimeError("quickshift link kernel failed (%d)" % status)

    run_threads(part, img.row_cuts(num_threads))
    return closest, choice


def run_threads(target: Callable[..., _T], jobs: Sequence[Sequence[Any]]) -> list[_T]:
    """``[target(*job) for job in jobs]``, each job in its own thread (numpy and the kernels
    release the GIL)."""
    if len(jobs) == 1:
        return [target(*jobs[0])]
    results: list[Any] = [None] * len(jobs)

    def run(i: int) -> None:
        results[i] = target(*jobs[i])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results
