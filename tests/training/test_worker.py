"""CheckpointWorker (paddlex_interpret.training.worker): the child process that explains PaddleX
checkpoint directories while training goes on -- driven directly on a checkpoint of the session's
tiny hooked training (``hooked``, conftest.py), and through the hook when it is killed or cannot
start (training always finishes; the checkpoints are explained in the training process).
"""
import logging
import os
import shutil
import sys

import numpy as np
import pytest

import paddlex_interpret  # noqa: F401  (before paddlex)
from helpers import FAST, read_run, steps, train_tiny
from paddlex_interpret.hooks import ExplainHook
from paddlex_interpret.training.report import CheckpointJob, CheckpointResult
from paddlex_interpret.training.worker import CheckpointWorker, WorkerError


def test_a_killed_worker_never_stops_training(tiny_shapes, probes, tmp_path, monkeypatch,
                                              caplog):
    """SIGKILL the worker right after it gets the first checkpoint: training finishes, the loss is
    logged (Python logging and VisualDL text), the next checkpoint is explained in-process."""
    import signal

    hook = ExplainHook(probes[0][:1], **FAST)
    dispatch = hook._dispatch

    def dispatch_then_kill(job, *args):
        dispatch(job, *args)
        if job.epoch == 1:
            os.kill(hook.worker_pid, signal.SIGKILL)

    monkeypatch.setattr(hook, "_dispatch", dispatch_then_kill)
    with caplog.at_level(logging.ERROR, logger="paddlex_interpret"):
        model = train_tiny(tiny_shapes, tmp_path / "out", hook=hook, epochs=2)
    assert model.completed_epochs == 2
    assert "explanation worker" in caplog.text and "stopped" in caplog.text
    assert [(r.epoch, r.pid) for r in hook.history] == [(2, os.getpid())]
    reader = read_run(str(tmp_path / "out" / "vdl_log" / "explain"))
    assert steps(reader, "image", "explain/probe_0/lime") == [2]
    errors = reader.get_data("text", "explain/errors")
    assert "explanation worker" in errors[0].text.encoded_text_string
    assert (tmp_path / "out" / "epoch_2" / "normlime_weights.npz").exists()


def test_the_alarm_s_memory_goes_on_in_the_training_process_when_the_worker_dies(
        tiny_shapes, probes, tmp_path, monkeypatch):
    """The worker's report of epoch 1 carries the alarm's memory (the checkpoints it checked,
    the regions it remembers); the worker is killed with epoch 2; the training process checks
    epoch 3 starting from epoch 1's memory, not from none."""
    import signal

    from paddlex_interpret.training.atlas_stage import AtlasStage

    hook = ExplainHook(probes[0][:1], **FAST)
    dispatch, run = hook._dispatch, AtlasStage.run
    seen = []  # the in-process alarm's memory as each checkpoint starts

    def dispatch_then_kill(job, *args, **kwargs):
        dispatch(job, *args, **kwargs)
        if job.epoch == 2:
            os.kill(hook.worker_pid, signal.SIGKILL)

    def recording_run(self, *args, **kwargs):
        seen.append(self.memory.state())
        return run(self, *args, **kwargs)

    monkeypatch.setattr(hook, "_dispatch", dispatch_then_kill)
    monkeypatch.setattr(AtlasStage, "run", recording_run)
    train_tiny(tiny_shapes, tmp_path / "out", hook=hook, epochs=3)
    got = {r.epoch: r for r in hook.history}
    assert got[1].pid != os.getpid() and got[3].pid == os.getpid() and 2 not in got
    assert got[1].alarm_state["checked"] == [1], got[1].alarm_state
    assert seen == [got[1].alarm_state]
    assert got[3].alarm_state["checked"] == [1, 3]


def test_a_worker_that_cannot_start_leaves_the_work_to_the_training_process(
        tiny_shapes, probes, tmp_path, monkeypatch, caplog):
    """A worker interpreter that exits at once (forced: ``sys.executable`` is ``false``): every
    checkpoint is still explained, in the training process, and the reason is logged."""
    import shutil

    hook = ExplainHook(probes[0][:1], **FAST)
    monkeypatch.setattr(sys, "executable", shutil.which("false"))
    with caplog.at_level(logging.WARNING, logger="paddlex_interpret"):
        train_tiny(tiny_shapes, tmp_path / "out", hook=hook, epochs=1)
    # found when the set-up message cannot be sent (it already exited), or at the first checkpoint
    assert "explanation worker" in caplog.text and "stopped" in caplog.text
    assert "training process" in caplog.text
    assert [(r.epoch, r.pid) for r in hook.history] == [(1, os.getpid())]
    assert not hook.history[0].errors
    reader = read_run(str(tmp_path / "out" / "vdl_log" / "explain"))
    assert steps(reader, "image", "explain/probe_0/lime") == [1]


def test_a_worker_explains_a_checkpoint_directory(hooked, tiny_shapes, probes, tmp_path):
    """Start a worker with probes and options, hand it a real checkpoint directory (a copy of
    the hooked training's last one), read the report of its reply, close it: the child loaded the
    checkpoint itself, wrote the NormLIME weights into the directory and its VisualDL record, and
    exited."""
    import paddlex as pdx

    from paddlex_interpret.adapters.paddlex import PaddleXClassifier
    from paddlex_interpret.core.normlime import GlobalWeights
    from paddlex_interpret.training.report import CheckpointReport

    ckpt = str(tmp_path / "epoch_2")
    shutil.copytree(os.path.join(hooked["save_dir"], "epoch_2"), ckpt)
    weights_file = ExplainHook.weights_file(ckpt)
    os.remove(weights_file)  # the hook's; the worker writes its own
    val = tiny_shapes.val_items()
    logdir = str(tmp_path / "vdl_log" / "explain")
    worker = CheckpointWorker(probes[0][:1], dict(FAST, probe_labels=probes[1][:1]),
                              num_threads=1)
    try:
        assert worker.alive() and worker.pid != os.getpid() and worker.pending == 0
        worker.submit(CheckpointJob(epoch=2, checkpoint_dir=ckpt, is_last=True, logdir=logdir,
                                    dataset=[(p, l) for p, l, _ in val],
                                    label_names=list(tiny_shapes.labels)))
        assert worker.pending == 1 and worker.pending_epochs == [2]
        reply = worker.result(timeout=300)
        assert worker.pending == 0 and worker.pending_epochs == []
        assert isinstance(reply, CheckpointResult) and reply.epoch == 2
        assert reply.error is None, reply.error
        report = reply.report
        assert isinstance(report, CheckpointReport)
        assert report.epoch == 2 and not report.errors, report.errors
        assert report.pid == worker.pid  # explained in the child
        assert reply.peak_rss_mib > 100  # a real process with Paddle in it
        state = worker.close()
    except BaseException:
        worker.terminate()
        raise
    assert worker.process.wait(timeout=60) == 0 and not worker.alive()
    # the report is of the checkpoint's weights, loaded by the child from the directory
    model = pdx.load_model(ckpt)
    exp = report.explanations["probe_0"]
    assert exp.labels.tolist() == [probes[1][0]]
    np.testing.assert_allclose(exp.probabilities,
                               PaddleXClassifier(model)(exp.image[None])[0], atol=1e-4)
    assert report.scalars["explain/num_errors"] == 0.0
    assert 0.0 <= report.scalars["explain/probe_0/deletion_auc"] <= 1.0
    # the NormLIME weights are in the checkpoint, for these classes and this model
    assert report.weights_file == weights_file and os.path.isfile(weights_file)
    gw = GlobalWeights.load(weights_file)
    assert gw.class_names == list(tiny_shapes.labels) and gw.codebook is not None
    assert gw.fingerprint["model"] == PaddleXClassifier(model).fingerprint()
    # the final state: the run's codebook and weights, for the training process to keep
    assert state["codebook"].fingerprint() == gw.codebook.fingerprint()
    np.testing.assert_array_equal(state["global_weights"].weights, gw.weights)
    # its VisualDL record, closed and readable
    assert os.path.dirname(reply.record_file) == logdir and os.path.isfile(reply.record_file)
    reader = read_run(logdir)
    assert steps(reader, "image", "explain/probe_0/lime") == [2]
    assert steps(reader, "scalar", "explain/probe_0/deletion_auc") == [2]
    # a worker that exited takes no more work
    with pytest.raises(WorkerError, match="exited"):
        worker.submit(CheckpointJob(epoch=3, checkpoint_dir=ckpt))


def test_the_worker_s_imports_print_nothing_a_user_cannot_act_on():
    """The worker's environment: PaddleX's import (paddleslim's pkg_resources, setuptools'
    distutils hack) prints no deprecation warnings into the user's training log."""
    import subprocess

    from paddlex_interpret.training.worker import _child_env

    code = "import paddlex_interpret, paddlex"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONWARNINGS", "GLOG_minloglevel")}
    plain = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           env=env, timeout=300)
    assert plain.returncode == 0 and "pkg_resources" in plain.stderr  # the noise is real
    worker = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=_child_env(1, "cpu")[0], timeout=300)
    assert worker.returncode == 0, worker.stderr[-2000:]
    assert "pkg_resources" not in worker.stderr and "distutils" not in worker.stderr
