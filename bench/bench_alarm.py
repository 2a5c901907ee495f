"""The shortcut alarm measured on real training: PaddleX MobileNetV3_small from scratch, a
checkpoint every epoch, ExplainHook attached with its defaults (no probes, no NormLIME, no
metrics: the class atlas and the alarm), on clean data and on data with a shortcut stamped into
every image of one class (training and validation). Writes the section "The shortcut alarm" of
BENCHMARKS.md.

    .venv/bin/python -m bench.bench_alarm                    # 22 trainings, hours on 2 cores
    .venv/bin/python -m bench.bench_alarm --kinds clean watermark --seeds 0 --clean-seeds 0

Data (pxi_testing.shortcuts): ``watermark`` is the demo's data (a 6 px black/white
checker in the bottom-right corner of every blue image), ``patch`` an 8 px magenta square in the
top-left corner of every red image, ``border`` a 2 px yellow frame around every green image (64 px
coloured shapes, 80 training and 20 validation images per class), ``fashion`` real photos: three
Fashion-MNIST classes that look alike (T-shirt, pullover, shirt; Debian's dataset-fashion-mnist,
32 px, 100 and 30 per class) with the watermark on every shirt; ``clean`` the shapes without one.

What each checkpoint's model does is measured first: its *flip rate*, the share of the other
classes' validation images that it gets right (gives to their own class) which stamping the
shortcut turns into the shortcut's class; undefined when it gets fewer than 8 of them right. An
alarm is owed from the first checkpoint whose flip rate reaches 50% to the end of training.
Measured besides: at the first owed and the last checkpoint, which proposer alone (no memory)
finds a region that passes the test (the class atlas of input x gradient maps of the logit, the
same maps of the softmax output, the transplant scan, the class's shared pixels) and the share
of the shortcut class's atlas mass on the shortcut's pixels; at every checkpoint what the alarm costs (seconds in the
hook's worker, forward passes; the gradient atlas and the test timed again offline, one after
the other, at the last checkpoint). The audit of the last checkpoint
(paddlex_interpret.api.audit) is compared with the hook's verdict there.
"""
import argparse
import json
import os
import sys
import tempfile
import time


import numpy as np  # noqa: E402

import paddlex_interpret  # noqa: E402,F401
import paddlex as pdx  # noqa: E402

from bench.report import markdown_table, write_section  # noqa: E402
from pxi_testing.recipes import TRAIN_SETTINGS, train_classifier  # noqa: E402
from paddlex_interpret.adapters.paddlex import PaddleXClassifier  # noqa: E402
from paddlex_interpret.api.audit import audit, gradient_atlas  # noqa: E402
from paddlex_interpret.core import atlas as atlas_mod, saliency  # noqa: E402
from paddlex_interpret.core.intervention import MIN_TARGETS, InterventionTest  # noqa: E402
from paddlex_interpret.core.shortcut import check_shortcuts  # noqa: E402
from paddlex_interpret.hooks import ExplainHook  # noqa: E402
from pxi_testing import shortcuts as S  # noqa: E402

SECTION = "The shortcut alarm"
#: kind -> (data, shortcut kind, the class it is stamped on)
KINDS = {"clean": ("shapes", None, None), "watermark": ("shapes", "watermark", "blue"),
         "patch": ("shapes", "patch", "red"), "border": ("shapes", "border", "green"),
         "fashion": ("fashion", "watermark", "Shirt")}
RECIPE = dict(TRAIN_SETTINGS, num_epochs=10, lr_decay_epochs=(8,))
#: Fashion-MNIST's three look-alike classes at 32 px do not settle at the shapes' learning rate
#: (0.05: validation accuracy 0.3-0.7 from epoch to epoch); 0.01 learns them (0.88)
LEARNING_RATE = {"shapes": 0.05, "fashion": 0.01}
OWED = 0.5
#: the proposers compared (the names of ClassCheck.tested's sources)
PROPOSERS = ("gradient", "softmax", "scan", "shared")


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def make_data(root, kind, seed):
    data, stamp_kind, target = KINDS[kind]
    if data == "fashion":
        return S.fashion_mnist_with_shortcut(root, stamp_kind, target, seed=seed)
    return S.shapes_with_shortcut(root, stamp_kind, target or "blue", seed=seed)


def flip_rate(clf, views, labels, kind, target):
    """The share of the other classes' views the model gets right that stamping the shortcut
    turns into ``target`` (NaN when it gets fewer than MIN_TARGETS of them right)."""
    right = (labels != target) & (clf.predict(views).argmax(1) == labels)
    if right.sum() < MIN_TARGETS:
        return float("nan")
    stamped = np.stack([S.stamp(kind, v) for v in views[right]])
    return float((clf.predict(stamped).argmax(1) == target).mean())


class SoftmaxGradients:
    """Input gradients of the softmax output (the maps the logit's are compared with)."""

    def __init__(self, runner):
        self.runner = runner

    def __call__(self, x, label):
        import paddle

        from paddlex_interpret.adapters.gradients import _gradient_mode

        layer = self.runner.layer
        with _gradient_mode(layer):
            t = paddle.to_tensor(np.asarray(x, np.float32), stop_gradient=False)
            score = paddle.nn.functional.softmax(layer(t), axis=1)[:, int(label)].sum()
            (grad,) = paddle.grad([score], [t])
        return grad.numpy()


def softmax_atlas(clf, views, predicted, n):
    from paddlex_interpret.adapters.gradients import GradientRunner

    runner = GradientRunner(clf)
    fn = SoftmaxGradients(runner)
    maps = [saliency.input_x_gradient(fn, runner.inputs(v[None])[0], int(p))
            for v, p in zip(views, predicted)]
    return atlas_mod.class_atlas(maps, predicted, n, seed=0)


def checkpoint_flip(ckpt, views, labels, kind, target):
    clf = PaddleXClassifier(pdx.load_model(ckpt))
    return flip_rate(clf, views, labels, KINDS[kind][1], target)


def proposers_at(ckpt, views, labels, kind, target):
    """What each proposer finds on one checkpoint's model (no memory), and the share of the
    shortcut class's atlas mass on the shortcut's pixels."""
    clf = PaddleXClassifier(pdx.load_model(ckpt))
    test = InterventionTest(clf, views, labels)
    n = test.n_classes
    logit, _ = gradient_atlas(clf, views, test.predicted, n)
    soft = softmax_atlas(clf, views, test.predicted, n)
    check = check_shortcuts(test, {"gradient": logit.maps, "softmax": soft.maps},
                            exhaustive=True)
    k = check.classes.get(target)
    mask = S.shortcut_mask(KINDS[kind][1], views.shape[1])
    return {"found": {s: bool(k is not None and k.found_by(s))
                      for s in PROPOSERS},
            "share": {"gradient": float(logit.maps[target][mask].sum()),
                      "softmax": float(soft.maps[target][mask].sum())}}


def cost_at(ckpt, views, labels):
    """Seconds of the gradient atlas and of the test (without memory), one after the other."""
    clf = PaddleXClassifier(pdx.load_model(ckpt))
    t0 = time.perf_counter()
    test = InterventionTest(clf, views, labels)
    atlas, _ = gradient_atlas(clf, views, test.predicted, test.n_classes)
    t1 = time.perf_counter()
    check_shortcuts(InterventionTest(clf, views, labels), {"gradient": atlas.maps})
    return {"atlas": t1 - t0, "alarm": time.perf_counter() - t1, "images": len(views)}


def one_run(tmp, kind, seed):
    root = os.path.join(tmp, "%s%d" % (kind, seed))
    ds = make_data(os.path.join(root, "data"), kind, seed)
    hook = ExplainHook(normlime=False, metrics=False)
    t0 = time.perf_counter()
    trained = train_classifier(ds, os.path.join(root, "model"), hook=hook,
                               save_interval_epochs=1, **dict(
                                   RECIPE, seed=seed, learning_rate=LEARNING_RATE[KINDS[kind][0]]))
    run = {"train_seconds": time.perf_counter() - t0, "accuracy": trained.accuracy,
           "raised": {r.epoch: [a.name for a in r.alarms] for r in hook.history},
           "regions": {r.epoch: {a.name: list(a.region) for a in r.alarms} for r in hook.history},
           "worker": {r.epoch: {k: r.scalars.get(k) for k in ("atlas/seconds", "alarm/seconds",
                                                              "alarm/forward_passes")}
                      for r in hook.history},
           "alarms": [a.to_dict() for a in hook.alarms], "checkpoints": {}}
    val = ds.val_items()
    clf = PaddleXClassifier(trained.model)
    views = np.stack([clf.view(p) for p, _, _ in val])
    labels = np.array([y for _, y, _ in val])
    last = os.path.join(trained.save_dir, "epoch_%d" % RECIPE["num_epochs"])
    if KINDS[kind][1] is not None:
        target = ds.labels.index(KINDS[kind][2])
        for e in range(1, RECIPE["num_epochs"] + 1):
            ckpt = os.path.join(trained.save_dir, "epoch_%d" % e)
            run["checkpoints"][e] = {"flip": checkpoint_flip(ckpt, views, labels, kind, target)}
        owed = owed_epochs(run)
        for e in sorted({owed[0], owed[-1]}) if owed else []:  # the first owed and the last
            ckpt = os.path.join(trained.save_dir, "epoch_%d" % e)
            run["checkpoints"][e].update(proposers_at(ckpt, views, labels, kind, target))
    result = audit(pdx.load_model(last), [(p, y) for p, y, _ in val])
    run["audit"] = [a.name for a in result.alarms]
    run["audit_regions"] = {a.name: list(a.region) for a in result.alarms}
    run["cost"] = cost_at(last, views, labels)
    log("  %s seed %d: raised %s, audit %s, flips %s" % (
        kind, seed, run["raised"], run["audit"],
        [round(c["flip"], 2) for c in run["checkpoints"].values()]))
    return run


def on_shortcut(kind, region):
    """Whether an alarm's region touches the shortcut's pixels."""
    x0, y0, x1, y1 = region
    size = 32 if KINDS[kind][0] == "fashion" else 64
    return bool(S.shortcut_mask(KINDS[kind][1], size)[y0:y1, x0:x1].any())


def hit(kind, run, epoch):
    """The hook raised the alarm for the shortcut's class at ``epoch``, on the shortcut."""
    region = run["regions"].get(str(epoch), {}).get(KINDS[kind][2])
    return region is not None and on_shortcut(kind, region)


def false_alarms(kind, run):
    """The alarms the hook raised that are not the shortcut's: another class, or the
    shortcut's class at a region off the shortcut (``"blue (elsewhere)"``)."""
    target, out = KINDS[kind][2], set()
    for regions in run["regions"].values():
        for name, region in regions.items():
            if name != target:
                out.add(name)
            elif not on_shortcut(kind, region):
                out.add("%s (elsewhere)" % name)
    return sorted(out)


def owed_epochs(run):
    flips = {int(e): c["flip"] for e, c in run["checkpoints"].items()}
    first = [e for e in sorted(flips) if flips[e] >= OWED]
    return list(range(first[0], max(flips) + 1)) if first else []


def _span(epochs):
    return "%d-%d" % (epochs[0], epochs[-1]) if epochs else "-"


def run_rows(runs):
    rows = []
    for (kind, seed), run in sorted(runs.items()):
        raised = {int(e): names for e, names in run["raised"].items()}
        target = KINDS[kind][2]
        owed = owed_epochs(run) if target else []
        hits = [e for e in owed if hit(kind, run, e)]
        wrong = false_alarms(kind, run)
        last = raised[max(raised)]
        flips = " ".join("%.0f" % (100 * c["flip"]) for _, c in sorted(
            ((int(e), c) for e, c in run["checkpoints"].items())))
        rows.append([kind, seed, "%.2f" % run["accuracy"], flips or "-", _span(owed),
                     ", ".join(str(e) for e in sorted(raised) if raised[e]) or "-",
                     "%d/%d" % (len(hits), len(owed)) if owed else "-",
                     ", ".join(wrong) or "none", ", ".join(last) or "none",
                     ", ".join(run["audit"]) or "none",
                     "yes" if sorted(last) == sorted(run["audit"]) else "**no**"])
    return rows


def summary_rows(runs):
    rows = []
    for kind in KINDS:
        mine = [r for (k, _), r in runs.items() if k == kind]
        if not mine:
            continue
        target = KINDS[kind][2]
        wrong = sum(bool(false_alarms(kind, r)) for r in mine)
        agree = sum(sorted(r["raised"][max(r["raised"], key=int)]) == sorted(r["audit"])
                    for r in mine)
        if target is None:
            rows.append([kind, len(mine), "-", "-", "%d of %d runs" % (wrong, len(mine)),
                         "%d/%d" % (agree, len(mine))])
            continue
        owed = sum(len(owed_epochs(r)) for r in mine)
        hits = sum(hit(kind, r, e) for r in mine for e in owed_epochs(r))
        rows.append([kind, len(mine), "%d of %d runs" % (sum(bool(owed_epochs(r)) for r in mine),
                                                           len(mine)),
                     "%d/%d (%.0f%%)" % (hits, owed, 100.0 * hits / owed) if owed else "-",
                     "%d of %d runs" % (wrong, len(mine)), "%d/%d" % (agree, len(mine))])
    return rows


def proposer_rows(runs):
    rows = []
    for kind in KINDS:
        if KINDS[kind][1] is None:
            continue
        for which, pick in (("first owed", 0), ("last", -1)):
            cks = [r["checkpoints"][str(owed_epochs(r)[pick])]  # JSON keys: strings
                   for (k, _), r in runs.items() if k == kind and owed_epochs(r)]
            cks = [c for c in cks if "found" in c]
            if not cks:
                continue
            found = {s: sum(c["found"].get(s, False) for c in cks) for s in PROPOSERS}
            rows.append([kind, which, len(cks)]
                        + ["%d" % found[s] for s in PROPOSERS]
                        + [", ".join("%.2f / %.2f" % (c["share"]["gradient"],
                                                      c["share"]["softmax"]) for c in cks)])
    return rows


def cost_rows(runs):
    worker = [w for r in runs.values() for w in r["worker"].values()
              if w.get("alarm/seconds") is not None]
    offline = [r["cost"] for r in runs.values()]
    med = lambda xs: float(np.median(xs)) if xs else float("nan")  # noqa: E731
    return [["in the hook's worker (every checkpoint of every run, beside training)",
             "%.2f" % med([w["atlas/seconds"] for w in worker if w.get("atlas/seconds")]),
             "%.2f" % med([w["alarm/seconds"] for w in worker]),
             "%.0f" % med([w["alarm/forward_passes"] for w in worker])],
            ["offline, the last checkpoint of every run (the bench process, one after the other)",
             "%.2f" % med([c["atlas"] for c in offline]),
             "%.2f" % med([c["alarm"] for c in offline]),
             "-"]]


def report(runs):
    runs = {k: v for k, v in runs.items()}
    text = [
        "Training: MobileNetV3_small from scratch, %d epochs (learning rate %.2g, 0.01 for "
        "Fashion-MNIST, divided by 10 after epoch %d), a checkpoint per epoch, "
        "ExplainHook(normlime=False, metrics=False) with its defaults (all validation images: "
        "60 for the shapes, 90 for Fashion-MNIST). *flip rates*: per checkpoint, the share (%%) "
        "of the other classes' validation images the model gets right that stamping the "
        "shortcut turns into its class (what the model does, measured apart from the alarm; "
        "nan: it gets fewer than 8 right). An alarm is owed from the first checkpoint at %.0f%% "
        "or more to the end; it counts as raised when the hook's alarm for the shortcut's class "
        "is on at that checkpoint with a region on the shortcut's pixels."
        % (RECIPE["num_epochs"], RECIPE["learning_rate"], RECIPE["lr_decay_epochs"][0],
           100 * OWED),
        markdown_table(["data", "seed", "val acc", "flip rates (%) per checkpoint",
                        "owed", "alarm raised at", "owed and raised (on the shortcut)",
                        "false alarms (another class, or elsewhere)",
                        "hook at the last checkpoint", "audit of the last checkpoint", "agree"],
                       run_rows(runs)),
        markdown_table(["data", "runs", "runs owed an alarm", "owed checkpoints raised",
                        "runs with a false alarm",
                        "audit agrees with the hook at the end"], summary_rows(runs)),
        "Which proposer finds the shortcut, at the first checkpoint owed an alarm and at the "
        "last one of each run, each alone and without the memory of earlier checkpoints (the "
        "hook uses the logit atlas, the scan, the shared pixels and its memory): runs where a region it proposes "
        "passes the test. The proposers: the class atlas of input x gradient maps of the logit "
        "(the hook's), the same maps of the softmax probability, the transplant scan, and the "
        "pixels the class's images share (moved as a mask in their bounding box). Last "
        "column, per run: the share of the shortcut class's atlas mass on the shortcut's pixels "
        "(logit / softmax).",
        markdown_table(["data", "checkpoint", "runs", "gradient (logit) finds it",
                        "gradient (softmax)", "transplant scan", "shared pixels",
                        "atlas mass on the shortcut (logit / softmax)"], proposer_rows(runs)),
        "Cost per checkpoint (median seconds; the atlas is the gradient class atlas the hook "
        "drew before the alarm was tested by intervention, the alarm is the test):",
        markdown_table(["where", "gradient atlas (s)", "alarm test (s)", "forward passes"],
                       cost_rows(runs)),
    ]
    return "\n\n".join(text)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kinds", nargs="+", default=list(KINDS), choices=list(KINDS))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--clean-seeds", type=int, nargs="+", default=list(range(10)))
    ap.add_argument("--cache", default=None, help="read/write the per-run numbers here (JSON)")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    if "fashion" in args.kinds and not S.fashion_mnist_available():
        raise SystemExit("Fashion-MNIST is missing: apt-get install dataset-fashion-mnist")
    runs = {}
    if args.cache and os.path.exists(args.cache):
        with open(args.cache) as f:
            runs = {tuple(json.loads(k)): v for k, v in json.load(f).items()}
    plan = [(k, s) for k in args.kinds for s in (args.clean_seeds if k == "clean" else args.seeds)]
    with tempfile.TemporaryDirectory(prefix="pxi-alarm-") as tmp:
        for kind, seed in plan:
            if [kind, seed] not in [list(k) for k in runs]:
                runs[(kind, seed)] = json.loads(json.dumps(one_run(tmp, kind, seed)))
                if args.cache:
                    with open(args.cache, "w") as f:
                        json.dump({json.dumps(list(k)): v for k, v in runs.items()}, f)
    runs = {tuple(k): v for k, v in runs.items() if tuple(k) in plan}
    text = report(runs)
    print(text)
    if not args.no_write:
        write_section(SECTION, text, "python -m bench.bench_alarm")


if __name__ == "__main__":
    main()
