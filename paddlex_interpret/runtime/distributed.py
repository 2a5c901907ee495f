"""A process of a ``paddle.distributed`` job (``launch`` or ``spawn``): what it hands to the
processes it starts, and what it passes to PaddleX's ``train``.

* :func:`single_process_env`: the environment of a helper process a rank starts (the hook's
  worker), without the launcher's variables.
* :func:`quiet_other_ranks`: PaddleX ``train`` arguments with ``use_vdl=False`` on ranks other
  than 0.
* :func:`world_size`: the number of ranks of the running job; :func:`cpu_share`: the CPU
  threads one rank of those on this machine may use.

Example::

    from paddlex_interpret.runtime.distributed import single_process_env
    subprocess.Popen(cmd, env=single_process_env())
"""
import logging
import os

from .modes import get_rank

__all__ = ["LAUNCHER_VARIABLES", "single_process_env", "quiet_other_ranks", "world_size",
           "cpu_share"]

logger = logging.getLogger("paddlex_interpret")

#: What ``paddle.distributed.launch`` / ``spawn`` put into a rank's environment. A helper process
#: a rank starts (the hook's worker) must not inherit them: ``import paddlex`` would take it for
#: one more rank and block in ``init_parallel_env`` on the job's TCP store.
LAUNCHER_VARIABLES = ("PADDLE_TRAINER_ID", "PADDLE_TRAINERS_NUM", "PADDLE_TRAINER_ENDPOINTS",
                      "PADDLE_CURRENT_ENDPOINT", "PADDLE_MASTER", "PADDLE_GLOBAL_RANK",
                      "PADDLE_GLOBAL_SIZE", "PADDLE_LOCAL_RANK", "PADDLE_LOCAL_SIZE",
                      "PADDLE_RANK_IN_NODE", "PADDLE_NNODES", "PADDLE_DISTRI_BACKEND",
                      "PADDLE_JOB_ID", "POD_NAME", "POD_IP", "PADDLE_POD_ID",
                      "PADDLE_WORLD_DEVICE_IDS", "PADDLE_LOCAL_DEVICE_IDS")


def single_process_env(env=None):
    """A copy of ``env`` (default ``os.environ``) without :data:`LAUNCHER_VARIABLES`: the
    environment of a process that is not a rank of the running job."""
    env = dict(os.environ if env is None else env)
    for name in LAUNCHER_VARIABLES:
        env.pop(name, None)
    return env


def quiet_other_ranks(sig_params, args, kwargs):
    """PaddleX ``train``'s ``(args, kwargs)`` with ``use_vdl=False`` on ranks other than 0
    (``sig_params``: the call's arguments bound by name, in signature order). PaddleX opens a
    record file in ``save_dir/vdl_log`` on every rank but writes on rank 0 only, and VisualDL
    shows the newest file of a directory, so another rank's empty file would hide the curves."""
    if get_rank() == 0 or not sig_params.get("use_vdl", True):
        return args, kwargs
    logger.debug("explanations: rank %d trains with use_vdl=False (rank 0 logs)", get_rank())
    names = list(sig_params)  # bound in signature order: positional arguments come first
    at = names.index("use_vdl") if "use_vdl" in names else len(args)
    if at < len(args):
        return args[:at] + (False,) + args[at + 1:], kwargs
    return args, dict(kwargs, use_vdl=False)


def world_size():
    """The number of ranks of the running ``paddle.distributed`` job (1 outside one)."""
    try:
        import paddle.distributed as dist

        return int(dist.get_world_size())
    except Exception:  # no paddle, or not a job
        return 1



def cpu_share():
    """CPU threads for one rank: the cores divided among the ranks on this machine (the
    launcher's ``PADDLE_LOCAL_SIZE``, else the job's size), at least one."""
    local = os.environ.get("PADDLE_LOCAL_SIZE") or os.environ.get("PADDLE_TRAINERS_NUM")
    try:
        local = max(1, int(local)) if local else world_size()
    except ValueError:
        local = world_size()
    return max(1, (os.cpu_count() or 1) // local)
