"""Where the hook's worker process explains: read inside the real worker (its reply carries
``paddle.get_device()``, the cards it sees and its ``CUDA_VISIBLE_DEVICES``). A CPU worker sees no
card, whatever the training process sees; a worker asked for a GPU that is not there says so once
(a logged error), explains on the CPU, and training goes on.

Run on every stack; on the GPU build (``PADDLE_STACK=paddlegpu``, no card here) the fallback is
the build's real "no GPU" (``device_count() == 0``)."""
import logging
import os
import shutil

import pytest

import paddlex_interpret  # noqa: F401  (before paddlex)
from helpers import FAST, train_tiny
from paddlex_interpret.hooks import ExplainHook
from paddlex_interpret.training.report import CheckpointJob
from paddlex_interpret.training.worker import CheckpointWorker

pytestmark = pytest.mark.device

CPU_WORKER = {"device": "cpu", "gpus": 0, "CUDA_VISIBLE_DEVICES": ""}


@pytest.fixture(scope="module")
def probe(trained_classifier):
    return [trained_classifier.dataset.val_items()[0][0]]


def explain_once(worker, trained, tmp_path):
    """Hand ``worker`` a copy of the session classifier's saved model as a checkpoint; its
    reply."""
    ckpt = str(tmp_path / "epoch_4")
    shutil.copytree(trained.best_model_dir, ckpt)
    val = trained.dataset.val_items()
    try:
        worker.submit(CheckpointJob(epoch=4, checkpoint_dir=ckpt, is_last=True,
                                    logdir=str(tmp_path / "vdl_log" / "explain"),
                                    dataset=[(p, l) for p, l, _ in val],
                                    label_names=list(trained.dataset.labels)))
        reply = worker.result(timeout=600)
        worker.close()
    except BaseException:
        worker.terminate()
        raise
    assert reply.error is None, reply.error
    assert reply.report.pid == worker.pid != os.getpid() and not reply.report.errors
    return reply


def test_a_cpu_worker_sees_no_card_whatever_training_sees(trained_classifier, probe, tmp_path,
                                                          monkeypatch):
    """The training process sees card 0 and is a launcher's rank on it: the worker still sees
    none (``CUDA_VISIBLE_DEVICES`` empty inside it) and is no rank's card user."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    monkeypatch.setenv("FLAGS_selected_gpus", "0")
    worker = CheckpointWorker(probe, dict(FAST, metrics=False, normlime=False), num_threads=1,
                              device="cpu")
    assert worker.device == "cpu"
    reply = explain_once(worker, trained_classifier, tmp_path)
    assert reply.device == CPU_WORKER


def test_a_worker_asked_for_a_missing_gpu_explains_on_the_cpu(trained_classifier, probe,
                                                               tmp_path, caplog):
    with caplog.at_level(logging.ERROR, logger="paddlex_interpret"):
        worker = CheckpointWorker(probe, dict(FAST, metrics=False, normlime=False),
                                  num_threads=1, device="gpu:0")
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "'gpu:0'" in errors[0] and "CPU" in errors[0], errors
    assert worker.device == "cpu"
    reply = explain_once(worker, trained_classifier, tmp_path)
    assert reply.device == CPU_WORKER
    assert reply.report.explanations["probe_0"].labels.size == 1


def test_the_hook_on_a_missing_gpu_says_it_once_and_training_goes_on(tiny_shapes, probes,
                                                                    tmp_path, caplog):
    """``worker_device='gpu:0'`` with no card: one logged error for the hook (two ``train``
    calls, three checkpoints), every checkpoint explained by the worker on the CPU, the
    checkpoints' NormLIME weights written."""
    hook = ExplainHook(probes[0][:1], worker_device="gpu:0", **dict(FAST, metrics=False))
    with caplog.at_level(logging.ERROR, logger="paddlex_interpret"):
        train_tiny(tiny_shapes, tmp_path / "a", hook=hook, epochs=2)
        train_tiny(tiny_shapes, tmp_path / "b", hook=hook, epochs=1)
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, errors
    assert "worker_device" in errors[0] and "'gpu:0'" in errors[0] and "CPU" in errors[0]
    assert [r.epoch for r in hook.history] == [1, 2, 1]
    assert all(r.pid != os.getpid() and not r.errors for r in hook.history)
    assert hook.worker_device_info == CPU_WORKER
    for run, epoch in (("a", 1), ("a", 2), ("b", 1)):
        assert os.path.isfile(ExplainHook.weights_file(tmp_path / run / ("epoch_%d" % epoch)))
