"""How ``fill='auto'``'s rule was set: run by ``bench/bench_fill_rule.py``.

On images that the reported sections never use (20 Fashion-MNIST test images, the 2nd and 3rd
correctly classified of each class; the 4th-7th shapes validation image of each class; three
photos that scikit-learn and scikit-image ship besides the four of the real model's sections),
LIME at N=500 (seed 0) with each fixed fill, scored by InterpretDL's deletion / insertion AUC
(:func:`bench.quality_defaults.auc_pair`), next to the fill each rule takes: this rule
(:class:`paddlex_interpret.core.fill.AutoFill`) and the former one (the highest score of all
candidates, per image).
"""
import os

import numpy as np

from bench import quality_defaults as QD
from bench.quality_harness import SEGMENTER
from paddlex_interpret.core.fill import AutoFill

N = 500


def fmnist_images(clf, root, ranks=(2, 3)):
    """``[(name, view, label)]``: the ``ranks``-th correctly classified test image per class."""
    items = [l.split() for l in open(os.path.join(root, "val_list.txt")) if l.strip()]
    counts, out = {}, []
    for rel, lab in items:
        lab = int(lab)
        view = clf.view(os.path.join(root, rel))
        if int(np.argmax(clf(view[None])[0])) != lab:
            continue
        counts[lab] = counts.get(lab, 0) + 1
        if counts[lab] in ranks:
            out.append((rel, view, lab))
    return out


def shapes_images(case, ranks=(4, 5, 6, 7)):
    counts, out = {}, []
    for name, view, label, _ in case["pointing_images"]:
        counts[label] = counts.get(label, 0) + 1
        if counts[label] in ranks:
            out.append(("%s/%s" % (case["class_names"][label], name), view, label))
    return out


def photo_images(clf):
    from skimage import data
    from sklearn.datasets import load_sample_images

    from pxi_testing import efficientnet_lite as E

    raw = dict(zip(["china", "flower"], load_sample_images().images))
    raw["motorcycle"] = data.stereo_motorcycle()[0]
    out = []
    for name, im in raw.items():
        view = E.view(im, "lite0")
        out.append((name, view, int(np.argmax(clf.predict(view[None])[0]))))
    return out


def per_image(clf, images, segmenter):
    """Per image: every fill's (deletion, insertion) AUC, the candidates' scores, and the
    fill this rule and the former rule take."""
    rows = []
    for name, view, label in images:
        seg = segmenter(view)
        choice = AutoFill().choose(clf, view, seg)
        aucs = {}
        for fill in QD.FIXED_FILLS:
            w, _, _ = QD.ours(clf, view, seg, label, fill, N, 0)
            aucs[fill] = QD.auc_pair(clf, view, seg, w, label)
        former = max(choice.scores, key=choice.scores.get)
        rows.append({"image": name, "aucs": aucs, "scores": choice.scores,
                     "rule": choice.name, "stage": choice.stage, "former": former})
        print("  fill rule: %s done" % name, flush=True)
    return rows


def summary(title, rows, markdown_table):
    """A table: mean AUCs per fixed fill and per rule, and how often each rule took what."""
    def mean(pick):
        return np.mean([r["aucs"][pick(r)] for r in rows], axis=0)

    lines = []
    for fill in QD.FIXED_FILLS:
        d, i = mean(lambda r, f=fill: f)
        lines.append(["fixed '%s'" % fill, "%.3f" % d, "%.3f" % i, "-"])
    for key, label in (("rule", "**auto: this rule**"),
                       ("former", "auto: the former rule (highest score, per image)")):
        d, i = mean(lambda r, k=key: r[k])
        lines.append([label, "%.3f" % d, "%.3f" % i, QD._counts(r[key] for r in rows)])
    grey = [round(r["scores"]["grey"], 3) for r in rows]
    head = ("**%s** (%d images): grey's score %s; the rule's stage: %s." % (
        title, len(rows), "%.3f" % grey[0] if len(set(grey)) == 1 else
        "%.3f-%.3f" % (min(grey), max(grey)), QD._counts(r["stage"] for r in rows)))
    return head + "\n\n" + markdown_table(
        ["fill", "deletion AUC (lower better)", "insertion AUC (higher better)", "fills taken"],
        lines)


def tune_fill(clf, root, cases, markdown_table):
    """``{section title: body}``; ``cases``: the shapes and real cases of :mod:`bench.quality_harness`."""
    from paddlex_interpret.core.segmentation import make_segmenter

    name, params = SEGMENTER
    parts = [summary("MobileNetV3_small on Fashion-MNIST", per_image(
        clf, fmnist_images(clf, root), make_segmenter(name, seed=0, **params)), markdown_table)]
    shapes = cases["shapes"]
    parts.append(summary("MobileNetV3_small on the coloured shapes", per_image(
        shapes["classifier"], shapes_images(shapes), shapes["segmenter"]), markdown_table))
    if "real" in cases:
        real = cases["real"]
        parts.append(summary("EfficientNet-Lite0 on china, flower, motorcycle", per_image(
            real["classifier"], photo_images(real["classifier"]), real["segmenter"]),
            markdown_table))
    body = (__doc__.split("\n\n", 1)[1].strip() + "\n\nLIME at N=%d, seed 0; mean over the "
            "images.\n\n" % N + "\n\n".join(parts))
    return {"The fill rule, set on other images": body}
