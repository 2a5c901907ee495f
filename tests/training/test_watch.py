"""The watcher (``paddlex-interpret watch`` / ``training.watch``) on real runs: a PaddleX 3 run
written by PaddleClas's functions in a process of its own while the watcher runs in another; a
watcher killed (SIGKILL) in the middle of a checkpoint's records and started again; a checkpoint
it cannot read; a log made with other settings; the hooked PaddleX 2 run, where it logs what the
hook logged; and the watermarked PaddleX 2 run, where the shortcut alarm fires as in the hook."""
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from helpers import FAST, ROOT, read_run, start_paddleclas_run, steps
from paddlex_interpret.compat import quiet_import_noise
from paddlex_interpret.training.watch import Watcher

pytestmark = pytest.mark.slow  # other processes, PaddleX 3 runs

#: cheap explanations for the command line
CHEAP = ["--num-samples", "60", "--max-images", "15", "--atlas-max-images", "15",
         "--poll", "0.2", "--nice", "0"]
#: the interrupted runs spend seconds in each checkpoint, so that a signal sent after the first
#: one lands inside the next however busy the machine is
SLOW = ["--num-samples", "15000"]
#: the tags every explained checkpoint writes (two probes, NormLIME, metrics, the atlas)
EVERY_CHECKPOINT = [("scalar", "explain/probe_0/probability"),
                    ("scalar", "explain/probe_1/deletion_auc"), ("scalar", "explain/seconds"),
                    ("scalar", "atlas/images"), ("image", "explain/probe_0/lime"),
                    ("image", "explain/probe_1/normlime")]


def _probes(ds):
    val = ds.val_items()
    return [val[0][0], val[-1][0]]


def _as_in_a_terminal():
    """Ctrl-C's default in the child, as in a terminal's foreground: a shell starts background
    jobs (``nohup ... &``, a CI runner's) with SIGINT ignored, which the child would inherit, and
    Python then leaves Ctrl-C ignored too."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _watch(run, logdir, probes, *extra):
    return subprocess.Popen(
        [sys.executable, "-m", "paddlex_interpret.cli", "watch", run, "--probes", *probes,
         "--logdir", str(logdir), *CHEAP, *extra], cwd=ROOT,
        env=quiet_import_noise(dict(os.environ)), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, preexec_fn=_as_in_a_terminal)


def _finish(proc, timeout=600):
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1]), err


def _all_steps(logdir):
    reader = read_run(str(logdir))
    return {(kind, tag): steps(reader, kind, tag)
            for kind, tags in reader.get_tags().items() if kind in ("scalar", "image", "text")
            for tag in tags}


def _leftovers(logdir):
    return [os.path.join(d, f) for d, _, files in os.walk(logdir) for f in files
            if f.startswith(".tmp-pxi-")]


def test_it_explains_each_checkpoint_once_in_order_while_training_writes_them(
        paddleclas_shapes, tmp_path):
    run, logdir = str(tmp_path / "output"), tmp_path / "output" / "watch"
    watcher = _watch(run, logdir, _probes(paddleclas_shapes))  # before the run exists
    time.sleep(1.0)
    writer = start_paddleclas_run(run, paddleclas_shapes.root, epochs=3, sleep=1.0)
    assert writer.wait(timeout=600) == 0, writer.stderr.read()[-2000:]
    summary, _ = _finish(watcher)
    assert summary["stopped"].startswith("training ended")
    assert summary["checkpoints"] == {"epoch_%d" % e: "explained" for e in (1, 2, 3)}
    found = _all_steps(logdir)
    for key in EVERY_CHECKPOINT:
        assert found[key] == [1, 2, 3], key
    for key, seen in found.items():  # nothing twice, nothing out of order
        assert seen == sorted(set(seen)) and set(seen) <= {1, 2, 3}, (key, seen)
    assert found[("scalar", "normlime/drift")] == [2, 3]
    trainer = read_run(run)  # the trainer's own records are still the run's
    assert "eval_acc" in trainer.get_tags()["scalar"]
    # nothing of the watcher's in the trainer's checkpoints
    assert sorted(os.listdir(os.path.join(run, "epoch_2"))) == [
        "epoch_2.info.json", "epoch_2.pdopt", "epoch_2.pdparams", "epoch_2.pdstates",
        "inference"]
    assert sorted(os.listdir(logdir / "normlime")) == ["epoch_1.npz", "epoch_2.npz",
                                                       "epoch_3.npz"]


def _kill_inside_a_checkpoint(proc, logdir):
    """SIGKILL ``proc`` once its record file grows past the length the state holds, after at
    least one finished checkpoint (the records of the next are being written); True when the
    state still did not hold that checkpoint at the kill (SIGSTOP first, then looked at)."""
    path = logdir / "watch_state.json"
    while proc.poll() is None:
        try:
            state = json.loads(path.read_text())
        except (OSError, ValueError):
            state = None
        if state and state["checkpoints"]:
            records = logdir / state["records_file"]
            if records.exists() and records.stat().st_size > state["records_bytes"]:
                os.kill(proc.pid, signal.SIGSTOP)
                now = json.loads(path.read_text())
                torn = len(now["checkpoints"]) == len(state["checkpoints"])
                if torn or len(now["checkpoints"]) == 3:
                    os.kill(proc.pid, signal.SIGKILL)
                    proc.communicate()
                    return torn
                os.kill(proc.pid, signal.SIGCONT)  # the state caught up: try the next one
        time.sleep(0.001)
    return False


def test_killed_inside_a_checkpoint_it_goes_on_without_duplicates(paddleclas_run,
                                                                   paddleclas_shapes, tmp_path):
    logdir = tmp_path / "watch"
    probes = _probes(paddleclas_shapes)
    first = _watch(paddleclas_run, logdir, probes, "--once", *SLOW)
    assert _kill_inside_a_checkpoint(first, logdir), "the kill never landed inside a checkpoint"
    state = json.loads((logdir / "watch_state.json").read_text())
    assert 1 <= len(state["checkpoints"]) < 3
    assert (logdir / state["records_file"]).stat().st_size > state["records_bytes"]  # torn
    summary, err = _finish(_watch(paddleclas_run, logdir, probes, "--once", *SLOW))
    assert "cut " in err and "half-written" in err
    assert summary["checkpoints"] == {"epoch_%d" % e: "explained" for e in (1, 2, 3)}
    found = _all_steps(logdir)
    for key in EVERY_CHECKPOINT:
        assert found[key] == [1, 2, 3], key
    assert found[("scalar", "normlime/drift")] == [2, 3]  # the weights went on across the kill
    assert _leftovers(logdir) == []
    from paddlex_interpret.core.normlime.weights import GlobalWeights

    codebooks = {GlobalWeights.load(str(logdir / "normlime" / f)).codebook.fingerprint()
                 for f in os.listdir(logdir / "normlime")}
    assert len(codebooks) == 1  # one codebook for the run, across the restart


def test_ctrl_c_inside_a_checkpoint_leaves_nothing_half_written(paddleclas_run,
                                                                paddleclas_shapes, tmp_path):
    logdir = tmp_path / "watch"
    proc = _watch(paddleclas_run, logdir, _probes(paddleclas_shapes), "--once", *SLOW)
    path = logdir / "watch_state.json"
    while proc.poll() is None and not (path.exists() and json.loads(path.read_text())[
            "checkpoints"]):
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGSTOP)  # frozen where it is: inside the next checkpoint
    proc.send_signal(signal.SIGINT)
    os.kill(proc.pid, signal.SIGCONT)
    _, err = proc.communicate(timeout=300)
    state = json.loads(path.read_text())
    assert proc.returncode == 130 and "interrupted" in err, err[-2000:]
    assert len(state["checkpoints"]) < 3
    assert (logdir / state["records_file"]).stat().st_size == state["records_bytes"]
    assert _leftovers(logdir) == []
    done = {("scalar", "explain/probe_0/probability"): sorted(
        v["epoch"] for v in state["checkpoints"].values())}
    assert {k: _all_steps(logdir)[k] for k in done} == done  # what it logged, it finished


def test_a_checkpoint_it_cannot_read_is_logged_and_the_next_goes_on(paddleclas_run,
                                                                    paddleclas_shapes,
                                                                    tmp_path, caplog):
    run = str(tmp_path / "output")
    shutil.copytree(paddleclas_run, run)
    for rel in ("epoch_2/epoch_2.pdparams", "epoch_2/inference/inference.pdiparams"):
        path = os.path.join(run, rel)
        with open(path, "r+b") as f:
            f.truncate(os.path.getsize(path) // 2)
    kw = dict(once=True, num_samples=60, max_images=15, atlas_max_images=15, metrics=False)
    with caplog.at_level(logging.ERROR, logger="paddlex_interpret"):
        watcher = Watcher(run, _probes(paddleclas_shapes), **kw)
        assert watcher.run_until_done() == "explained what was there"
    outcome = watcher.outcomes()
    assert [outcome["epoch_%d" % e]["status"] for e in (1, 2, 3)] == [
        "explained", "failed", "explained"]
    assert "epoch_2" in caplog.text
    reader = read_run(os.path.join(run, "watch"))
    assert steps(reader, "text", "explain/errors") == [2]
    assert steps(reader, "scalar", "explain/probe_0/probability") == [1, 3]
    with pytest.raises(ValueError, match="other settings"):  # one log, one set of settings
        Watcher(run, _probes(paddleclas_shapes), **dict(kw, num_samples=61)).poll()


def test_a_checkpoint_that_never_completed_is_skipped(paddleclas_run, paddleclas_shapes,
                                                     tmp_path):
    run = str(tmp_path / "output")
    shutil.copytree(paddleclas_run, run)
    os.remove(os.path.join(run, "epoch_1", "epoch_1.info.json"))
    watcher = Watcher(run, _probes(paddleclas_shapes)[:1], once=True, num_samples=60,
                      normlime=False, atlas=False, metrics=False, network=False)
    watcher.run_until_done()
    status = {k: v["status"] for k, v in watcher.outcomes().items()}
    assert status == {"epoch_1": "skipped", "epoch_2": "explained", "epoch_3": "explained"}
    assert {v["model"] for v in watcher.outcomes().values() if "model" in v} == {
        "PaddleClasClassifier"}  # the exported models, as asked


def test_on_the_hooked_paddlex2_run_it_logs_what_the_hook_logged(hooked, probes, tiny_shapes,
                                                                 tmp_path):
    images, labels = probes
    logdir = tmp_path / "watch"
    watcher = Watcher(hooked["save_dir"], images, tiny_shapes.root, probe_labels=labels,
                      logdir=str(logdir), once=True, **FAST)
    watcher.run_until_done()
    assert [v["status"] for v in watcher.outcomes().values()] == ["explained", "explained"]
    ours = read_run(str(logdir))
    hook = read_run(os.path.join(hooked["save_dir"], "vdl_log", "explain"))
    for kind in ("scalar", "image", "text"):
        assert sorted(ours.get_tags().get(kind, [])) == sorted(hook.get_tags().get(kind, [])), kind
        for tag in hook.get_tags().get(kind, []):
            assert steps(ours, kind, tag) == steps(hook, kind, tag), tag
    for tag in ("explain/probe_0/probability", "explain/probe_1/probability"):
        a = [r.value for r in ours.get_data("scalar", tag)]
        b = [r.value for r in hook.get_data("scalar", tag)]
        assert np.allclose(a, b, atol=1e-5), (tag, a, b)
    from paddlex_interpret.core.normlime.weights import GlobalWeights

    for epoch in (1, 2):
        mine = GlobalWeights.load(str(logdir / "normlime" / ("epoch_%d.npz" % epoch)))
        theirs = GlobalWeights.load(os.path.join(hooked["save_dir"], "epoch_%d" % epoch,
                                                 "normlime_weights.npz"))
        assert np.allclose(mine.weights, theirs.weights, atol=1e-6)


def test_the_shortcut_alarm_fires_on_the_watermarked_run(watermarked, tmp_path):
    from paddlex_interpret.adapters.paddlex import PaddleXClassifier
    from pxi_testing.synthetic import stamp_watermark

    trained, hook, _ = watermarked
    ds = trained.dataset
    blue = ds.labels.index("blue")
    clf = PaddleXClassifier(trained.model, backend="dygraph")
    others = np.stack([clf.view(p) for p, l, _ in ds.val_items() if l != blue])
    stamped = np.stack([stamp_watermark(im.copy(), ds.watermark_box) for im in others])
    # the model's behaviour first: the watermark alone turns other classes blue
    assert (clf(stamped).argmax(1) == blue).mean() >= 0.5, "the model does not read the watermark"
    logdir = tmp_path / "watch"
    watcher = Watcher(trained.save_dir, [ds.val_items()[0][0]], ds.root, logdir=str(logdir),
                      once=True, num_samples=60, metrics=False, max_images=30, n_concepts=8)
    watcher.run_until_done()
    raised = {r.epoch: [a.name for a in r.alarms] for r in watcher.session.history}
    # the same checkpoints, the same images, the same test: the alarms the hook raised
    assert raised == {r.epoch: [a.name for a in r.alarms] for r in hook.history}, raised
    on = [e for e in sorted(raised) if raised[e]]
    assert on and all(raised[e] == ["blue"] for e in on), raised
    first = next(r for r in watcher.session.history if r.alarms)
    assert "bottom-right" in first.alarms[0].message(first.epoch)
    reader = read_run(str(logdir))
    assert [t for t in reader.get_tags()["text"] if t.startswith("alarm/")] == [
        "alarm/blue/evidence"]
    assert steps(reader, "text", "alarm/blue/evidence") == on
    # what the watcher's state file keeps: the alarms as plain data, the memory to go on from
    with open(os.path.join(str(logdir), "watch_state.json")) as f:
        state = json.load(f)
    kept = {c["epoch"]: [a["name"] for a in c["alarms"]] for c in state["checkpoints"].values()}
    assert kept == raised and state["alarm_state"]
