"""The running ``paddle.distributed`` job as a :class:`~paddlex_interpret.core.sharding.Collective`
(``all_gather_object`` and ``broadcast_object_list``: gloo on the CPU, NCCL on GPUs), so that the
core's builders can split their images over its ranks.

Example::

    from paddlex_interpret.adapters.collective import job_collective
    gw = build_normlime_weights(model, dataset, collective=job_collective())  # on every rank
"""
from ..core.sharding import LOCAL, Collective
from ..runtime.distributed import world_size

__all__ = ["PaddleCollective", "job_collective"]


class PaddleCollective(Collective):
    """The ranks of the running ``paddle.distributed`` job (its parallel environment is
    initialised on first use, as PaddleX's ``train`` does)."""

    def __init__(self):
        import paddle.distributed as dist

        from paddle.distributed.parallel import parallel_helper

        if not parallel_helper._is_parallel_ctx_initialized():
            dist.init_parallel_env()
        self._dist = dist
        self.rank, self.world = int(dist.get_rank()), int(dist.get_world_size())

    def all_gather(self, obj):
        out = []
        self._dist.all_gather_object(out, obj)
        return out

    def broadcast(self, obj, src=0):
        box = [obj]
        self._dist.broadcast_object_list(box, src=src)
        return box[0]


def job_collective():
    """:class:`PaddleCollective` inside a job of more than one rank, else
    :data:`~paddlex_interpret.core.sharding.LOCAL`."""
    return PaddleCollective() if world_size() > 1 else LOCAL
