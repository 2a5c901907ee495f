"""ExplainSession (paddlex_interpret.training.session), the core the hook and the callback
share, on a numpy classifier (helpers.BrightnessModel): the schedule (frequency, last checkpoint,
time budget), the report and files it writes, the rank-0 guard, and its options
(:class:`~paddlex_interpret.training.options.ExplainOptions`).
"""
import os

import numpy as np
import pytest

from helpers import FAST, BrightnessModel, read_run, steps
from paddlex_interpret.training import schedule, sink
from paddlex_interpret.training import session as es
from paddlex_interpret.training.options import ExplainOptions
from paddlex_interpret.training.report import CheckpointContext
from paddlex_interpret.training.session import ExplainSession


def _images(n=8, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        im = rng.integers(0, 60, (32, 32, 3)).astype(np.uint8)
        if i % 2:
            im[:, :16] = 230
        out.append(im)
    return out, [i % 2 for i in range(n)]


def test_session_frequency_and_last_checkpoint():
    s = ExplainSession(_images(1)[0], freq=3)
    assert [s.should_run() for _ in range(5)] + [s.should_run(is_last=True)] == \
        [True, False, False, True, False, True]
    s.reset_run()
    assert s.should_run()


def test_session_without_paddle_model_writes_report_and_files(tmp_path):
    images, labels = _images()
    session = ExplainSession(images[:2], logdir=str(tmp_path / "log"), segmenter="slic",
                             segmenter_params={"n_segments": 8}, normlime_freq=2, **FAST)
    reports, pictures, first = [], [], None
    for epoch in (1, 2, 3):
        ctx = CheckpointContext(epoch=epoch, classifier=BrightnessModel(),
                                checkpoint_dir=str(tmp_path / ("ckpt%d" % epoch)),
                                label_names=BrightnessModel.label_names,
                                dataset=list(zip(images, labels)))
        reports.append(session.on_checkpoint(ctx))
        pictures.append(set(reports[-1].images))
        first = first or reports[-1].explanations["probe_1"]
    session.close()
    assert all(r is not None and not r.errors for r in reports)
    assert session.history == reports
    assert [bool(r.images) for r in reports] == [False, False, True]  # only the latest keeps them
    # NormLIME rebuilt at runs 1 and 3 only; the weights of run 1 serve run 2
    assert [r.weights_file is not None for r in reports] == [True, False, True]
    assert "explain/probe_1/normlime" in pictures[1]
    assert "normlime/drift" in reports[2].scalars
    # the bright probe's explanation puts the left half first
    exp = first
    assert exp.predicted_label == 1
    left = np.unique(exp.segments[:, :16])
    assert set(exp.top_segments(1, 2).tolist()) <= set(left.tolist())
    assert reports[0].scalars["explain/probe_1/deletion_auc"] < \
        reports[0].scalars["explain/probe_1/insertion_auc"]
    # the spread of the probe's weights, how much of its top is certified, the calls spent
    sc = reports[0].scalars
    assert 0 < sc["explain/probe_1/top_weight_se"] < 1
    assert 1 <= sc["explain/probe_1/certified_top"] <= 5
    assert sc["explain/probe_1/num_samples_used"] == exp.settings["num_samples_used"]
    reader = read_run(str(tmp_path / "log"))
    assert steps(reader, "image", "explain/probe_0/lime") == [1, 2, 3]
    assert steps(reader, "scalar", "explain/mean_top_weight_se") == [1, 2, 3]


def test_session_writes_nothing_off_rank_zero(tmp_path, monkeypatch):
    """The rank-0 guard (simulated: a 2-process CPU launch is too heavy for this suite)."""
    monkeypatch.setattr(es, "get_rank", lambda: 1)
    monkeypatch.setattr(sink, "get_rank", lambda: 1)
    images, labels = _images()
    session = ExplainSession(images[:1], logdir=str(tmp_path / "log"), **FAST)
    ctx = CheckpointContext(epoch=1, classifier=BrightnessModel(),
                            checkpoint_dir=str(tmp_path / "ckpt"),
                            dataset=list(zip(images, labels)))
    assert session.on_checkpoint(ctx) is None
    assert session.writer() is None
    assert os.listdir(str(tmp_path)) == []


def test_session_validates_its_options():
    with pytest.raises(ValueError, match="alarm_flip"):
        ExplainSession([], alarm_flip=0)
    with pytest.raises(ValueError, match="probe_labels"):
        ExplainSession(["a.png"], probe_labels=[0, 1])
    with pytest.raises(ValueError, match="num_samples"):
        ExplainSession(["a.png"], num_samples=0)
    with pytest.raises(ValueError, match="stability"):
        ExplainSession(["a.png"], stability="sometimes")
    with pytest.raises(ValueError, match="distinct"):
        ExplainSession(["a.png", "b.png"], probe_names=["x", "x"])
    s = ExplainSession(np.zeros((8, 8, 3), np.uint8), probe_names=["my probe/1"])
    assert s.probe_names == ["my_probe_1"] and len(s.probes) == 1


def test_session_time_budget_skips_checkpoints(monkeypatch):
    """``max_overhead=0.5``: 5 s of training per epoch, 4 s per explained checkpoint."""

    class Clock:
        t = 0.0

        def perf_counter(self):
            return self.t

    clock = Clock()
    monkeypatch.setattr(es, "time", clock)
    monkeypatch.setattr(schedule, "time", clock)
    session = ExplainSession(_images(1)[0], max_overhead=0.5)

    def fake_explain(context):
        clock.t += 4.0
        return context.epoch

    monkeypatch.setattr(session, "explain_checkpoint", fake_explain)
    session.reset_run()
    ran = []
    for epoch in range(1, 7):
        clock.t += 5.0
        ran.append(session.on_checkpoint(CheckpointContext(epoch=epoch, classifier=None,
                                                           is_last=epoch == 6)))
    assert ran == [1, None, None, 4, 5, 6]
    with pytest.raises(ValueError, match="max_overhead"):
        ExplainSession(_images(1)[0], max_overhead=0)


def test_unknown_options_are_refused_by_name():
    """One declared set of options: an unknown one raises TypeError naming it (and listing the
    options) in the session, the hook and the callback alike."""
    from paddlex_interpret.callbacks import ExplainCallback
    from paddlex_interpret.hooks import ExplainHook

    with pytest.raises(TypeError, match=r"unknown explanation option\(s\) num_sample;"):
        ExplainSession(["a.png"], num_sample=10)
    with pytest.raises(TypeError, match="bogus, nmu_samples; the options are num_samples, "):
        ExplainOptions.from_kwargs({"nmu_samples": 1, "bogus": 2})
    with pytest.raises(TypeError, match="nmu_samples"):
        ExplainHook(["a.png"], nmu_samples=10)
    with pytest.raises(TypeError, match="nmu_samples"):
        ExplainCallback(["a.png"], nmu_samples=10)
    with pytest.raises(TypeError, match="bogus"):
        ExplainOptions(bogus=1)
    names = ExplainOptions.names()
    assert names[0] == "num_samples" and {"freq", "max_overhead", "normlime_mode"} <= set(names)
    assert ExplainOptions.from_kwargs({"num_samples": 7}).num_samples == 7


def test_options_are_checked_and_normalised():
    o = ExplainOptions()
    assert (o.num_samples, o.batch_size, o.freq, o.stability, o.max_overhead) == \
        ("auto", 50, 1, "split", None)
    assert o.budget_for_probes() == {"top_k": o.num_features}  # the probes' shown top
    assert o.segmenter_params == {} and o.normlime_kwargs == {}
    assert ExplainOptions(stability=True).stability == "split"
    assert ExplainOptions(stability=None).stability is False
    assert ExplainOptions(max_overhead=1).max_overhead == 1.0
    for name in ("num_samples", "batch_size", "top_k", "num_features", "freq", "normlime_freq",
                 "metrics_freq", "max_images"):
        with pytest.raises(ValueError, match=name):
            ExplainOptions(**{name: 0})
    with pytest.raises(ValueError, match="normlime_mode"):
        ExplainOptions(normlime_mode="slow")
    with pytest.raises(ValueError, match="stability"):
        ExplainOptions(stability="often")
    with pytest.raises(ValueError, match="max_overhead"):
        ExplainOptions(max_overhead=-0.1)


def test_a_session_without_probes_runs_the_alarm_for_a_model_without_gradients(tmp_path,
                                                                               caplog):
    """No probes, no NormLIME: the alarm alone, on a numpy model that reads the watermark as
    blue (no gradients, so no atlas): raised once, with its structured report and one line."""
    import logging

    from helpers import SHAPE_CLASSES, colour_model, shapes
    from paddlex_interpret.core.classifier import FunctionClassifier

    views = shapes()
    labels = [i % 3 for i in range(len(views))]
    session = ExplainSession(None, logdir=str(tmp_path / "log"), normlime=False, metrics=False)
    clf = FunctionClassifier(colour_model(30), label_names=SHAPE_CLASSES)
    with caplog.at_level(logging.INFO, logger="paddlex_interpret"):
        reports = [session.on_checkpoint(CheckpointContext(
            epoch=e, classifier=clf, dataset=list(zip(views, labels)),
            label_names=SHAPE_CLASSES)) for e in (1, 2)]
    assert [[a.name for a in r.alarms] for r in reports] == [["blue"], ["blue"]]
    assert [(k, n) for r in reports for k, n, _ in r.alarm_events] == [("raised", "blue")]
    assert caplog.text.count("shortcut alarm at epoch") == 1
    assert reports[1].alarms[0].first == 1 and reports[1].alarms[0].checkpoints == [1, 2]
    assert reports[1].scalars["alarm/blue"] == 1.0 and reports[1].scalars["alarm/red"] == 0.0
    assert not any(k.startswith("atlas/blue/") for k in reports[1].scalars)  # no gradients
    assert "alarm/blue/evidence" in reports[1].texts and not reports[1].errors
