"""Explanations during ``paddle.Model.fit`` with ``paddlex_interpret.callbacks.ExplainCallback``.

Generates the coloured-shapes dataset (the object's colour decides the class; the training images
of one class carry a small corner watermark, a shortcut the model may learn), trains a small CNN
with Paddle's high-level API and, after every epoch, logs to VisualDL: LIME and NormLIME overlays
of a few validation images, deletion/insertion AUC, stability, NormLIME drift and the top concepts
per class. Paddle's own ``VisualDL`` callback writes the loss/accuracy curves next to them.

Run::

    .venv/bin/python examples/paddle_model_fit_callback.py --out fit_output --epochs 4
    .venv/bin/visualdl --logdir fit_output/vdl_log      # then open http://localhost:8040

What you see: the scalars tab has ``train/loss`` and ``eval/acc`` (run ``.``) and the
``explain/...`` and ``normlime/...`` curves (run ``explain``); the image tab has one
``explain/probe_<i>/lime`` and ``explain/probe_<i>/normlime`` panel per probe, with a slider over
the epochs; the text tab has ``normlime/top_concepts``. The NormLIME weights of every epoch are in
``fit_output/ckpt/<epoch>/normlime_weights.npz`` next to Paddle's checkpoints.
"""
import argparse
import logging
import os
import time

import numpy as np

import paddlex_interpret  # noqa: F401  (before paddle/paddlex)
import paddle
from paddlex_interpret.callbacks import ExplainCallback, make_preprocess
from paddlex_interpret.core.images import load_image
from pxi_testing.synthetic import make_shapes_dataset


class ShapesData(paddle.io.Dataset):
    """(image CHW float32, label) pairs, preprocessed once; random horizontal flips."""

    def __init__(self, images, labels, preprocess, augment=False):
        self.x = preprocess(images)
        self.y = np.asarray(labels, dtype="int64").reshape(-1, 1)
        self.augment = augment

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        x = self.x[i]
        if self.augment and np.random.rand() < 0.5:
            x = x[:, :, ::-1].copy()
        return x, self.y[i]


def small_cnn(num_classes):
    nn = paddle.nn
    return nn.Sequential(
        nn.Conv2D(3, 16, 3, padding=1), nn.BatchNorm2D(16), nn.ReLU(), nn.MaxPool2D(2),
        nn.Conv2D(16, 32, 3, padding=1), nn.BatchNorm2D(32), nn.ReLU(), nn.MaxPool2D(2),
        nn.Conv2D(32, 64, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2D(1), nn.Flatten(),
        nn.Linear(64, num_classes))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="fit_output", help="output directory")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--image-size", type=int, default=48)
    p.add_argument("--train-per-class", type=int, default=60)
    p.add_argument("--val-per-class", type=int, default=15)
    p.add_argument("--probes", type=int, default=3, help="validation images explained per epoch")
    p.add_argument("--num-samples", type=lambda t: t if t == "auto" else int(t), default="auto",
                   help="LIME samples per probe: 'auto' (until its top 5 are certified, at most "
                        "1000) or a number")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    ds = make_shapes_dataset(os.path.join(args.out, "data"), image_size=args.image_size,
                             num_train_per_class=args.train_per_class,
                             num_val_per_class=args.val_per_class, seed=args.seed,
                             watermark_class="blue")

    def arrays(items):
        return (np.stack([load_image(path) for path, _, _ in items]),
                np.array([label for _, label, _ in items], dtype=np.int64))

    x_train, y_train = arrays(ds.train_items())
    x_val, y_val = arrays(ds.val_items())
    preprocess = make_preprocess()  # uint8 NHWC -> normalised float NCHW, for fit and LIME

    # one probe per class (then more), with its true label so each epoch explains the same class
    order = np.argsort(np.arange(len(y_val)) % args.val_per_class, kind="stable")
    probe_idx = order[:args.probes]
    callback = ExplainCallback(
        [x_val[i] for i in probe_idx], probe_labels=[int(y_val[i]) for i in probe_idx],
        preprocess=preprocess, label_names=ds.labels,
        logdir=os.path.join(args.out, "vdl_log", "explain"),
        save_dir=os.path.join(args.out, "ckpt"),
        normlime_data=(list(x_val), y_val),          # NormLIME on the validation images
        num_samples=args.num_samples, seed=args.seed, segmenter="slic",
        segmenter_params={"n_segments": 40})

    paddle.seed(args.seed)
    np.random.seed(args.seed)
    net = small_cnn(len(ds.labels))
    model = paddle.Model(net)
    model.prepare(paddle.optimizer.Adam(learning_rate=3e-3, parameters=net.parameters()),
                  paddle.nn.CrossEntropyLoss(), paddle.metric.Accuracy())
    t0 = time.perf_counter()
    model.fit(ShapesData(x_train, y_train, preprocess, augment=True),
              ShapesData(x_val, y_val, preprocess), epochs=args.epochs, batch_size=32,
              save_dir=os.path.join(args.out, "ckpt"), verbose=1,
              callbacks=[callback, paddle.callbacks.VisualDL(os.path.join(args.out, "vdl_log"))])
    total = time.perf_counter() - t0
    callback.close()
    spent = sum(r.seconds for r in callback.history)
    print("trained %d epochs in %.1f s, of which %.1f s explaining (%d checkpoints)"
          % (args.epochs, total, spent, len(callback.history)))
    last = callback.history[-1]
    for name, exp in last.explanations.items():
        print("%s: true %s, predicted %s (p=%.2f), deletion AUC %.3f" % (
            name, exp.label_name(exp.labels[0]), exp.label_name(exp.predicted_label),
            exp.predicted_probability, last.scalars.get("explain/%s/deletion_auc" % name,
                                                        float("nan"))))
    print("open the board: visualdl --logdir %s" % os.path.join(args.out, "vdl_log"))


if __name__ == "__main__":
    main()
