"""Each stage of a checkpoint on its own (paddlex_interpret.training.stages, atlas_stage, sink):
the NormLIME stage, the probe's LIME, its metrics, the class atlas and the shortcut alarm, and
the VisualDL sink, each called directly on a tiny real Paddle network whose behaviour is known
by construction (``LeftBrightness``: it reads the brightness of the left half of the image, and
nothing else), or on the numpy shapes model of the session tests for the alarm. The end-to-end
runs (hook, callback, watcher) are in the other files of this folder.
"""
import os

import numpy as np
import pytest

import paddlex_interpret  # noqa: F401  (before paddle / paddlex)
from helpers import FAST, read_run, steps
from paddlex_interpret.core.normlime.weights import GlobalWeights
from paddlex_interpret.core.segmentation import MemoSegmenter, make_segmenter
from paddlex_interpret.training.atlas_stage import AtlasStage
from paddlex_interpret.training.builders import NormLimeBuilder
from paddlex_interpret.training.options import ExplainOptions
from paddlex_interpret.training.report import CheckpointJob, CheckpointReport
from paddlex_interpret.training.sink import VisualDLSink, tag_part
from paddlex_interpret.training.stages import NormLimeStage, ProbeStage

NAMES = ["dark", "bright"]
SEGMENTS = {"segmenter": "slic", "segmenter_params": {"n_segments": 8}}


def left_brightness_classifier():
    """A real ``paddle.nn.Layer`` (gradients, a traced program) whose logits are
    ``±8 (mean brightness of the left half - 0.5)``: class ``bright`` is the left half."""
    import paddle

    from paddlex_interpret.adapters.layer import LayerClassifier

    class LeftBrightness(paddle.nn.Layer):
        def forward(self, x):
            z = 8.0 * (x[:, :, :, :16].mean(axis=[1, 2, 3]) - 0.5)
            return paddle.stack([-z, z], axis=1)

    net = LeftBrightness()
    net.eval()
    return LayerClassifier(net, label_names=NAMES, backend="dygraph"), net


def images(n=12, seed=0):
    """32 px noise; the odd ones have a bright left half (class ``bright``)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        im = rng.integers(0, 60, (32, 32, 3)).astype(np.uint8)
        if i % 2:
            im[:, :16] = rng.integers(200, 256, (32, 16, 3))
        out.append(im)
    return out, [i % 2 for i in range(n)]


@pytest.fixture(scope="module")
def brightness():
    return left_brightness_classifier()


def context(classifier, layer, epoch=1, **job):
    items, labels = images()
    return CheckpointJob(epoch=epoch, dataset=list(zip(items, labels)), **job).context(
        classifier, layer)


def options(**kw):
    return ExplainOptions(**dict(FAST, **SEGMENTS, **kw))


def normlime_weights(classifier, layer, tmp_path=None, epochs=(1,)):
    """The NormLIME stage over ``epochs`` checkpoints; its reports and last weights."""
    o = options()
    stage = NormLimeStage(o, NormLimeBuilder(o))
    reports, gw = [], None
    for epoch in epochs:
        ckpt = None if tmp_path is None else str(tmp_path / ("epoch_%d" % epoch))
        reports.append(CheckpointReport(epoch=epoch))
        gw = stage.run(context(classifier, layer, epoch, checkpoint_dir=ckpt), reports[-1])
    return reports, gw


def test_the_normlime_stage_writes_comparable_weights_per_checkpoint(brightness, tmp_path):
    """The weights file in the checkpoint directory (the hook's name) is the weights returned;
    the concept the bright class weighs most is a brighter colour than the dark class's; the
    second checkpoint scores the drift from the first (the same model: none) and names each
    class's top concepts in its own text card."""
    classifier, layer = brightness
    reports, gw = normlime_weights(classifier, layer, tmp_path, epochs=(1, 2))
    path = str(tmp_path / "epoch_2" / "normlime_weights.npz")
    assert reports[1].weights_file == path
    saved = GlobalWeights.load(path)
    np.testing.assert_array_equal(saved.weights, gw.weights)
    assert saved.class_names == NAMES and saved.codebook is not None
    colours = gw.codebook.concept_colours().astype(float).mean(axis=1)
    assert colours[gw.top_concepts(1, 1)[0]] > colours[gw.top_concepts(0, 1)[0]]
    assert "normlime/drift" not in reports[0].scalars
    assert reports[1].scalars["normlime/drift"] == pytest.approx(0.0, abs=1e-12)
    assert reports[1].scalars["normlime/top_concepts_jaccard"] == 1.0
    assert sorted(reports[1].texts) == ["normlime/top_concepts/bright",
                                        "normlime/top_concepts/dark"]
    assert reports[1].texts["normlime/top_concepts/bright"].startswith("bright (fast weights")


def test_the_probe_stage_explains_what_the_network_reads(brightness):
    """LIME of a bright-left probe puts the left half first; with NormLIME weights the filtered
    weights are the API's product (``combine``) of LIME's and each superpixel's concept weight
    for the label; the panels of both are rendered."""
    from paddlex_interpret.core.normlime import combine

    classifier, layer = brightness
    _, gw = normlime_weights(classifier, layer)
    o = options()
    stage = ProbeStage(o, MemoSegmenter(make_segmenter(o.segmenter, seed=o.seed,
                                                       **o.segmenter_params)))
    probe = images()[0][1]
    report = CheckpointReport(epoch=1)
    exp = stage.run(context(classifier, layer), report, "probe_0", probe, None, False, gw,
                    gw.codebook)
    assert exp.predicted_label == 1 and report.explanations["probe_0"] is exp
    left = set(np.unique(exp.segments[:, :16]).tolist())
    assert set(exp.top_segments(1, 2).tolist()) <= left
    concepts = gw.codebook.assign(exp.image, exp.segments)
    np.testing.assert_array_equal(exp.extra["normlime"], gw.weights[exp.labels][:, concepts])
    np.testing.assert_array_equal(exp.extra["combined"],
                                  combine(exp.weights, exp.extra["normlime"]))
    assert set(report.images) == {"explain/probe_0/lime", "explain/probe_0/normlime"}
    assert report.scalars["explain/probe_0/probability"] == pytest.approx(
        float(classifier(exp.image[None])[0, 1]), abs=1e-5)
    assert not any(k.endswith("_auc") for k in report.scalars)  # no metrics asked


def test_the_metrics_score_the_explanation_against_the_network(brightness):
    """Deleting the superpixels LIME ranks first hurts the prediction sooner than inserting
    them helps it from nothing; the two halves of the samples agree on the top superpixels;
    a reversed ranking scores worse (the scores follow the weights, not the image)."""
    from paddlex_interpret.core import metrics
    from paddlex_interpret.core.fill import fill_value

    classifier, layer = brightness
    o = options()
    stage = ProbeStage(o, MemoSegmenter(make_segmenter(o.segmenter, seed=o.seed,
                                                       **o.segmenter_params)))
    report = CheckpointReport(epoch=1)
    exp = stage.run(context(classifier, layer), report, "p", images()[0][1], 1, True)
    sc = report.scalars
    assert sc["explain/p/deletion_auc"] < sc["explain/p/insertion_auc"]
    reversed_deletion = metrics.deletion_auc(
        classifier, exp.image, exp.segments, -exp.weights_for(1), 1, fill=fill_value(exp),
        batch_size=o.batch_size, num_steps=o.metric_steps)
    assert sc["explain/p/deletion_auc"] < reversed_deletion
    assert 0.0 <= sc["explain/p/stability_jaccard"] <= 1.0
    assert -1.0 <= sc["explain/p/stability_spearman"] <= 1.0
    assert "explain/p/normlime_deletion_auc" not in sc  # no NormLIME weights given


def test_the_atlas_stage_maps_where_the_network_looks(brightness):
    """The class atlas of the network's gradients: every map of the bright class lies on the
    left half (the right half has no gradient at all); scores per class; no alarm asked."""
    classifier, layer = brightness
    stage = AtlasStage(options(alarm=False, atlas_max_images=12))
    report = CheckpointReport(epoch=1)
    atlas = stage.run(context(classifier, layer), report)
    bright = np.asarray(atlas.maps[1])
    assert atlas.counts[1] > 0 and np.abs(bright[:, 16:]).sum() == 0.0
    assert np.abs(bright[:, :16]).sum() > 0.0
    assert report.scalars["atlas/images"] == 12.0
    assert "atlas/bright/concentration" in report.scalars
    assert "atlas/bright" in report.images
    assert not report.alarms and not any(k.startswith("alarm/") for k in report.scalars)


def test_the_alarm_stage_raises_once_and_remembers(tmp_path):
    """The shapes model that reads the watermark as blue (no gradients: no atlas): the alarm is
    raised for blue at the first checkpoint (one event, its evidence as text) and held at the
    second (no new event), from the stage's memory; a reset forgets it."""
    from helpers import SHAPE_CLASSES, colour_model, shapes
    from paddlex_interpret.core.classifier import FunctionClassifier

    views = shapes()
    dataset = list(zip(views, [i % 3 for i in range(len(views))]))
    clf = FunctionClassifier(colour_model(30), label_names=SHAPE_CLASSES)
    stage = AtlasStage(options())
    reports = []
    for epoch in (1, 2):
        reports.append(CheckpointReport(epoch=epoch))
        stage.run(CheckpointJob(epoch=epoch, dataset=dataset).context(clf), reports[-1],
                  atlas=False)
    assert [[a.name for a in r.alarms] for r in reports] == [["blue"], ["blue"]]
    assert [(k, n) for r in reports for k, n, _ in r.alarm_events] == [("raised", "blue")]
    assert reports[1].scalars["alarm/blue"] == 1.0 and reports[1].scalars["alarm/red"] == 0.0
    assert "alarm/blue/evidence" in reports[0].texts
    assert reports[1].alarm_state["checked"] == [1, 2]
    stage.reset()
    assert stage.memory.state()["checked"] == []


def test_the_sink_writes_a_report_visualdl_reads_back(tmp_path, monkeypatch):
    """Images, the finite scalars (a NaN is left out), texts and errors at the report's epoch;
    a second sink given the first one's record file appends to it (one file: what VisualDL
    shows); off rank 0 nothing is written."""
    from paddlex_interpret.training import sink as sink_module

    logdir = str(tmp_path / "log")
    report = CheckpointReport(epoch=3, scalars={"explain/a": 0.5, "explain/nan": float("nan")},
                              images={"explain/p/lime": np.full((8, 8, 3), 200, np.uint8)},
                              texts={"alarm/blue/evidence": "why"}, errors=["it broke"])
    first = VisualDLSink(logdir)
    first.write(report)
    record = first.log_file
    first.close()
    second = VisualDLSink(logdir)
    second.log_files[os.path.abspath(logdir)] = os.path.basename(record)
    second.write(CheckpointReport(epoch=4, scalars={"explain/a": 0.25}))
    second.close()
    assert [f for f in os.listdir(logdir) if "vdlrecords" in f] == [os.path.basename(record)]
    reader = read_run(logdir)
    assert steps(reader, "scalar", "explain/a") == [3, 4]
    assert "explain/nan" not in reader.get_tags().get("scalar", [])
    assert steps(reader, "image", "explain/p/lime") == [3]
    assert reader.get_data("text", "alarm/blue/evidence")[0].text.encoded_text_string == "why"
    assert reader.get_data("text", "explain/errors")[0].text.encoded_text_string == "it broke"
    monkeypatch.setattr(sink_module, "get_rank", lambda: 1)  # forced: another rank of a job
    VisualDLSink(str(tmp_path / "quiet")).write(report)
    assert not (tmp_path / "quiet").exists()


def test_one_tag_rule_for_probes_and_classes():
    assert tag_part("my probe/1", "probe") == "my_probe_1"
    assert tag_part("T-shirt/top", "0") == "T-shirt_top"
    assert tag_part("  ", "probe") == "probe"
