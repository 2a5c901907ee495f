"""The demo: train a PaddleX classifier with explanations at every checkpoint.

1. Generates a "coloured shapes" dataset (the class is the colour of one object at a known position;
   every image of the watermark class, training and validation, carries a small corner checker:
   a shortcut that accuracy cannot see, since the validation images have it too).
2. Trains ``paddlex.cls.MobileNetV3_small`` from scratch on the CPU with
   :class:`paddlex_interpret.hooks.ExplainHook` attached: at every checkpoint it builds NormLIME
   weights on the eval set (saved into ``epoch_N/``) and logs LIME / NormLIME overlays of the probe
   images, quality and stability scalars and the top concepts per class to VisualDL, next to
   PaddleX's own curves.
3. Explains held-out images with ``paddlex.interpret.lime`` / ``normlime`` (PaddleX 1.3 PNGs),
   scores LIME against the ground-truth object masks (pointing game) on the unmarked classes,
   counts how often LIME's top superpixels of the watermark class sit on the watermark, and checks
   the shortcut directly: does stamping the watermark onto other classes' images make them blue?
   The hook's shortcut alarm finds it by itself: regions proposed by the class atlas (a gradient
   map of every eval image, per predicted class) and by a transplant scan, confirmed by pasting
   them from blue images onto red and green ones; one warning in this log when it is raised,
   the VisualDL text ``alarm/blue/evidence`` at every checkpoint it holds, and the structured
   alarms (class, region, first and last checkpoint, evidence) in the printed summary.

Run (from the repo root; ``bash scripts/run_demo.sh`` does the set-up first)::

    .venv/bin/python examples/train_with_explanations.py [--out demo_output] [--epochs 6]
    .venv/bin/visualdl --logdir demo_output/train/vdl_log --port 8040
"""
import argparse
import json
import logging
import os
import time

from paddlex_interpret.compat import quiet_import_noise  # noqa: E402

quiet_import_noise()  # Paddle's C++ INFO lines and its dependencies' import warnings

import numpy as np  # noqa: E402

import paddlex_interpret  # noqa: E402,F401  (shims before paddlex)
import paddle  # noqa: E402
import paddlex as pdx  # noqa: E402
from paddlex_interpret.core.images import load_image  # noqa: E402
from paddlex_interpret.hooks import ExplainHook  # noqa: E402
from pxi_testing.synthetic import make_shapes_dataset, stamp_watermark  # noqa: E402

CLASSES = ("red", "green", "blue")
WATERMARK_CLASS = "blue"


def seed_everything(seed):
    import random

    random.seed(seed)
    np.random.seed(seed)
    paddle.seed(seed)


def write_png(path, rgb):
    import cv2

    cv2.imwrite(path, np.ascontiguousarray(rgb[:, :, ::-1]))
    return path


def alarm_summary(alarm):
    """The alarm's fields a person reads first (``alarm.to_dict()`` has them all)."""
    ev = alarm.evidence
    return {"class": alarm.name, "region": alarm.region, "place": alarm.place,
            "first_epoch": alarm.first, "last_epoch": alarm.last, "raised_at_the_end": alarm.active,
            "transplant": "%d/%d images of other classes turned %s" % (ev.flipped, ev.targets,
                                                                        alarm.name),
            "hide": "p(%s) lower by %.2f, %d/%d left the class" % (alarm.name, ev.drop, ev.left,
                                                                  ev.own)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="demo_output")
    ap.add_argument("--epochs", type=int, default=6, help="training epochs (a checkpoint each)")
    ap.add_argument("--image-size", type=int, default=64)
    ap.add_argument("--num-samples", type=lambda t: t if t == "auto" else int(t), default="auto",
                    help="LIME samples per probe: 'auto' (until its top 5 are certified, at "
                         "most 1000) or a number")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    paddle.set_device("cpu")
    seed_everything(args.seed)
    t_start = time.time()
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)

    # 1. data
    ds = make_shapes_dataset(os.path.join(out, "data"), num_train_per_class=80,
                             num_val_per_class=20, image_size=args.image_size, classes=CLASSES,
                             seed=args.seed, watermark_class=WATERMARK_CLASS,
                             watermark_splits=("train", "val"), overwrite=True)
    T = pdx.transforms
    train_tf = T.Compose([T.Resize(args.image_size), T.Normalize()])
    eval_tf = T.Compose([T.Resize(args.image_size), T.Normalize()])
    train_set = pdx.datasets.ImageNet(ds.root, ds.train_list, ds.labels_file, train_tf,
                                      shuffle=True)
    eval_set = pdx.datasets.ImageNet(ds.root, ds.val_list, ds.labels_file, eval_tf)

    # probes: one held-out image per class (the blue one carries the watermark), a watermarked
    # training image, and a held-out red image with the watermark stamped on (a shortcut detector).
    val = ds.val_items()
    probes, names = [], []
    for cls in range(len(CLASSES)):
        path = next(p for p, l, _ in val if l == cls)
        probes.append(path)
        names.append("val_%s" % CLASSES[cls])
    wm_train = os.path.join(ds.root, ds.watermarked[0])
    probes.append(wm_train)
    names.append("train_%s_watermarked" % WATERMARK_CLASS)
    red_val = next(p for p, l, _ in val if l == 0)
    stamped = write_png(os.path.join(out, "red_with_watermark.png"),
                        stamp_watermark(load_image(red_val).copy(), ds.watermark_box))
    probes.append(stamped)
    names.append("val_red_plus_watermark")

    # 2. train with the hook
    model = pdx.cls.MobileNetV3_small(num_classes=len(CLASSES))
    hook = ExplainHook(probes, probe_names=names, num_samples=args.num_samples,
                       segmenter="slic", segmenter_params={"n_segments": 40}, max_images=30,
                       seed=args.seed)
    save_dir = os.path.join(out, "train")
    t_train = time.time()
    with hook.attach(model):
        model.train(num_epochs=args.epochs, train_dataset=train_set, train_batch_size=16,
                    eval_dataset=eval_set, save_interval_epochs=1, log_interval_steps=5,
                    save_dir=save_dir, pretrain_weights=None, learning_rate=0.05,
                    warmup_steps=0, lr_decay_epochs=(max(1, args.epochs - 2),),
                    lr_decay_gamma=0.1, use_vdl=True)
    t_train = time.time() - t_train

    # 3. explain held-out images (PaddleX 1.3 API): unmarked classes are scored against the object
    #    masks (pointing game); for the watermark class, is the watermark among the top evidence?
    explain_dir = os.path.join(out, "explanations")
    hits, pngs = 0, []
    wm_label = CLASSES.index(WATERMARK_CLASS)
    x0, y0, x1, y1 = ds.watermark_box
    on_watermark = np.zeros((args.image_size, args.image_size), bool)
    on_watermark[y0:y1, x0:x1] = True
    scored = [v for v in val[::4] if v[1] != wm_label]
    marked = [v for v in val if v[1] == wm_label][:5]
    wm_hits = 0
    for path, _, _ in marked:
        exp = pdx.interpret.lime(path, model, num_samples=args.num_samples, batch_size=50,
                                 save_dir=explain_dir, seed=args.seed,
                                 segmenter="slic", segmenter_params={"n_segments": 40},
                                 save_png=not pngs)
        if not pngs:
            pngs.append(exp.png_path)
        top = exp.top_segments(exp.labels[0], 2)
        wm_hits += any((exp.segments == t)[on_watermark].any() for t in top)
    for i, (path, label, _) in enumerate(scored):
        exp = pdx.interpret.lime(path, model, num_samples=args.num_samples, batch_size=50,
                                 save_dir=explain_dir, seed=args.seed,
                                 segmenter="slic", segmenter_params={"n_segments": 40},
                                 save_png=i < 3)
        if i < 3:
            pngs.append(exp.png_path)
        top = exp.top_segments(exp.labels[0], 1)
        on = exp.segments == top[0] if len(top) else np.zeros_like(exp.segments, bool)
        hits += bool(on.any()) and (on & ds.mask_for(path)).sum() / on.sum() > 0.5
    last_ckpt = os.path.join(save_dir, "epoch_%d" % args.epochs)
    nl = pdx.interpret.normlime(val[1][0], model, dataset=eval_set,
                                num_samples=args.num_samples, save_dir=explain_dir,
                                normlime_weights_file=ExplainHook.weights_file(last_ckpt),
                                seed=args.seed, segmenter="slic",
                                segmenter_params={"n_segments": 40})
    pngs.append(nl.png_path)

    # the shortcut: does the watermark alone turn red and green images blue?
    pred_plain = model.predict(red_val[:], topk=1)[0]
    pred_stamped = model.predict(stamped, topk=1)[0]
    others = [p for p, l, _ in val if l != wm_label]
    flipped = 0
    for p in others:
        img = stamp_watermark(load_image(p).copy(), ds.watermark_box)[:, :, ::-1]  # BGR
        flipped += model.predict(np.ascontiguousarray(img), topk=1)[0]["category"] \
            == WATERMARK_CLASS
    summary = {
        "val_accuracy": float(model.eval_metrics["acc1"]),
        "pointing_game": "%d/%d held-out red/green images: LIME's top superpixel is on the object"
                         % (hits, len(scored)),
        "watermark_in_lime_top2": "%d/%d held-out %s images: the watermark is among LIME's top 2"
                                  % (wm_hits, len(marked), WATERMARK_CLASS),
        "shortcut_check": {"red val image": pred_plain["category"],
                           "same image + watermark": pred_stamped["category"],
                           "red/green val images turned %s by the watermark" % WATERMARK_CLASS:
                               "%d/%d" % (flipped, len(others))},
        # the hook's shortcut alarm: every class it was raised for, where, when, on what evidence
        "shortcut_alarms": [alarm_summary(a) for a in hook.alarms],
        "train_seconds_with_hook": round(t_train, 1),
        # the hook explains each checkpoint in a worker process while training goes on:
        # seconds spent explaining there, and seconds model.train waited for the hook
        "explaining_seconds": round(sum(r.seconds for r in hook.history
                                        if getattr(r, "seconds", None)), 1),
        "train_held_up_seconds": round(hook.blocked_seconds, 1),
        # the Paddle build, and where the worker explained (read inside it: a CPU worker sees
        # no card) and its peak memory
        "paddle": "%s, %s" % (paddle.__version__, "CUDA build" if paddle.is_compiled_with_cuda()
                              else "CPU build"),
        "worker_device": hook.worker_device_info,
        "worker_peak_rss_mib": round(hook.worker_peak_rss_mib or 0),
        "total_seconds": round(time.time() - t_start, 1),
        "explanation_pngs": pngs,
        "normlime_weights": [ExplainHook.weights_file(os.path.join(save_dir, "epoch_%d" % e))
                             for e in range(1, args.epochs + 1)],
        "visualdl_logdir": os.path.join(save_dir, "vdl_log"),
    }
    print(json.dumps(summary, indent=1))
    print("\nOpen the board:  .venv/bin/visualdl --logdir %s --port 8040" % summary["visualdl_logdir"])


if __name__ == "__main__":
    main()
