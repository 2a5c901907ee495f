"""The shortcut alarm measured: tiny PaddleX classifiers trained on generated shapes, clean and with
a shortcut stamped into every image of one class (training and validation), audited at every
checkpoint (Grad-CAM over the validation images, paddlex_interpret.api.audit). Per class and
checkpoint: concentration and specificity (paddlex_interpret.core.atlas); the alarm fires for a
class that passes both thresholds at two checkpoints in a row. Writes the section "The shortcut
alarm" of BENCHMARKS.md.

    .venv/bin/python bench/bench_alarm.py                  # ~25 min on 2 cores
    .venv/bin/python bench/bench_alarm.py --clean-seeds 0 1 --shortcut-seeds 0

Shortcuts: ``watermark`` (the demo's: a 6 px black/white checker in the bottom-right corner of
every blue image) and ``patch`` (an 8 px magenta square in the top-left corner of every red
image). The models: MobileNetV3_small, tests/conftest.py's recipe with 6 epochs (``ALARM_RECIPE``;
64 px, 80 training and 20 validation images per class), a checkpoint per epoch.
"""
import argparse
import json
import os
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))

import numpy as np  # noqa: E402

import paddlex_interpret  # noqa: E402,F401
import paddlex as pdx  # noqa: E402

from bench.report import markdown_table, write_section  # noqa: E402
from conftest import ALARM_RECIPE, SHAPES_KWARGS, train_classifier  # noqa: E402
from paddlex_interpret.api.audit import audit  # noqa: E402
from paddlex_interpret.core import atlas as A  # noqa: E402
from paddlex_interpret.core.images import load_image  # noqa: E402
from paddlex_interpret.testing.synthetic import make_shapes_dataset, stamp_watermark  # noqa

SECTION = "The shortcut alarm"
PATCH = (0, 0, 8, 8)  # x0, y0, x1, y1
SHORTCUT_CLASS = {"watermark": "blue", "patch": "red"}
#: a model relies on its shortcut when stamping it turns at least this share of the other
#: classes' images into the shortcut's class
RELIED = 0.25



def log(*a):
    print(*a, file=sys.stderr, flush=True)


def stamp(kind, img, ds):
    """``img`` (uint8 RGB) with the shortcut of ``kind`` stamped on."""
    if kind == "watermark":
        return stamp_watermark(img, ds.watermark_box)
    x0, y0, x1, y1 = PATCH
    img[y0:y1, x0:x1] = (255, 0, 255)
    return img


def make_data(root, kind, seed):
    import cv2

    kw = dict(SHAPES_KWARGS, seed=seed)
    if kind == "watermark":
        kw.update(watermark_class="blue", watermark_splits=("train", "val"))
    ds = make_shapes_dataset(root, **kw)
    if kind == "patch":
        label = ds.labels.index("red")
        for path, y, _ in ds.train_items() + ds.val_items():
            if int(y) == label:
                cv2.imwrite(path, stamp(kind, load_image(path), ds)[:, :, ::-1])
    return ds


def reliance(model, ds, kind):
    """Share of the other classes' val images the shortcut alone turns into its class: does the
    model read it (an alarm is owed), or only the object (silence is right)?"""
    target = SHORTCUT_CLASS[kind]
    others = [p for p, y, _ in ds.val_items() if ds.labels[int(y)] != target]
    turned = sum(model.predict(np.ascontiguousarray(stamp(kind, load_image(p), ds)[:, :, ::-1]),
                               topk=1)[0]["category"] == target for p in others)
    return turned / len(others)


def train(ds, save_dir, seed):
    settings = dict(ALARM_RECIPE, seed=seed)
    train_classifier(ds, save_dir, save_interval_epochs=1, **settings)
    return [os.path.join(save_dir, "epoch_%d" % e)
            for e in range(1, settings["num_epochs"] + 1)]


def one_run(tmp, kind, seed):
    """``{"checkpoints": per checkpoint {class name: [concentration, specificity, images]},
    "reliance": the last model's on the shortcut (None for clean data)}``."""
    root = os.path.join(tmp, "%s%d" % (kind, seed))
    ds = make_data(os.path.join(root, "data"), kind, seed)
    out = []
    for ckpt in train(ds, os.path.join(root, "model"), seed):
        model = pdx.load_model(ckpt)
        result = audit(model, [p for p, _, _ in ds.val_items()], max_images=None, seed=0)
        out.append({k: list(v) for k, v in result.atlas.scores().items()})
    rel = None if kind == "clean" else reliance(model, ds, kind)
    log("  %s seed %d: %s, reliance %s" % (kind, seed, out[-1], rel))
    return {"checkpoints": out, "reliance": rel}


def fires(checkpoints, conc, spec, patience=2):
    """The classes the alarm fires for over a run's checkpoints (thresholds given)."""
    alarm = A.ShortcutAlarm(patience)
    fired = set()
    for scores in checkpoints:
        found = [{"class": name, "name": name} for name, (c, s, _) in scores.items()
                 if c >= conc and s >= spec]
        fired |= {f["name"] for f in alarm.update(found)}
    return fired


def report(runs, conc, spec):
    rows, false_alarms, clean_runs = [], 0, 0
    for (kind, seed), run in sorted(runs.items()):
        checkpoints, rel = run["checkpoints"], run["reliance"]
        fired = fires(checkpoints, conc, spec)
        target = SHORTCUT_CLASS.get(kind)
        last = checkpoints[-1]
        cells = ", ".join("%s %.1f / %.2f" % (n, c, s) for n, (c, s, _) in sorted(last.items()))
        if kind == "clean":
            clean_runs += 1
            false_alarms += bool(fired)
            verdict = "silent" if not fired else "**false alarm: %s**" % sorted(fired)
        elif fired == {target}:
            verdict = "fires for %s only" % target
        elif not fired and rel < RELIED:
            verdict = "silent: this model does not read the shortcut"
        else:
            verdict = "**fires for %s (shortcut in %s)**" % (sorted(fired), target)
        rows.append([kind, seed, "-" if rel is None else "%.0f%%" % (100 * rel), cells,
                     " -> ".join("%.1f" % max([c for c, _, _ in ck.values()] or [0])
                                 for ck in checkpoints), verdict])
    return rows, false_alarms, clean_runs


def hits(runs, conc, spec):
    """``(hits, relied runs, silent, other shortcut runs)``."""
    relied = [(k, r) for k, r in runs.items() if k[0] != "clean" and r["reliance"] >= RELIED]
    other = [(k, r) for k, r in runs.items() if k[0] != "clean" and r["reliance"] < RELIED]
    return (sum(fires(r["checkpoints"], conc, spec) == {SHORTCUT_CLASS[k[0]]} for k, r in relied),
            len(relied), sum(not fires(r["checkpoints"], conc, spec) for _, r in other),
            len(other))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clean-seeds", type=int, nargs="+", default=list(range(10)))
    ap.add_argument("--shortcut-seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--cache", default=None, help="read/write the per-run scores here (JSON)")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    runs = {}
    if args.cache and os.path.exists(args.cache):
        with open(args.cache) as f:
            runs = {tuple(json.loads(k)): v for k, v in json.load(f).items()}
        runs = {k: v for k, v in runs.items()  # a shortcut run needs its reliance
                if isinstance(v, dict) and (k[0] == "clean" or v["reliance"] is not None)
                or (isinstance(v, list) and k[0] == "clean")}
        runs = {k: v if isinstance(v, dict) else {"checkpoints": v, "reliance": None}
                for k, v in runs.items()}
    plan = ([("clean", s) for s in args.clean_seeds]
            + [(k, s) for k in ("watermark", "patch") for s in args.shortcut_seeds])
    with tempfile.TemporaryDirectory(prefix="pxi-alarm-") as tmp:
        for kind, seed in plan:
            if (kind, seed) not in runs:
                runs[(kind, seed)] = one_run(tmp, kind, seed)
                if args.cache:
                    with open(args.cache, "w") as f:
                        json.dump({json.dumps(k): v for k, v in runs.items()}, f)
    runs = {k: v for k, v in runs.items() if k in plan}
    conc, spec = A.ALARM_CONCENTRATION, A.ALARM_SPECIFICITY
    rows, false_alarms, clean_runs = report(runs, conc, spec)
    shortcut = [c for (kind, _), r in runs.items() if kind != "clean"
                for c, _, _ in [r["checkpoints"][-1].get(SHORTCUT_CLASS[kind], (np.nan, 0, 0))]]
    clean = [c for (kind, _), r in runs.items() if kind == "clean"
             for ck in r["checkpoints"][1:] for c, _, _ in ck.values()]
    text = "\n\n".join([
        "Thresholds (paddlex_interpret.core.atlas): concentration >= %.1f and specificity >= "
        "%.2f at 2 checkpoints in a row. Per run: how much the final model relies on the "
        "shortcut (the share of the other classes' val images that stamping it turns into its "
        "class; %.0f%% or more counts as relying on it), the last checkpoint's concentration / "
        "specificity per predicted class, the highest concentration per checkpoint, and the "
        "alarm's verdict over the run." % (conc, spec, 100 * RELIED),
        markdown_table(["data", "seed", "reliance on the shortcut",
                        "last checkpoint: class concentration / specificity",
                        "max concentration per checkpoint", "alarm"], rows),
        "Hits: the alarm fired for the shortcut's class (and no other) in %d of the %d shortcut "
        "runs whose model relies on its shortcut; it fired for none in %d of the %d whose "
        "model does not." % hits(runs, conc, spec),
        "How the thresholds were chosen: on the first run of each kind (seed 0), between the "
        "clean classes (concentration at most 2.5, specificity at most 0.85) and the shortcut "
        "classes of the models that read them (concentration 8 and more, specificity 0.99), "
        "near the geometric middle of the concentrations; the other runs were not seen.",
        "False alarms: %d of %d clean runs. Concentration of the shortcut class at the last "
        "checkpoint: %s; of every class of the clean runs from checkpoint 2 on: max %.2f, "
        "median %.2f." % (false_alarms, clean_runs, ", ".join("%.1f" % c for c in shortcut),
                          max(clean or [np.nan]), float(np.median(clean)) if clean else np.nan),
    ])
    print(text)
    if not args.no_write:
        write_section(SECTION, text, "python bench/bench_alarm.py")


if __name__ == "__main__":
    main()
