"""Session-wide fixtures for the whole test-suite.

Fixtures (names are stable, others rely on them):

* ``shapes_dataset`` -- a :class:`pxi_testing.synthetic.ShapesDataset`: 3 colour classes
  (red, green, blue), 64 px, 80 train + 20 val images per class, seed 0 (generated in ~0.5 s).
* ``paddlex_transforms`` -- a fresh ``(train_transforms, eval_transforms)`` pair for 64 px
  (see :func:`pxi_testing.recipes.make_transforms`).
* ``trained_classifier`` -- a :class:`pxi_testing.recipes.TrainedClassifier`: a real PaddleX 2.1
  ``MobileNetV3_small`` trained from scratch on ``shapes_dataset`` (CPU, seeded, ~25-40 s), with
  its val accuracy (>= 0.9 expected; the class is the object's colour). ``trained`` is the same
  object, ``model`` its PaddleX model, ``pdx`` the ``paddlex`` module.
* ``probe_images`` -- 6 val images of ``trained_classifier`` as the model sees them (uint8).
* ``train_dataset`` -- ``paddlex.datasets.ImageNet`` of the training split with the model's test
  transforms (what the NormLIME weights are built on); ``fast_weights`` -- ``'fast'`` NormLIME
  weights of the trained model on it (60 images, 12 concepts); ``weights_file`` -- a valid
  weights cache file (15 images, 8 concepts; copy it before changing it).
* ``tiny_shapes`` (32 px, 12 + 5 images per class), ``probes`` (``(images, labels)``: a val path
  and a 48 px array) and ``hooked``: a tiny PaddleX training (2 epochs, a checkpoint per epoch)
  with an :class:`~paddlex_interpret.training.hook.ExplainHook` on ``probes`` (``{"model",
  "hook", "save_dir", "seconds"}``; its checkpoint directories are read, never written, by the
  tests that share it).
* ``watermarked`` -- ``(TrainedClassifier, hook, warnings)``: the demo's watermark data (blue
  images carry a corner checker, training and validation) trained by ``ALARM_RECIPE`` (6 epochs)
  with an ExplainHook attached (the class atlas, the shortcut alarm and NormLIME on), and the
  warnings the training process logged (the shortcut alarm's).
* ``paddleclas_shapes`` (32 px shapes, 12 + 5 images per class, with PaddleX 3's ClsDataset
  lists) and ``paddleclas_run``: a finished 3-epoch PaddleX 3 training run on it, written by
  PaddleClas's own functions in a process of its own (pxi_testing/paddleclas_run.py; PaddleX 3's
  trainer cannot run offline). Its checkpoint directories are read, never written, by the tests.

Every training fixture is session-scoped: a model is trained once per session, whichever files
use it.

The data's arguments, the training recipe and the function that trains (:data:`SHAPES_KWARGS`,
:data:`TRAIN_SETTINGS`, :func:`train_classifier`, :func:`seed_everything`, ...) are defined in
``pxi_testing/recipes.py`` (the benches train with them too). Helpers shared by several test
files that are not about the session's fixtures live in ``tests/helpers.py``
(``from helpers import ...``).

Paddle and PaddleX are imported lazily (inside the fixtures/helpers), always after
``paddlex_interpret`` (its import shim makes PaddleX 2.1 work on Paddle 2.6).
"""
import logging
import os
import sys
import time

import numpy as np
import pytest

_TESTS = os.path.dirname(os.path.abspath(__file__))
_ROOT = os.path.dirname(_TESTS)
for _path in (_ROOT, _TESTS):  # the package and pxi_testing; `from helpers import ...` anywhere
    if _path not in sys.path:
        sys.path.insert(0, _path)

import paddlex_interpret  # noqa: E402,F401  (must come before any `import paddlex`)
from pxi_testing.recipes import (SHAPES_KWARGS, TRAIN_SETTINGS, make_transforms,  # noqa: E402
                                 train_classifier)
from pxi_testing.synthetic import make_shapes_dataset  # noqa: E402

#: the shortcut alarm's recipe: 2 more epochs, so that a model that reads its shortcut does so
#: for several checkpoints before the end (with 4 epochs, only at the last one)
ALARM_RECIPE = dict(TRAIN_SETTINGS, num_epochs=6, lr_decay_epochs=(4,))


# ------------------------------------------------------------------------------------ tiers
#: session fixtures that train a model of more than a few steps: a test using one of them is in
#: the slow tier (``-m "not slow"`` leaves it out); the tiny hook run (``hooked``) is not one
TRAINING_FIXTURES = frozenset({"trained_classifier", "trained", "model", "probe_images",
                               "train_dataset", "fast_weights", "weights_file", "watermarked",
                               "paddleclas_run"})


def pytest_collection_modifyitems(config, items):
    """The slow tier: tests marked ``slow`` (other processes, launchers) and every test that
    uses a training fixture (:data:`TRAINING_FIXTURES`)."""
    for item in items:
        if TRAINING_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


# ------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="session")
def shapes_dataset(tmp_path_factory):
    """3 colour classes (red, green, blue), 64 px, 80 train / 20 val per class, seed 0."""
    return make_shapes_dataset(str(tmp_path_factory.mktemp("shapes")), **SHAPES_KWARGS)


@pytest.fixture
def paddlex_transforms():
    """A fresh ``(train_transforms, eval_transforms)`` pair for 64 px images."""
    return make_transforms(64)


@pytest.fixture(scope="session")
def trained_classifier(shapes_dataset, tmp_path_factory):
    """MobileNetV3_small trained from scratch on ``shapes_dataset`` (see TRAIN_SETTINGS)."""
    save_dir = tmp_path_factory.mktemp("trained_classifier")
    return train_classifier(shapes_dataset, save_dir, **TRAIN_SETTINGS)


@pytest.fixture(scope="session")
def pdx():
    """``paddlex`` (imported after ``paddlex_interpret``)."""
    import paddlex_interpret  # noqa: F401
    import paddlex

    return paddlex


@pytest.fixture(scope="session")
def model(trained_classifier):
    """The trained PaddleX classifier of ``trained_classifier``."""
    return trained_classifier.model


@pytest.fixture(scope="session")
def trained(trained_classifier):
    """``trained_classifier`` (the short name the runtime and adapter tests use)."""
    return trained_classifier


@pytest.fixture(scope="session")
def probe_images(trained_classifier):
    """6 val images of ``trained_classifier`` as the model sees them, ``(6, 64, 64, 3)`` uint8."""
    from paddlex_interpret.adapters.paddlex import PaddleXClassifier

    clf = PaddleXClassifier(trained_classifier.model, backend="dygraph")
    items = trained_classifier.dataset.val_items()
    return np.stack([clf.view(path) for path, _, _ in items[::max(1, len(items) // 6)][:6]])


@pytest.fixture(autouse=True)
def _environment_restored():
    """The package's programs run in-process by tests (the CLI's ``main``) set warning filters in
    ``os.environ`` for the processes they start; each test leaves the environment as it found it."""
    saved = dict(os.environ)
    yield
    if dict(os.environ) != saved:
        os.environ.clear()
        os.environ.update(saved)


# ------------------------------------------------------------------------------ NormLIME weights
@pytest.fixture(scope="session")
def train_dataset(pdx, trained_classifier):
    """The training split of ``trained_classifier`` read with the model's test transforms."""
    ds, model = trained_classifier.dataset, trained_classifier.model
    return pdx.datasets.ImageNet(ds.root, ds.train_list, ds.labels_file, model.test_transforms)


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@pytest.fixture(scope="session")
def watermarked(tmp_path_factory):
    """The demo's data (every blue image, training and validation, carries the corner
    watermark) and a MobileNetV3_small trained on it by ALARM_RECIPE with an ExplainHook
    attached (a checkpoint per epoch, the class atlas on, NormLIME on 30 images, no metrics):
    ``(TrainedClassifier, hook, warnings logged in the training process)``."""
    from paddlex_interpret.hooks import ExplainHook

    ds = make_shapes_dataset(str(tmp_path_factory.mktemp("watermarked")),
                             **dict(SHAPES_KWARGS, watermark_class="blue",
                                    watermark_splits=("train", "val")))
    hook = ExplainHook([ds.val_items()[0][0]], num_samples=60, metrics=False, max_images=30,
                       n_concepts=8)
    records = _Records()
    logger = logging.getLogger("paddlex_interpret")
    logger.addHandler(records)
    try:
        trained = train_classifier(ds, tmp_path_factory.mktemp("watermarked_model"), hook=hook,
                                   save_interval_epochs=1, **ALARM_RECIPE)
    finally:
        logger.removeHandler(records)
    return trained, hook, records.messages


@pytest.fixture(scope="session")
def fast_weights(model, train_dataset):
    """``'fast'`` NormLIME weights of the trained model (60 images, 12 concepts, seed 0)."""
    from paddlex_interpret.api import weights as weights_api

    return weights_api.build_normlime_weights(model, train_dataset, mode="fast", max_images=60,
                                              seed=0, n_concepts=12)


@pytest.fixture(scope="session")
def weights_file(tmp_path_factory, model, train_dataset):
    """A valid cache file built once; tests copy it before changing it."""
    from paddlex_interpret.api import weights as weights_api

    path = str(tmp_path_factory.mktemp("cache") / "weights.npz")
    weights_api.build_normlime_weights(model, train_dataset, save_path=path, mode="fast",
                                       max_images=15, seed=0, n_concepts=8)
    return path


# ------------------------------------------------------------------------------ the tiny hook run
@pytest.fixture(scope="session")
def tiny_shapes(tmp_path_factory):
    """32 px coloured shapes, 12 train + 5 val images per class."""
    return make_shapes_dataset(str(tmp_path_factory.mktemp("hook_shapes")),
                               num_train_per_class=12, num_val_per_class=5, image_size=32)


@pytest.fixture(scope="session")
def probes(tiny_shapes):
    """``(images, labels)``: a val path with its label, and a 48 px array (to be resized)."""
    import cv2

    from paddlex_interpret.core.images import load_image

    val = tiny_shapes.val_items()
    big = load_image(val[5][0])
    big = cv2.resize(big, (48, 48), interpolation=cv2.INTER_NEAREST)  # the hook must resize it
    return [val[0][0], big], [val[0][1], None]


@pytest.fixture(scope="session")
def hooked(tiny_shapes, probes, tmp_path_factory):
    """A tiny PaddleX training with an ExplainHook (background worker, the default)."""
    from helpers import FAST, train_tiny
    from paddlex_interpret.hooks import ExplainHook

    save_dir = tmp_path_factory.mktemp("hooked") / "output"
    hook = ExplainHook(probes[0], probe_labels=probes[1], **FAST)
    t0 = time.perf_counter()
    model = train_tiny(tiny_shapes, save_dir, hook=hook)
    return {"model": model, "hook": hook, "save_dir": str(save_dir),
            "seconds": time.perf_counter() - t0}


# ------------------------------------------------------------------------------ PaddleX 3 runs
@pytest.fixture(scope="session")
def paddleclas_shapes(tmp_path_factory):
    """32 px coloured shapes, 12 train + 5 val images per class, with PaddleX 3's ClsDataset
    lists (label.txt, train.txt, val.txt) beside PaddleX 2's."""
    from pxi_testing.paddleclas_run import write_cls_lists

    ds = make_shapes_dataset(str(tmp_path_factory.mktemp("paddleclas_shapes")),
                             num_train_per_class=12, num_val_per_class=5, image_size=32)
    write_cls_lists(ds.root)
    return ds


@pytest.fixture(scope="session")
def paddleclas_run(paddleclas_shapes, tmp_path_factory):
    """A finished 3-epoch PaddleX 3 run on ``paddleclas_shapes`` (PaddleClas's own writers)."""
    from helpers import start_paddleclas_run

    out = str(tmp_path_factory.mktemp("paddleclas_run") / "output")
    writer = start_paddleclas_run(out, paddleclas_shapes.root, epochs=3)
    assert writer.wait(timeout=600) == 0, writer.stderr.read()[-2000:]
    return out
