"""Plain helpers shared by several test files: ``from helpers import ...`` (``tests/`` is on
``sys.path``, see ``conftest.py``). Fixtures live in ``conftest.py``; this module has none.

* the repository root (:data:`ROOT`) (the training recipe and :func:`seed_everything` are in
  ``pxi_testing/recipes.py``);
* pure-numpy classifiers whose decision is known: :class:`RegionClassifier` (the top-left
  quadrant), :class:`BrightnessModel` (the left half), :func:`colour_classifier` (the
  coloured-shapes classes) and the label maps they are explained on (:func:`grid_segments`,
  :func:`grid_of`);
* the metrics' model of a known deciding region: :class:`RegionModel` on :data:`GRID` (the
  superpixels :data:`DECIDING` cover :data:`REGION`), :func:`oracle_weights`, :func:`region_image`;
* NormLIME: :func:`deciding_concepts` (the concepts that lie on a class's objects);
* VisualDL: :func:`read_run` and :func:`steps` (VisualDL's own reader);
* tiny PaddleX training as a user runs it (:func:`train_tiny`, with :data:`FAST` explanation
  options), and :func:`fresh_model` (an untrained copy of the session classifier);
* PaddleX 3: :func:`make_clas_dir` (an exported classifier by hand) and
  :func:`start_paddleclas_run` (a training run written by PaddleClas's functions, in the
  background).

Paddle and PaddleX are imported inside the functions (after ``paddlex_interpret``).
"""
import contextlib
import os

import numpy as np

import paddlex_interpret  # noqa: F401  (before any `import paddlex`)
from paddlex_interpret.core.classifier import Classifier, FunctionClassifier
from paddlex_interpret.core.images import load_image
from pxi_testing.recipes import closing_log_writers, seed_everything

#: the repository root
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


#: cheap explanation options for the training integrations (hook, callback, session, worker)
FAST = dict(num_samples=120, batch_size=60, metric_steps=8, max_images=15, n_concepts=8)

#: the tiny PaddleX training of the hook tests: epochs per run
EPOCHS = 2


# ------------------------------------------------------------------------------ label maps
def grid_segments(h=32, w=32, n=4):
    """n x n square superpixels (int32)."""
    rows = np.arange(h) * n // h
    cols = np.arange(w) * n // w
    return (rows[:, None] * n + cols[None, :]).astype(np.int32)


def grid_of(shape, cells):
    """``cells x cells`` superpixels over an image of ``shape`` (int64)."""
    h, w = shape[:2]
    ys = np.minimum(np.arange(h) * cells // h, cells - 1)
    xs = np.minimum(np.arange(w) * cells // w, cells - 1)
    return (ys[:, None] * cells + xs[None, :]).astype(np.int64)


# ------------------------------------------------------------------------------ classifiers
class RegionClassifier(Classifier):
    """Class 1 iff the top-left quadrant is bright: the deciding region is known. Returns logits
    (the core applies the softmax) and records the batch sizes it is called with."""

    def __init__(self):
        self.batch_sizes = []

    def __call__(self, images):
        self.batch_sizes.append(len(images))
        score = images[:, :16, :16].mean(axis=(1, 2, 3)) / 255.0
        logit = 8 * (score - 0.5)
        return np.stack([-logit, logit], axis=1)  # logits: softmax is applied by the core


class BrightnessModel(Classifier):
    """A numpy classifier: p(class 1) = brightness of the left half. Has ``view`` like ours."""

    label_names = ["dark", "bright"]
    num_classes = 2

    def view(self, image):
        return np.asarray(image, dtype=np.uint8)

    def __call__(self, images):
        p = images[:, :, :16].mean(axis=(1, 2, 3)) / 255.0
        return np.stack([1 - p, p], axis=1)


def colour_classifier(class_names):
    """A classifier that decides by colour, exactly as the coloured-shapes data do: logits are the
    fraction of pixels close to each class colour (no Paddle; for the LIME-heavy aggregate
    builds)."""
    from pxi_testing.synthetic import COLOURS

    colours = np.array([COLOURS[c] for c in class_names], dtype=np.float64)

    def fn(images):
        x = np.asarray(images, dtype=np.float64)
        d = np.linalg.norm(x[:, :, :, None, :] - colours[None, None, None], axis=-1)
        frac = (d < 70).mean(axis=(1, 2))
        return 40.0 * frac

    return FunctionClassifier(fn, label_names=class_names)


# ------------------------------------------------------------------------------ NormLIME
def deciding_concepts(codebook, ds, items, min_share=0.8):
    """Per class: the concepts whose superpixels lie (>= ``min_share``) on that class's objects."""
    seg = codebook.make_segmenter()
    on = {}
    total = {}
    for path, label, _ in items:
        image = load_image(path)
        segments = seg(image)
        concepts = codebook.assign(image, segments)
        mask = ds.mask_for(path)
        frac = (np.bincount(segments.ravel(), weights=mask.ravel(), minlength=len(concepts))
                / np.bincount(segments.ravel(), minlength=len(concepts)))
        for k, f in zip(concepts, frac):
            total[k] = total.get(k, 0) + 1
            if f > 0.5:
                on[(k, label)] = on.get((k, label), 0) + 1
    out = {}
    for (k, label), n in on.items():
        if n >= min_share * total[k] and n >= 3:
            out.setdefault(label, set()).add(int(k))
    return out


# ------------------------------------------------------------------------------ VisualDL
def read_run(run_dir):
    """VisualDL's own reader on the record file VisualDL shows for ``run_dir`` (the newest)."""
    from visualdl import LogReader

    files = sorted(f for f in os.listdir(run_dir) if "vdlrecords" in f)
    assert files, "no VisualDL record file in %s" % run_dir
    return LogReader(file_path=os.path.join(run_dir, files[-1]))


def probe_images(reader):
    """The image tags of the probes' explanations (not the class atlas's) in a VisualDL log."""
    return {t for t in reader.get_tags().get("image", []) if not t.startswith("atlas/")}


def steps(reader, component, tag):
    return [int(r.id) for r in reader.get_data(component, tag)]


# ------------------------------------------------------------------------------ PaddleX training
def make_tiny_datasets(ds):
    """``(train, val)`` ``paddlex.datasets.ImageNet`` readers of a 32 px ShapesDataset."""
    import paddlex as pdx

    T = pdx.transforms
    train_tf = T.Compose([T.RandomCrop(crop_size=32, scaling=[0.7, 1.0]),
                          T.RandomHorizontalFlip(), T.Normalize()])
    eval_tf = T.Compose([T.Resize(32), T.Normalize()])
    train = pdx.datasets.ImageNet(ds.root, ds.train_list, ds.labels_file, train_tf, shuffle=True,
                                  num_workers=0)
    val = pdx.datasets.ImageNet(ds.root, ds.val_list, ds.labels_file, eval_tf, num_workers=0)
    return train, val


def train_tiny(ds, save_dir, hook=None, model=None, epochs=EPOCHS, seed=0):
    """Train (or fine-tune ``model``) a MobileNetV3_small exactly as a user would (a checkpoint
    per epoch, VisualDL on); the hook only attaches."""
    import paddlex as pdx

    seed_everything(seed)
    if model is None:
        model = pdx.cls.MobileNetV3_small(num_classes=len(ds.labels))
    train, val = make_tiny_datasets(ds)
    with closing_log_writers(), (hook.attach(model) if hook else contextlib.nullcontext()):
        model.train(num_epochs=epochs, train_dataset=train, train_batch_size=8, eval_dataset=val,
                    save_interval_epochs=1, log_interval_steps=2, save_dir=str(save_dir),
                    pretrain_weights=None, learning_rate=0.02, use_vdl=True)
    return model


def state_arrays(model):
    return {k: v.numpy().copy() for k, v in model.net.state_dict().items()}


def fresh_model(trained, num_classes=3, seed=0):
    """An untrained MobileNetV3_small with the test transforms and labels of ``trained`` (a
    :class:`pxi_testing.recipes.TrainedClassifier`): for tests that change weights (never the shared one)."""
    import paddle
    import paddlex as pdx

    paddle.seed(seed)
    model = pdx.cls.MobileNetV3_small(num_classes=num_classes)
    model.test_transforms = trained.model.test_transforms
    model.labels = list(trained.dataset.labels)
    return model


# ------------------------------------------------------------------------------ metrics' region
#: a 32 px image on a 4 x 4 grid of 8 px superpixels; superpixels 5 and 9 (REGION) decide
GRID = np.repeat(np.repeat(np.arange(16).reshape(4, 4), 8, 0), 8, 1)
REGION = np.zeros((32, 32), bool)
REGION[8:24, 8:16] = True  # superpixels 5 and 9 decide: a known deciding region
DECIDING = (5, 9)


class RegionModel:
    """p(class 1) = brightness of REGION (a model whose decision is known); counts calls."""

    def __init__(self, logits=False):
        self.calls = 0
        self.images = 0
        self.logits = logits

    def __call__(self, images):
        self.calls += 1
        self.images += len(images)
        p = images[:, REGION].mean(axis=(1, 2)) / 255.0
        out = np.stack([1.0 - p, p], axis=1)
        return np.log(np.clip(out, 1e-6, 1)) + 3.0 if self.logits else out


def region_image():
    """The bright random image the metrics are scored on."""
    rng = np.random.default_rng(0)
    return rng.integers(150, 256, (32, 32, 3)).astype(np.uint8)


def oracle_weights():
    w = np.zeros(16)
    w[list(DECIDING)] = 1.0
    return w


# ------------------------------------------------------------------------------ command line
def run_cli(*args, timeout=300):
    """``paddlex-interpret ARGS`` in a process of its own, as a user runs it."""
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "paddlex_interpret.cli"] + list(args),
                          capture_output=True, text=True, cwd=ROOT, timeout=timeout)


# ------------------------------------------------------------------------------ PaddleX 3 models
#: the preprocessing PaddleClas's export writes for a 224 px ImageNet classifier
CLAS_OPS = [{"ResizeImage": {"resize_short": 256}}, {"CropImage": {"size": 224}},
            {"NormalizeImage": {"channel_num": 3, "mean": [0.485, 0.456, 0.406], "order": "",
                                "scale": 0.00392156862745098, "std": [0.229, 0.224, 0.225]}},
            {"ToCHWImage": None}]


def make_clas_dir(path, ops=None, softmax=True, classes=("cat", "coffee", "rocket"), side=224,
                  post=None, seed=0):
    """An exported PaddleX 3 / PaddleClas classifier written by hand: a tiny seeded network
    (conv, BN with non-trivial statistics, ReLU, pooling, FC, softmax unless ``softmax=False``)
    saved by ``paddle.jit.save`` (``inference.json`` on Paddle 3, ``inference.pdmodel`` on 2.x)
    and an ``inference.yml`` of ``ops`` (default :data:`CLAS_OPS`) and ``post`` (default
    ``Topk`` with the class names). Returns ``(path, network)``; the network outputs logits."""
    import paddle
    import yaml

    class Tiny(paddle.nn.Layer):
        def __init__(self):
            super().__init__()
            self.conv = paddle.nn.Conv2D(3, 8, 3, stride=2, padding=1)
            self.bn = paddle.nn.BatchNorm2D(8)
            self.fc = paddle.nn.Linear(8, len(classes))

        def forward(self, x):
            x = paddle.nn.functional.relu(self.bn(self.conv(x)))
            return self.fc(paddle.flatten(paddle.nn.functional.adaptive_avg_pool2d(x, 1), 1))

    paddle.seed(seed)
    rng = np.random.default_rng(seed)
    net = Tiny()
    net.bn._mean.set_value(rng.normal(0, 0.1, 8).astype("float32"))
    net.bn._variance.set_value(rng.uniform(0.05, 0.2, 8).astype("float32"))
    net.fc.weight.set_value(rng.normal(0, 2.0, (8, len(classes))).astype("float32"))
    net.eval()
    exported = paddle.nn.Sequential(net, paddle.nn.Softmax(axis=-1)) if softmax else net
    exported.eval()
    spec = paddle.static.InputSpec([None, 3, side, side], "float32", "x")
    os.makedirs(path, exist_ok=True)
    paddle.jit.save(paddle.jit.to_static(exported, input_spec=[spec]),
                    os.path.join(path, "inference"))
    config = {"Global": {"model_name": "PP-LCNet_x1_0"},
              "PreProcess": {"transform_ops": ops if ops is not None else CLAS_OPS},
              "PostProcess": post if post is not None else {
                  "Topk": {"topk": min(5, len(classes)), "label_list": list(classes)}}}
    with open(os.path.join(path, "inference.yml"), "w") as f:
        yaml.safe_dump(config, f, sort_keys=False)
    return str(path), net


def start_paddleclas_run(out, dataset_root, epochs=3, sleep=0.0):
    """Start writing a PaddleX 3 training run with PaddleClas's functions in a process of its own
    (``python -m pxi_testing.paddleclas_run``); returns the ``Popen`` (stderr piped,
    stdout dropped)."""
    import subprocess
    import sys

    from paddlex_interpret.compat import quiet_import_noise

    return subprocess.Popen(
        [sys.executable, "-m", "pxi_testing.paddleclas_run", str(out), "--dataset",
         str(dataset_root), "--epochs", str(epochs), "--sleep", str(sleep)],
        cwd=ROOT, env=quiet_import_noise(dict(os.environ)), stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True)


# ------------------------------------------------------------------------------ shortcuts
def shortcut_flip_rate(model, dataset, kind, shortcut_class):
    """How much a model reads a stamped shortcut (what the alarm is owed to): the share of the
    validation images of the other classes that the model gets right which stamping the ``kind``
    shortcut (:func:`pxi_testing.shortcuts.stamp`) turns into ``shortcut_class``;
    NaN when it gets fewer than ``MIN_TARGETS`` of them right. ``model``: a PaddleX model or a
    checkpoint directory."""
    from paddlex_interpret.adapters.paddlex import PaddleXClassifier
    from paddlex_interpret.core.intervention import MIN_TARGETS
    from pxi_testing.shortcuts import stamp

    if isinstance(model, (str, os.PathLike)):
        import paddlex as pdx

        model = pdx.load_model(str(model))
    clf = PaddleXClassifier(model, backend="dygraph")
    target = list(dataset.labels).index(shortcut_class)
    items = [(p, y) for p, y, _ in dataset.val_items() if y != target]
    views = np.stack([clf.view(p) for p, _ in items])
    views = views[clf.predict(views).argmax(1) == np.array([y for _, y in items])]
    if len(views) < MIN_TARGETS:  # too few to say; the alarm does not test such a model either
        return float("nan")
    stamped = np.stack([stamp(kind, v) for v in views])
    return float((clf.predict(stamped).argmax(1) == target).mean())


#: the classes of :func:`shapes`
SHAPE_CLASSES = ["red", "green", "blue"]


def shapes(n=60, seed=0, mark=True, size=64):
    """``(n, size, size, 3)`` uint8 coloured shapes, the classes of :data:`SHAPE_CLASSES` in
    turn; the blue ones carry the demo's watermark when ``mark``."""
    from pxi_testing.drawing import (COLOURS, draw_image, stamp_watermark,
                                                   watermark_box_for)

    box = watermark_box_for(size)
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        img, _, _ = draw_image(rng, size, COLOURS[SHAPE_CLASSES[i % 3]], avoid_box=box)
        out.append(stamp_watermark(img, box) if mark and i % 3 == 2 else img)
    return np.stack(out)


def colour_model(shortcut=0.0, size=64):
    """A numpy classifier of :func:`shapes` (probabilities): the logits are the mean positive
    chroma per channel (the object's colour), plus for blue ``shortcut`` times the share of the
    watermark box's pixels that are black or white (the checker: a model that reads it)."""
    from pxi_testing.drawing import watermark_box_for

    x0, y0, x1, y1 = watermark_box_for(size)

    def model(images):
        x = images.astype(np.float64)
        logits = np.maximum(x - x.mean(-1, keepdims=True), 0).mean((1, 2)) / 2.0
        corner = x[:, y0:y1, x0:x1].mean(-1)
        logits[:, 2] += shortcut * (np.abs(corner - 127.5) > 100).mean((1, 2))
        z = np.exp(logits - logits.max(1, keepdims=True))
        return z / z.sum(1, keepdims=True)
    return model
