"""Explanation quality (issue 5): faithfulness (deletion / insertion AUC) and stability (top-k
Jaccard and Spearman rank correlation across seeds) of paddlex_interpret's LIME and GLIME against
InterpretDL 0.8's LIME / GLIME and lime 0.2, with the same model, images, superpixels, label,
fill and N for every tool.

The model is a PaddleX 2.1 MobileNetV3_small trained here, from scratch, on real photos of
clothes: a class-balanced subset of Fashion-MNIST read from Debian's ``dataset-fashion-mnist``
package (``apt-get install -y dataset-fashion-mnist``: gzipped idx files in
``/usr/share/datasets/fashion-mnist``; ``FASHION_MNIST_DIR`` overrides). The bench parses the idx
files itself (big-endian header, then uint8 pixels), writes the subset as 28x28 PNGs in PaddleX's
ImageNet layout in a cache directory (``PXI_BENCH_CACHE``, default ``/tmp/pxi_bench``), trains
once (cached; ``--retrain`` to redo) with ``Resize(64)`` + ``Normalize``, and reports the exact
top-1 accuracy on held-out test images. If the package is missing the bench falls back to the
project's synthetic coloured-shapes data (paddlex_interpret.synthetic) and says so.

For each of ``--images`` correctly classified test images (one per class, classes in order) and
each seed in ``--seeds``: superpixels are computed once by our segmenter (SLIC, 40 segments,
seeded) and given to every tool; the predicted label is explained; hidden superpixels are black
(PaddleX 1.3; the Fashion-MNIST background is black too). GLIME's prior is the NormLIME concept
prior built offline by paddlex_interpret (fast mode on 300 training images); InterpretDL's GLIME
receives the same prior vector (its own needs a download, see bench/peers_runner.py). Deletion and
insertion curves remove / add superpixels in weight order (x = fraction of pixels), computed by
paddlex_interpret.core.metrics with the same classifier for every tool. A row of random weights
gives the chance level.

    .venv/bin/python bench/bench_quality.py                    # ~10 min (+ ~5-10 min training once)
    .venv/bin/python bench/bench_quality.py --images 4 --seeds 0 1 --n 500   # quick
"""
import argparse
import gzip
import json
import os
import struct
import sys
import tempfile
import time

os.environ.setdefault("OMP_NUM_THREADS", str(os.cpu_count() or 1))
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402

import paddlex_interpret  # noqa: E402,F401
import paddle  # noqa: E402

from bench.bench_speed import run_peers  # noqa: E402
from bench.report import markdown_table, write_section  # noqa: E402
from paddlex_interpret.core import metrics  # noqa: E402
from paddlex_interpret.core.lime import LimeExplainer  # noqa: E402
from paddlex_interpret.core.segmentation import make_segmenter  # noqa: E402
from paddlex_interpret.predictors import PaddleXClassifier  # noqa: E402

FMNIST_DIR = os.environ.get("FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist")
CACHE = os.environ.get("PXI_BENCH_CACHE", os.path.join(tempfile.gettempdir(), "pxi_bench"))
CLASSES = ["T-shirt_top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
           "Bag", "Ankle_boot"]
IMAGE_SIZE = 64
SEGMENTER = ("slic", {"n_segments": 40, "compactness": 10.0})
TRAIN = dict(num_epochs=5, train_batch_size=64, learning_rate=0.05, lr_decay_epochs=(4,),
             warmup_steps=0)


# ----------------------------------------------------------------------------- data
def read_idx(path):
    """An idx file (optionally gzipped) as a numpy array: magic (2 zero bytes, dtype code 0x08 =
    uint8, number of dimensions), big-endian int32 sizes, then the data."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        zero, dtype, ndim = struct.unpack(">HBB", f.read(4))
        if zero != 0 or dtype != 0x08:
            raise ValueError("%s: not a uint8 idx file" % path)
        shape = struct.unpack(">" + "I" * ndim, f.read(4 * ndim))
        return np.frombuffer(f.read(), dtype=np.uint8).reshape(shape)


def fashion_mnist_available():
    return os.path.exists(os.path.join(FMNIST_DIR, "train-images-idx3-ubyte.gz"))


def prepare_fashion_mnist(root, train_per_class, val_per_class, seed=0):
    """Write a class-balanced subset as PNGs in PaddleX's ImageNet layout; returns root."""
    import cv2

    stamp = os.path.join(root, "done_%d_%d" % (train_per_class, val_per_class))
    if os.path.exists(stamp):
        return root
    os.makedirs(root, exist_ok=True)
    rng = np.random.default_rng(seed)
    splits = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                        train_per_class),
              "val": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", val_per_class)}
    for split, (img_file, lab_file, per_class) in splits.items():
        images = read_idx(os.path.join(FMNIST_DIR, img_file))
        labels = read_idx(os.path.join(FMNIST_DIR, lab_file))
        lines = []
        for c, name in enumerate(CLASSES):
            os.makedirs(os.path.join(root, name), exist_ok=True)
            idx = rng.permutation(np.flatnonzero(labels == c))[:per_class]
            for i in idx:
                rel = "%s/%s_%05d.png" % (name, split, i)
                cv2.imwrite(os.path.join(root, rel), images[i])
                lines.append("%s %d" % (rel, c))
        order = rng.permutation(len(lines)) if split == "train" else np.arange(len(lines))
        with open(os.path.join(root, "%s_list.txt" % split), "w") as f:
            f.write("\n".join(lines[i] for i in order) + "\n")
    with open(os.path.join(root, "labels.txt"), "w") as f:
        f.write("\n".join(CLASSES) + "\n")
    open(stamp, "w").close()
    return root


def transforms():
    import paddlex as pdx

    T = pdx.transforms
    return (T.Compose([T.RandomHorizontalFlip(), T.Resize(target_size=IMAGE_SIZE), T.Normalize()]),
            T.Compose([T.Resize(target_size=IMAGE_SIZE), T.Normalize()]))


def datasets(root):
    import paddlex as pdx

    train_tf, eval_tf = transforms()
    train = pdx.datasets.ImageNet(root, os.path.join(root, "train_list.txt"),
                                  os.path.join(root, "labels.txt"), train_tf, num_workers=0,
                                  shuffle=True)
    val = pdx.datasets.ImageNet(root, os.path.join(root, "val_list.txt"),
                                os.path.join(root, "labels.txt"), eval_tf, num_workers=0)
    return train, val


def val_accuracy(model, val):
    _, details = model.evaluate(val, batch_size=64, return_details=True)
    pred = np.argmax(np.asarray(details["pred_scores"]), axis=1)
    true = np.asarray(details["true_labels"]).reshape(-1)
    return float((pred == true).mean())


def trained_model(data_root, model_dir, retrain=False, seed=0):
    """Train (or load the cached) MobileNetV3_small; returns (model, info dict)."""
    import paddlex as pdx

    info_path = os.path.join(model_dir, "bench_info.json")
    if not retrain and os.path.exists(info_path):
        model = pdx.load_model(os.path.join(model_dir, "best_model"))
        return model, json.load(open(info_path))
    paddle.seed(seed)
    np.random.seed(seed)
    train, val = datasets(data_root)
    model = pdx.cls.MobileNetV3_small(num_classes=len(train.labels))
    t = time.time()
    model.train(train_dataset=train, eval_dataset=val, save_dir=model_dir,
                save_interval_epochs=TRAIN["num_epochs"], log_interval_steps=50,
                pretrain_weights=None, lr_decay_gamma=0.1, use_vdl=False, **TRAIN)
    info = {"train_seconds": time.time() - t, "accuracy": val_accuracy(model, val),
            "n_train": len(train.file_list), "n_val": len(val.file_list), "train": TRAIN}
    with open(info_path, "w") as f:
        json.dump(info, f)
    return pdx.load_model(os.path.join(model_dir, "best_model")), info


# ----------------------------------------------------------------------------- explanations
def pick_images(clf, root, n_images):
    """The first correctly classified test image of each class, classes in order."""
    items = [l.split() for l in open(os.path.join(root, "val_list.txt")) if l.strip()]
    chosen, seen = [], set()
    for rel, lab in items:
        lab = int(lab)
        if lab in seen:
            continue
        view = clf.view(os.path.join(root, rel))
        if int(np.argmax(clf(view[None])[0])) == lab:
            chosen.append((rel, lab, view))
            seen.add(lab)
        if len(chosen) == n_images:
            break
    return chosen


def global_weights(model, root, max_images=300):
    from paddlex_interpret import normlime_api

    items = [l.split() for l in open(os.path.join(root, "train_list.txt")) if l.strip()]
    pairs = [(os.path.join(root, rel), int(lab)) for rel, lab in items]
    name, params = SEGMENTER
    return normlime_api.build_normlime_weights(model, pairs, mode="fast", max_images=max_images,
                                               seed=0, segmenter=name, segmenter_params=params)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=8)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--k", type=int, default=5, help="top-k of the Jaccard index")
    ap.add_argument("--train-per-class", type=int, default=300)
    ap.add_argument("--val-per-class", type=int, default=100)
    ap.add_argument("--retrain", action="store_true")
    ap.add_argument("--prepare-only", action="store_true")
    ap.add_argument("--no-peers", action="store_true")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    paddle.set_device("cpu")
    t0 = time.time()
    if fashion_mnist_available():
        data_name = "Fashion-MNIST (Debian dataset-fashion-mnist, %s)" % FMNIST_DIR
        root = prepare_fashion_mnist(os.path.join(CACHE, "fashion_mnist"), args.train_per_class,
                                     args.val_per_class)
        model_dir = os.path.join(CACHE, "fmnist_mobilenetv3_%d" % args.train_per_class)
    else:
        from paddlex_interpret.synthetic import make_shapes_dataset

        data_name = ("synthetic coloured shapes (paddlex_interpret.synthetic): the "
                     "dataset-fashion-mnist package is not installed")
        ds = make_shapes_dataset(os.path.join(CACHE, "shapes"), num_train_per_class=80,
                                 num_val_per_class=20, image_size=64, seed=0)
        root = ds.root
        model_dir = os.path.join(CACHE, "shapes_mobilenetv3")
    model, info = trained_model(root, model_dir, retrain=args.retrain)
    print("model:", info, flush=True)
    if args.prepare_only:
        return
    clf = PaddleXClassifier(model)
    chosen = pick_images(clf, root, args.images)
    name, params = SEGMENTER
    segmenter = make_segmenter(name, seed=0, **params)
    gw = global_weights(model, root)
    workdir = tempfile.mkdtemp(prefix="pxi_bench_quality_")
    from paddlex_interpret import backends, normlime_api

    prefix = os.path.join(workdir, "model")
    backends.export_layer(model.net, (3, IMAGE_SIZE, IMAGE_SIZE), prefix)

    weights = {}  # (tool, image index, seed) -> (d,) weights
    per_image = []
    tasks = []
    timing = {"ours_lime": 0.0, "ours_glime": 0.0}
    for i, (rel, label, view) in enumerate(chosen):
        seg = segmenter(view)
        img_path = os.path.join(workdir, "img_%d.npy" % i)
        seg_path = os.path.join(workdir, "seg_%d.npy" % i)
        np.save(img_path, view)
        np.save(seg_path, seg)
        prior = None
        for s in args.seeds:
            t = time.perf_counter()
            e = LimeExplainer(clf, num_samples=args.n, batch_size="auto", seed=s).explain(
                view, labels=[label], segments=seg)
            timing["ours_lime"] += time.perf_counter() - t
            weights[("ours_lime", i, s)] = e.weights[0]
            t = time.perf_counter()
            g = normlime_api.glime(view, clf, gw, segments=seg, num_samples=args.n,
                                   batch_size=50, seed=s, labels=[label])
            timing["ours_glime"] += time.perf_counter() - t
            weights[("ours_glime", i, s)] = g.weights[0]
            prior = g.extra["prior"][0]
            weights[("random", i, s)] = np.random.default_rng(1000 + s).normal(size=seg.max() + 1)
        prior_path = os.path.join(workdir, "prior_%d.npy" % i)
        np.save(prior_path, prior)
        per_image.append((rel, label, view, seg))
        for s in args.seeds:
            for tool in ("interpretdl_lime", "interpretdl_glime", "lime"):
                tasks.append(dict(tool=tool, image=img_path, segments=seg_path, label=label,
                                  num_samples=args.n, batch_size=50, seed=s, prior=prior_path,
                                  reg_force=1.0, index=i))
        print("image %d (%s): %d superpixels" % (i, rel, seg.max() + 1), flush=True)
    versions = {}
    if not args.no_peers:
        out = run_peers({"model": prefix, "tasks": tasks}, workdir)
        versions = out["versions"]
        for r in out["results"]:
            weights[(r["tool"], r["index"], r["seed"])] = np.asarray(r["weights"])
            timing[r["tool"]] = timing.get(r["tool"], 0.0) + r["wall"]
    tools = ["ours_lime", "ours_glime", "interpretdl_lime", "interpretdl_glime", "lime",
             "random"]
    tools = [t for t in tools if any(k[0] == t for k in weights)]
    rows = []
    scores = {}
    for tool in tools:
        dels, inss, jac, rho = [], [], [], []
        for i, (rel, label, view, seg) in enumerate(per_image):
            runs = []
            for s in args.seeds:
                w = weights[(tool, i, s)]
                runs.append(w)
                dels.append(metrics.deletion_auc(clf, view, seg, w, label, fill="black",
                                                 batch_size=64))
                inss.append(metrics.insertion_auc(clf, view, seg, w, label, fill="black",
                                                  batch_size=64))
            if len(runs) > 1:
                st = metrics.stability(runs, k=args.k)
                jac.append(st["jaccard"])
                rho.append(st["spearman"])
        scores[tool] = dict(deletion=dels, insertion=inss, jaccard=jac, spearman=rho)

        def ms(v):
            v = np.asarray(v, dtype=np.float64)
            if v.size == 0:
                return "-"
            return "%.3f ± %.3f" % (v.mean(), v.std(ddof=1) / np.sqrt(v.size) if v.size > 1
                                    else 0.0)

        runs_n = len(per_image) * len(args.seeds)
        rows.append([LABELS.get(tool, tool), ms(dels), ms(inss), ms(jac), ms(rho),
                     "%.1f" % (timing.get(tool, 0.0) / runs_n) if tool in timing else "-"])
        print(rows[-1], flush=True)
    table = markdown_table(["tool", "deletion AUC (lower better)", "insertion AUC (higher better)",
                            "top-%d Jaccard across seeds" % args.k,
                            "Spearman across seeds", "s / explanation"], rows)
    body = (table + "\n\n" + verdict(scores) + "\n\n" +
            ("Model: PaddleX MobileNetV3_small trained here from scratch on %s: %d training / "
             "%d test images (class-balanced subset), %s, Resize(%d) + Normalize; exact top-1 "
             "accuracy on the %d held-out test images: **%.3f** (trained in %.0f s, cached "
             "in %s).\n\n"
             % (data_name, info["n_train"], info["n_val"], json.dumps(info["train"]),
                IMAGE_SIZE, info["n_val"], info["accuracy"], info["train_seconds"], model_dir))
            + "Same for every tool: the model (our side: PaddleXClassifier; peers: the same "
              "network exported with paddle.jit.save and loaded with paddle.jit.load), %d test "
              "images (one correctly classified image per class), their superpixels (%s %s, "
              "computed once), the predicted label, black fill, N=%d samples, seeds %s. Mean ± "
              "standard error over images x seeds (AUCs) or images (stability: mean pairwise "
              "value over the seeds of one image). Deletion / insertion: "
              "paddlex_interpret.core.metrics, x = fraction of pixels changed, one step per "
              "superpixel. GLIME: ours is paddlex_interpret.normlime_api.glime (beta=50, prior "
              "L1-normalised, its defaults); InterpretDL's GLIMECVInterpreter(prior_method="
              "'ridge', prior_reg_force=1.0, its default) gets the same prior vector; "
              "InterpretDL's LIME fits Ridge(alpha=0) (its default), lime and ours ridge "
              "alpha=1." % (len(per_image), name, json.dumps(params), args.n, args.seeds)
            + ("\n\nPeers: %s." % ", ".join("%s %s" % kv for kv in versions.items())
               if versions else "\n\nPeers not run (--no-peers).")
            + " Total bench time %.0f s." % (time.time() - t0))
    body += "\n\n" + adaptive_report(clf, per_image, args)
    with open(os.path.join(CACHE, "bench_quality_scores.json"), "w") as f:
        json.dump({"scores": scores, "args": vars(args)}, f)
    print(body)
    if not args.no_write:
        cmd = "python bench/bench_quality.py" + ("" if not sys.argv[1:] else " " +
                                                 " ".join(sys.argv[1:]))
        write_section("Explanation quality vs the peers (issue 5)", body, cmd)


def adaptive_report(clf, per_image, args, cap=3000):
    """Adaptive sampling (off by default) on the same images: samples used, whether it
    converged, and how its top-k compares with plain LIME at the cap."""
    rows = []
    for i, (rel, label, view, seg) in enumerate(per_image):
        plain = LimeExplainer(clf, num_samples=cap, batch_size="auto", seed=0).explain(
            view, labels=[label], segments=seg)
        t = time.perf_counter()
        ad = LimeExplainer(clf, num_samples=cap, batch_size="auto", seed=0,
                           adaptive=dict(top_k=args.k)).explain(view, labels=[label],
                                                                segments=seg)
        wall = time.perf_counter() - t
        s = ad.settings
        rows.append([rel, seg.max() + 1, s["num_samples_used"], str(s["adaptive_converged"]),
                     "%.2f" % metrics.topk_jaccard(ad.weights[0], plain.weights[0], args.k,
                                                   positive_only=True),
                     "%.3f" % metrics.deletion_auc(clf, view, seg, ad.weights[0], label,
                                                   fill="black", batch_size=64),
                     "%.3f" % metrics.deletion_auc(clf, view, seg, plain.weights[0], label,
                                                   fill="black", batch_size=64),
                     "%.2f" % wall])
        print(rows[-1], flush=True)
    used = np.array([r[2] for r in rows], dtype=float)
    return ("Adaptive sampling (optional, off by default): `LimeExplainer(..., adaptive="
            "dict(top_k=%d))` with the default tolerance 0.05 and confidence 0.95, capped at "
            "N=%d, seed 0, on the same images; compared with plain LIME at N=%d. Mean samples "
            "used: %.0f (%.0f%% of the cap).\n\n" % (args.k, cap, cap, used.mean(),
                                                    100 * used.mean() / cap)
            + markdown_table(["image", "superpixels", "samples used", "converged",
                              "top-%d Jaccard vs plain N=%d" % (args.k, cap),
                              "deletion AUC adaptive", "deletion AUC plain", "s"], rows))


LABELS = {"ours_lime": "paddlex_interpret LIME", "ours_glime": "paddlex_interpret GLIME",
          "interpretdl_lime": "InterpretDL 0.8 LIME", "interpretdl_glime": "InterpretDL 0.8 GLIME",
          "lime": "lime 0.2.0.1", "random": "random weights (chance)"}


def verdict(scores):
    """The targets, checked on the numbers above."""
    def mean(tool, key):
        v = scores.get(tool, {}).get(key) or []
        return float(np.mean(v)) if len(v) else float("nan")

    def se(tool, key):
        v = np.asarray(scores.get(tool, {}).get(key) or [], dtype=np.float64)
        return float(v.std(ddof=1) / np.sqrt(v.size)) if v.size > 1 else 0.0

    lines = []
    peers_lime = [t for t in ("interpretdl_lime", "lime") if t in scores]
    for key, better in (("deletion", "lower"), ("insertion", "higher")):
        ours = mean("ours_lime", key)
        parts = []
        for p in peers_lime:
            # paired over the same (image, seed) runs
            d = (np.asarray(scores["ours_lime"][key], dtype=np.float64)
                 - np.asarray(scores[p][key], dtype=np.float64))
            diff = float(d.mean())
            noise = 2 * float(d.std(ddof=1) / np.sqrt(d.size)) if d.size > 1 else 0.0
            good = diff <= noise if better == "lower" else diff >= -noise
            parts.append("%s %.3f (ours %+.3f, paired 2 s.e. %.3f: %s)"
                         % (LABELS[p], mean(p, key), diff, noise,
                            "ours as faithful or better" if good else "ours WORSE"))
        if parts:
            lines.append("- %s AUC, ours %.3f vs %s." % (key.capitalize(), ours, "; ".join(parts)))
    if "ours_glime" in scores:
        lj = {t: mean(t, "jaccard") for t in ("ours_lime", "interpretdl_lime", "lime",
                                              "interpretdl_glime") if t in scores}
        g = mean("ours_glime", "jaccard")
        gs = mean("ours_glime", "spearman")
        others = ", ".join("%s %.3f / %.3f" % (LABELS[t], v, mean(t, "spearman"))
                           for t, v in lj.items())
        lime_tools = [t for t in ("ours_lime", "interpretdl_lime", "lime") if t in lj]
        ok = all(g > lj[t] and gs > mean(t, "spearman") for t in lime_tools)
        lines.append("- Stability (Jaccard / Spearman): our GLIME %.3f / %.3f vs %s: %s."
                     % (g, gs, others, "more stable than every LIME" if ok
                        else "NOT more stable than every LIME"))
    return "\n".join(lines)


if __name__ == "__main__":
    main()
