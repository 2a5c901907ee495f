"""NormLIME weights built by several processes of this machine: ``build_normlime_weights(...,
nproc=N)`` and ``paddlex-interpret build-weights --nproc N``, for datasets one process would take
hours on.

The ranks are started with ``paddle.distributed.spawn``, not the launcher: the build is a function
call, and spawn starts the ranks from it, returns when they end, keeps their output on this
terminal (rank 0's progress bar over the whole dataset) and raises a rank's exception here;
``paddle.distributed.launch`` needs a script, restarts failed ranks and writes each rank's output
into log files. As with any ``multiprocessing`` spawn, a script calling this must do so under
``if __name__ == "__main__":``. Inside a job started by the launcher, call
``build_normlime_weights(..., collective='job')`` on every rank instead.

Every rank loads the model from its directory and runs Paddle Inference on its share of the
images, whose outputs depend neither on the batch split nor on the threads: the weights are the
bits of a one-process build with ``backend='inference'`` (tested on the CPU; no card was here to
test GPU ranks). Where the ranks run follows the calling process: on a GPU
(``paddle.set_device('gpu')``, ``--device gpu``) a rank per card, NCCL, and ``nproc`` at most
the visible cards (checked before anything starts); otherwise on the CPU with ``cores // N``
threads, gloo, and no card visible to them.

Example::

    if __name__ == "__main__":
        gw = build_normlime_weights("output/best_model", "data/val_list.txt", nproc=4,
                                    save_path="nl.npz")
"""
from __future__ import annotations

import contextlib
import logging
import os
import pickle
import shutil
import tempfile
from typing import Any, Callable

from ..core.classifier import Classifier
from ..core.normlime.weights import GlobalWeights
from ..errors import UsageError
from ..runtime.devices import child_env, gpu_count, on_gpu

__all__ = ["build_in_processes", "rank_classifier"]

logger = logging.getLogger("paddlex_interpret")

_WEIGHTS_NAME = "normlime_weights.npz"


def _check_inputs(model, dataset):
    """Everything the ranks would fail on alike, checked here: a rank that fails before every
    rank has joined the job leaves the others waiting at its rendezvous."""
    from ..adapters.model_dir import find_model_dir

    if not isinstance(model, (str, os.PathLike)) or not os.path.isdir(os.fspath(model)):
        raise UsageError("nproc needs the model as a directory (a saved PaddleX model or an "
                         "exported inference model), got %r" % (type(model).__name__,))
    find_model_dir(model)  # names what is missing there
    try:
        pickle.dumps(dataset)
    except Exception as exc:
        raise UsageError("nproc needs a dataset that can be sent to other processes (a path, "
                         "a list of paths or a paddlex.datasets.ImageNet): %s" % exc) from None


def rank_classifier(model_dir: str, num_threads: int | None = None) -> Classifier:
    """The classifier a rank of a parallel build explains with: the model of ``model_dir`` on
    Paddle Inference (one predictor of ``num_threads`` threads)."""
    from ..adapters import classifier_for
    from ..adapters.deployed import is_deployed_model
    from ..adapters.paddleclas import is_paddleclas_dir
    from ..adapters.paddlex import PaddleXClassifier
    from ..compat import ensure_paddlex

    if is_deployed_model(model_dir) or is_paddleclas_dir(model_dir):
        return classifier_for(model_dir)[0]
    model = ensure_paddlex().load_model(model_dir)
    return PaddleXClassifier(model, backend="inference", num_threads=num_threads)


def _ranks_device(nproc):
    """``'gpu'`` (a rank per card, NCCL) when this process runs on a GPU, else ``'cpu'``
    (gloo). Raises :class:`~paddlex_interpret.errors.UsageError` when ``nproc`` exceeds the
    visible cards."""
    if not on_gpu():
        return "cpu"
    cards = gpu_count()
    if nproc > cards:
        raise UsageError("nproc=%d needs a GPU per process and %d are visible "
                         "(CUDA_VISIBLE_DEVICES=%r): give nproc <= %d, or build on the CPU "
                         "(paddle.set_device('cpu'), --device cpu)"
                         % (nproc, cards, os.environ.get("CUDA_VISIBLE_DEVICES"), cards))
    return "gpu"


@contextlib.contextmanager
def _environment(env):
    """``os.environ`` is ``env`` inside (what the spawned ranks inherit), restored after; only
    the variables that differ are touched."""
    saved = dict(os.environ)
    changed = {k for k in set(saved) | set(env) if saved.get(k) != env.get(k)}

    def put(values):
        for key in changed:
            if key in values:
                os.environ[key] = values[key]
            else:
                os.environ.pop(key, None)

    put(env)
    try:
        yield
    finally:
        put(saved)


def _rank_main(build, model_dir, dataset, out_path, kwargs, num_threads, device="cpu"):
    """One rank: its share of ``build`` (``build_normlime_weights``; rank 0 writes ``out_path``)."""
    import paddle

    from ..adapters.collective import PaddleCollective

    os.environ.setdefault("GLOG_minloglevel", "2")
    if device == "cpu":
        paddle.set_device("cpu")
    from ..core.sharding import checked

    collective = PaddleCollective()
    # every rank has joined the job before any can fail: a failure is raised on all of them here
    classifier = checked(collective, lambda: rank_classifier(model_dir, num_threads))
    build(classifier, dataset, save_path=out_path, collective=collective, **kwargs)


def build_in_processes(build: Callable[..., Any], nproc: int, model: Any, dataset: Any,
                       save_path: str | os.PathLike[str] | None = None, **kwargs: Any
                       ) -> GlobalWeights:
    """``build(model, dataset, ...)`` (``build_normlime_weights``, handed in: it calls this) with
    ``nproc`` processes (see the module docstring); returns the
    :class:`~paddlex_interpret.core.normlime.weights.GlobalWeights` rank 0 wrote to
    ``save_path`` (or to a temporary file, removed after)."""
    import paddle.distributed as dist

    _check_inputs(model, dataset)
    nproc = int(nproc)
    device = _ranks_device(nproc)
    threads = max(1, (os.cpu_count() or 1) // nproc)
    tmp = None
    if save_path is None:
        tmp = tempfile.mkdtemp(prefix="pxi-weights-")
        out_path = os.path.join(tmp, _WEIGHTS_NAME)
    else:
        out_path = os.path.abspath(os.fspath(save_path))
    options: dict[str, Any] = {}
    env = dict(os.environ)
    if device == "cpu":  # the ranks see no card, so that none opens a context on one
        options, env = {"backend": "gloo"}, child_env("cpu")[0]
    logger.info("NormLIME weights: %d processes (paddle.distributed.spawn, %s), %d thread(s) "
                "each", nproc, options.get("backend", "one card each"), threads)
    try:
        with _environment(env):
            dist.spawn(_rank_main, args=(build, os.fspath(model), dataset, out_path, kwargs,
                                         threads, device),
                       nprocs=nproc, **options)
        gw = GlobalWeights.load(out_path)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    return gw
