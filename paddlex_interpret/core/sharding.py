"""Work split over the ranks of a job: the collective a build is given, which positions a rank
takes, and the gather that puts the ranks' per-image records back in one order.

A :class:`Collective` is what a builder needs of ``paddle.distributed`` (the runtime's
``PaddleCollective`` is one; :data:`LOCAL` is the one-process job): ``rank``, ``world``,
``all_gather(obj)`` (every rank's object, in rank order, on every rank) and
``broadcast(obj, src)``. Rank ``r`` takes positions ``r, r + world, ...`` of a list (strided, so
that a class-stratified list gives every rank a share of every class). Every per-image record
carries its position; :func:`gather_in_order` returns the records of all ranks in position order,
so that a fold over them (a sum, a fit) adds in the same order as one process would: the same
bits. A rank's local work runs inside :func:`checked`: when any rank fails, every rank raises
:class:`RankError` at that same point, so that none is left waiting at a later collective.

Example::

    from paddlex_interpret.core.sharding import LOCAL, gather_in_order, positions
    mine = positions(len(items), collective)               # this rank's share
    records = [(p, work(items[p])) for p in mine]
    ordered = gather_in_order(collective, records)         # [(p, record), ...] of every rank
"""
from __future__ import annotations

from typing import Any, Callable, Iterable, TypeVar

import numpy as np

__all__ = ["Collective", "LOCAL", "RankError", "positions", "checked", "gather_in_order",
           "gather_list", "is_local"]


class Collective:
    """One process (rank 0 of 1); subclasses talk to the other ranks of a job."""

    rank: int = 0
    world: int = 1

    def all_gather(self, obj: Any) -> list[Any]:
        """Every rank's ``obj``, in rank order, on every rank."""
        return [obj]

    def broadcast(self, obj: Any, src: int = 0) -> Any:
        """Rank ``src``'s ``obj`` on every rank."""
        return obj

    def __repr__(self) -> str:
        return "%s(rank=%d, world=%d)" % (type(self).__name__, self.rank, self.world)


_T = TypeVar("_T")

#: the collective of a one-process build
LOCAL = Collective()


def is_local(collective: Collective | None) -> bool:
    """True when ``collective`` is None or a one-process job."""
    return collective is None or int(collective.world) == 1


class RankError(RuntimeError):
    """A rank of the job failed in a step of a shared build; every rank raises it there.

    Attributes:
        failures: ``[(rank, "ExceptionType: message"), ...]``.
    """

    def __init__(self, failures: Iterable[tuple[int, str]]):
        self.failures = list(failures)
        super().__init__("; ".join("rank %d: %s" % f for f in self.failures))


def checked(collective: Collective | None, work: Callable[[], _T]) -> _T:
    """``work()`` on this rank, then (in a job) every rank learns whether any rank failed: all
    return its result, or all raise :class:`RankError`. In one process ``work``'s exception
    propagates as it is."""
    if is_local(collective):
        return work()
    assert collective is not None
    try:
        out, err = work(), None
    except Exception as exc:  # said to every rank below, then raised on all of them
        out, err = None, "%s: %s" % (type(exc).__name__, exc)
    failures = [(r, e) for r, e in enumerate(collective.all_gather(err)) if e]
    if failures:
        raise RankError(failures)
    return out  # type: ignore[return-value]  # no rank failed: work() returned it


def positions(n: int, collective: Collective | None = None) -> np.ndarray:
    """The positions ``0 <= p < n`` this rank works on (all of them in a one-process job)."""
    if is_local(collective):
        return np.arange(int(n), dtype=np.int64)
    assert collective is not None
    return np.arange(int(collective.rank), int(n), int(collective.world), dtype=np.int64)


def gather_in_order(collective: Collective | None, records: Iterable[tuple[int, _T]]
                    ) -> list[tuple[int, _T]]:
    """``records`` (``[(position, record), ...]`` of this rank) of every rank, merged in position
    order, on every rank. Positions must be distinct across ranks."""
    if is_local(collective):
        return sorted(records, key=lambda r: r[0])
    assert collective is not None
    merged = [r for part in collective.all_gather(list(records)) for r in part]
    merged.sort(key=lambda r: r[0])
    return merged


def gather_list(collective: Collective | None, values: Iterable[_T]) -> list[_T]:
    """The concatenation of every rank's list ``values``, in rank order, on every rank."""
    if is_local(collective):
        return list(values)
    assert collective is not None
    return [v for part in collective.all_gather(list(values)) for v in part]
