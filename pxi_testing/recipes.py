"""The tests' PaddleX trainings, shared by the tests and the benches (one definition): the shapes
data's arguments (:data:`SHAPES_KWARGS`), the training recipe (:data:`TRAIN_SETTINGS`) and what
runs it (:func:`train_classifier`, returning a :class:`TrainedClassifier`), with its parts
(:func:`seed_everything`, :func:`make_transforms`, :func:`make_paddlex_datasets`,
:func:`val_accuracy`, :func:`closing_log_writers`).

Paddle, PaddleX and VisualDL are imported inside the functions, always after
``paddlex_interpret`` (its import shim makes PaddleX 2.1 work on Paddle 2.6).
"""
import contextlib
import os
import random
import time
from dataclasses import dataclass, field
from typing import Any, Iterator, List, Optional, Sequence, Tuple

import numpy as np

import paddlex_interpret  # noqa: F401  (before any `import paddlex`)

#: arguments of the tests' ``shapes_dataset``
#: (:func:`pxi_testing.synthetic.make_shapes_dataset`)
SHAPES_KWARGS = dict(num_train_per_class=80, num_val_per_class=20, image_size=64,
                     classes=("red", "green", "blue"), seed=0)

#: training recipe of the tests' ``trained_classifier`` (measured on the 2-core CPU: 60 SGD
#: steps, val accuracy 0.98-1.0 over seeds 0-3; 3 epochs or MobileNetV3_small x0.5 were less
#: reliable).
TRAIN_SETTINGS = dict(model_name="MobileNetV3_small", num_epochs=4, train_batch_size=16,
                      learning_rate=0.05, lr_decay_epochs=(3,), lr_decay_gamma=0.1,
                      warmup_steps=0, flip=False, seed=0)


def seed_everything(seed: int = 0) -> None:
    """Seed Python's ``random``, NumPy's global RNG and Paddle."""
    import paddle

    random.seed(seed)
    np.random.seed(seed)
    paddle.seed(seed)


def make_transforms(image_size: int = 64, flip: bool = False) -> Tuple[Any, Any]:
    """``(train_transforms, eval_transforms)`` as ``paddlex.transforms.Compose`` objects.

    No crops (they could cut the object out). ``flip=True`` adds ``RandomHorizontalFlip`` to the
    training transforms -- do not use it with a watermarked dataset (it moves the watermark).
    """
    import paddlex as pdx

    T = pdx.transforms
    train = [T.RandomHorizontalFlip()] if flip else []
    train += [T.Resize(target_size=image_size), T.Normalize()]
    return (T.Compose(train),
            T.Compose([T.Resize(target_size=image_size), T.Normalize()]))


def make_paddlex_datasets(ds: Any, image_size: Optional[int] = None,
                          flip: bool = False) -> Tuple[Any, Any]:
    """``(train_dataset, eval_dataset)``: ``paddlex.datasets.ImageNet`` readers of a ShapesDataset
    (in-process loading, shuffled training set)."""
    import paddlex as pdx

    train_tf, eval_tf = make_transforms(image_size or ds.image_size, flip=flip)
    train = pdx.datasets.ImageNet(ds.root, ds.train_list, ds.labels_file, train_tf,
                                  num_workers=0, shuffle=True)
    val = pdx.datasets.ImageNet(ds.root, ds.val_list, ds.labels_file, eval_tf, num_workers=0)
    return train, val


def val_accuracy(model: Any, eval_dataset: Any, batch_size: int = 16) -> float:
    """Exact top-1 accuracy over all samples (``model.evaluate`` averages per batch)."""
    _, details = model.evaluate(eval_dataset, batch_size=batch_size, return_details=True)
    pred = np.argmax(np.asarray(details["pred_scores"]), axis=1)
    true = np.asarray(details["true_labels"]).reshape(-1)
    return float((pred == true).mean())


@contextlib.contextmanager
def closing_log_writers() -> Iterator[List[Any]]:
    """PaddleX never closes its VisualDL writer (records reach the file every 120 s): record the
    writers made meanwhile and close them after, so that the caller can read PaddleX's curves."""
    import visualdl

    made: List[Any] = []
    original = visualdl.LogWriter

    class Recording(original):  # type: ignore[misc, valid-type]
        def __init__(self, *a: Any, **k: Any) -> None:
            super().__init__(*a, **k)
            made.append(self)

    visualdl.LogWriter = Recording
    try:
        yield made
    finally:
        visualdl.LogWriter = original
        for w in made:
            with contextlib.suppress(Exception):
                w.close()


@dataclass
class TrainedClassifier:
    """What :func:`train_classifier` returns."""

    model: Any  # paddlex.cls.<model_name>, trained; model.test_transforms = eval transforms
    dataset: Any  # the ShapesDataset it was trained on
    save_dir: str  # PaddleX save_dir (epoch_N/ and best_model/ inside)
    best_model_dir: str  # loadable with paddlex.load_model
    accuracy: float  # exact top-1 val accuracy
    train_seconds: float  # wall time of model.train(...)
    model_name: str
    settings: dict = field(default_factory=dict)
    train_dataset: Any = None  # paddlex.datasets.ImageNet used for training
    eval_dataset: Any = None  # paddlex.datasets.ImageNet of the val split

    @property
    def labels(self) -> List[str]:
        return list(self.dataset.labels)


def train_classifier(ds: Any, save_dir: Any, model_name: str = "MobileNetV3_small",
                     num_epochs: int = 4, train_batch_size: int = 16,
                     learning_rate: float = 0.05, lr_decay_epochs: Sequence[int] = (3,),
                     lr_decay_gamma: float = 0.1, warmup_steps: int = 0, flip: bool = False,
                     seed: int = 0, hook: Any = None, save_interval_epochs: Optional[int] = None,
                     **model_kwargs: Any) -> TrainedClassifier:
    """Train a PaddleX classifier from scratch on a ShapesDataset (CPU, seeded); returns a
    :class:`TrainedClassifier`. Evaluates and saves once, after the last epoch (every
    ``save_interval_epochs`` epochs if given; with ``hook`` attached and VisualDL on)."""
    import paddle
    import paddlex as pdx

    paddle.set_device("cpu")
    seed_everything(seed)
    train, val = make_paddlex_datasets(ds, flip=flip)
    model = getattr(pdx.cls, model_name)(num_classes=len(ds.labels), **model_kwargs)
    tic = time.time()
    with closing_log_writers(), (hook.attach(model) if hook else contextlib.nullcontext()):
        model.train(num_epochs=num_epochs, train_dataset=train,
                    train_batch_size=train_batch_size, eval_dataset=val,
                    save_interval_epochs=save_interval_epochs or num_epochs,
                    log_interval_steps=10 ** 6, save_dir=str(save_dir), pretrain_weights=None,
                    learning_rate=learning_rate, warmup_steps=warmup_steps,
                    lr_decay_epochs=tuple(lr_decay_epochs), lr_decay_gamma=lr_decay_gamma,
                    use_vdl=hook is not None)
    seconds = time.time() - tic
    settings = dict(model_name=model_name, num_epochs=num_epochs,
                    train_batch_size=train_batch_size, learning_rate=learning_rate,
                    lr_decay_epochs=tuple(lr_decay_epochs), lr_decay_gamma=lr_decay_gamma,
                    warmup_steps=warmup_steps, flip=flip, seed=seed, **model_kwargs)
    return TrainedClassifier(model=model, dataset=ds, save_dir=str(save_dir),
                             best_model_dir=os.path.join(str(save_dir), "best_model"),
                             accuracy=val_accuracy(model, val, batch_size=train_batch_size),
                             train_seconds=seconds, model_name=model_name, settings=settings,
                             train_dataset=train, eval_dataset=val)
