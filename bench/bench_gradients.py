"""Gradient explanations against LIME on the coloured shapes (the tests' model and recipe, one
model per training seed): the pointing game of Grad-CAM, SmoothGrad, Integrated Gradients and
LIME on every held-out image of the classes the model provably decides on their object, and the
seconds of one explanation of each. Writes the section "Gradient methods" of BENCHMARKS.md.

    .venv/bin/python -m bench.bench_gradients               # ~6 min on 2 cores
    .venv/bin/python -m bench.bench_gradients --seeds 0     # one training seed

Pointing: the peak pixel of the method's map on the object (gradient methods), and the top
superpixel (quickshift, PaddleX 1.3 settings) at least half on the object (every method; for the
gradient methods a superpixel's score is its mean of the map). A class is *relied on* when greying
its object out lowers its probability by more than 0.3 on average.
"""
import argparse
import os
import sys
import tempfile
import time


import numpy as np  # noqa: E402

import paddlex_interpret  # noqa: E402,F401
import paddlex as pdx  # noqa: E402

from bench.report import markdown_table, write_section  # noqa: E402
from pxi_testing.recipes import SHAPES_KWARGS, TRAIN_SETTINGS, train_classifier  # noqa: E402
from paddlex_interpret import LimeExplainer  # noqa: E402
from paddlex_interpret.adapters.paddlex import PaddleXClassifier  # noqa: E402
from paddlex_interpret.core.segmentation import make_segmenter  # noqa: E402
from pxi_testing.synthetic import make_shapes_dataset  # noqa: E402
from pxi_testing.reliance import (object_reliance, peak_on_object,  # noqa: E402
                                               top_on_object)

SECTION = "Gradient methods"
METHODS = (("gradcam", "Grad-CAM", {}),
           ("smoothgrad", "SmoothGrad (25 samples)", {"n_samples": 25}),
           ("integrated_gradients", "Integrated Gradients (32 steps)", {"steps": 32}),
           ("lime", "LIME (N=1000, defaults: fill='auto')",
            {"num_samples": 1000, "fill": "auto"}),
           ("lime_black", "LIME (N=1000, fill='black' as PaddleX 1.3)",
            {"num_samples": 1000, "fill": "black"}))


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def one_image(model, lime_clf, segmenter, path, label, mask):
    """``{method: (peak hit or None, top-superpixel hit, seconds)}`` for one image."""
    out = {}
    view = lime_clf.view(path)
    seg = segmenter(view)
    for key, _, kw in METHODS:
        t = time.perf_counter()
        if key.startswith("lime"):
            exp = LimeExplainer(lime_clf, seed=0, **kw).explain(
                view, labels=[label], segments=segmenter(view))
            t = time.perf_counter() - t
            weights, peak = exp.weights[0], None
        else:
            exp = getattr(pdx.interpret, key)(path, model, labels=[label], segmenter=None, **kw)
            t = time.perf_counter() - t
            heat = exp.heatmap(label)
            peak = peak_on_object(heat, mask)
            counts = np.maximum(np.bincount(seg.ravel(), minlength=seg.max() + 1), 1)
            weights = np.bincount(seg.ravel(), weights=exp.heatmap(label, normalize=False).ravel(),
                                  minlength=seg.max() + 1) / counts
        out[key] = (peak, top_on_object(weights, seg, mask), t)
    return out


def one_seed(seed, tmp):
    ds = make_shapes_dataset(os.path.join(tmp, "data"), **SHAPES_KWARGS)
    settings = dict(TRAIN_SETTINGS, seed=seed)
    trained = train_classifier(ds, os.path.join(tmp, "model%d" % seed), **settings)
    model = trained.model
    clf = PaddleXClassifier(model, backend="dygraph")
    items = ds.val_items()
    reliance = object_reliance(clf, [(clf.view(p), label, ds.mask_for(p))
                                     for p, label, _ in items])
    segmenter = make_segmenter("quickshift", seed=0)
    lime_clf = PaddleXClassifier(model)
    got = {}
    for path, label, _ in items:
        label = int(label)
        if reliance[label] <= 0.3:
            continue
        res = one_image(model, lime_clf, segmenter, path, label, ds.mask_for(path))
        for key, value in res.items():
            got.setdefault((key, label), []).append(value)
    log("  training seed %d: accuracy %.3f, reliance %s" % (seed, trained.accuracy, reliance))
    return list(ds.labels), reliance, got


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    rows, seconds, relied = [], {}, []
    with tempfile.TemporaryDirectory(prefix="pxi-gradients-") as tmp:
        for seed in args.seeds:
            names, reliance, got = one_seed(seed, tmp)
            relied.append("seed %d: %s" % (seed, ", ".join(
                "%s %.2f" % (names[c], d) for c, d in sorted(reliance.items()))))
            classes = sorted({c for _, c in got})
            for key, title, _ in METHODS:
                cells = []
                for c in classes:
                    runs = got[(key, c)]
                    peak = ("-" if key.startswith("lime") else "%d" % sum(r[0] for r in runs))
                    cells.append("%s / %d / %d" % (peak, sum(r[1] for r in runs), len(runs)))
                    seconds.setdefault(key, []).extend(r[2] for r in runs)
                rows.append([seed, title] + ["%s: %s" % (names[c], cell)
                                             for c, cell in zip(classes, cells)])
    width = max(len(r) for r in rows)
    rows = [r + [""] * (width - len(r)) for r in rows]
    lime_s = float(np.median(seconds["lime"]))
    cost = [[title, "%.3f" % np.median(seconds[key]),
             "%.2f" % (np.median(seconds[key]) / lime_s)] for key, title, _ in METHODS]
    text = "\n\n".join([
        "The tests' shapes model (MobileNetV3_small, 64 px, 3 colour classes, "
        "pxi_testing/recipes.py's recipe) trained with seeds %s; every held-out image (20 per "
        "class) of the classes whose probability falls by more than 0.3 when their object is "
        "greyed out. Per class: peak pixel on the object / top superpixel on the object / "
        "images." % args.seeds,
        markdown_table(["training seed", "method"] + ["class"] * (width - 2), rows),
        "Drop of each class's probability when its object alone is greyed out: "
        + "; ".join(relied) + ".",
        "Seconds per explanation (median over the images above, one label; the gradient "
        "methods without segmentation, in dygraph; LIME with quickshift and the default "
        "backend):",
        markdown_table(["method", "s / explanation", "vs LIME"], cost),
    ])
    print(text)
    if not args.no_write:
        write_section(SECTION, text, "python -m bench.bench_gradients")


if __name__ == "__main__":
    main()
