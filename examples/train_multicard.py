"""Multi-card training with explanations: the hook under Paddle's own launcher.

PaddleX users who outgrow one card run their training script with
``python -m paddle.distributed.launch``; this script is such a script, with
:class:`paddlex_interpret.hooks.ExplainHook` attached. Every rank trains (data parallel); PaddleX
saves checkpoints on rank 0 only, so rank 0 alone explains them (in its worker process, by
default) and writes the VisualDL record and ``epoch_N/normlime_weights.npz``; the other ranks
never wait for it. On GPUs every rank takes its own card (``--gpus 0,1``); the hook's worker
runs where ``worker_device`` says (the CPU unless told otherwise).

Run on two CPU processes (no GPU needed)::

    .venv/bin/python -m paddle.distributed.launch --nproc_per_node 2 \\
        examples/train_multicard.py --out multicard_output
    .venv/bin/visualdl --logdir multicard_output/train/vdl_log

On four cards: ``python -m paddle.distributed.launch --gpus 0,1,2,3 examples/train_multicard.py``.
Each rank writes ``<out>/rank<N>.json`` (its world size, the epochs it explained and a digest of
its final weights: the ranks of one run must agree).
"""
import argparse
import contextlib
import hashlib
import json
import logging
import os
import time

from paddlex_interpret.compat import quiet_import_noise  # noqa: E402

quiet_import_noise()  # Paddle's C++ INFO lines and its dependencies' import warnings

import numpy as np  # noqa: E402

import paddlex_interpret  # noqa: E402,F401  (shims before paddlex)
import paddle  # noqa: E402
import paddle.distributed as dist  # noqa: E402
import paddlex as pdx  # noqa: E402
from paddlex_interpret.hooks import ExplainHook  # noqa: E402
from pxi_testing.synthetic import make_shapes_dataset  # noqa: E402


def weights_digest(model):
    """SHA-256 over the model's trainable parameters: equal on every rank, since data parallel
    training all-reduces the gradients (BatchNorm's running statistics are each rank's own)."""
    h = hashlib.sha256()
    for name, value in model.net.named_parameters():
        if value.stop_gradient:  # BatchNorm's running mean and variance
            continue
        h.update(name.encode())
        h.update(np.ascontiguousarray(value.numpy()).tobytes())
    return h.hexdigest()


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="multicard_output")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--image-size", type=int, default=32)
    ap.add_argument("--per-class", type=int, default=32, help="training images per class")
    ap.add_argument("--val-per-class", type=int, default=None,
                    help="validation images per class (default a quarter of --per-class)")
    ap.add_argument("--num-samples", type=int, default=100, help="LIME samples per probe")
    ap.add_argument("--max-images", type=int, default=12, help="NormLIME images per checkpoint")
    ap.add_argument("--normlime-mode", choices=("fast", "aggregate"), default="fast",
                    help="NormLIME weights from predicted labels (fast) or from LIMEs (aggregate)")
    ap.add_argument("--foreground", action="store_true",
                    help="explain in rank 0's training process, not in a worker process")
    ap.add_argument("--no-explain", action="store_true",
                    help="train without the hook (to compare the cost)")
    ap.add_argument("--seed", type=int, default=0)
    return ap.parse_args(argv)


def make_hook(args, probes):
    return ExplainHook(probes, num_samples=args.num_samples, max_images=args.max_images,
                       seed=args.seed, background=not args.foreground, metrics=False,
                       normlime_mode=args.normlime_mode)


def main(argv=None, hook_factory=make_hook):
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    device = os.environ.get("PADDLE_INTERPRET_DEVICE")
    if device is None and not paddle.is_compiled_with_cuda():
        device = "cpu"
    if device:
        paddle.set_device(device)
    dist.init_parallel_env()
    rank, world = dist.get_rank(), dist.get_world_size()
    out = os.path.abspath(args.out)
    data_root = os.path.join(out, "data")
    sizes = dict(num_train_per_class=args.per_class, image_size=args.image_size, seed=args.seed,
                 num_val_per_class=args.val_per_class or max(4, args.per_class // 4))
    if rank == 0:  # one writer; the others wait at the barrier
        make_shapes_dataset(data_root, overwrite=True, **sizes)
    if world > 1:  # a job of one process has no group to wait in
        dist.barrier()
    ds = make_shapes_dataset(data_root, **sizes)
    np.random.seed(args.seed)
    paddle.seed(args.seed)
    T = pdx.transforms
    train_tf = T.Compose([T.RandomCrop(crop_size=args.image_size, scaling=[0.7, 1.0]),
                          T.RandomHorizontalFlip(), T.Normalize()])
    eval_tf = T.Compose([T.Resize(args.image_size), T.Normalize()])
    train = pdx.datasets.ImageNet(ds.root, ds.train_list, ds.labels_file, train_tf,
                                  shuffle=True, num_workers=0)
    val = pdx.datasets.ImageNet(ds.root, ds.val_list, ds.labels_file, eval_tf, num_workers=0)
    probes = [path for path, _, _ in ds.val_items()[:2]]
    model = pdx.cls.MobileNetV3_small(num_classes=len(ds.labels))
    hook = None if args.no_explain else hook_factory(args, probes)
    t0 = time.perf_counter()
    with hook.attach(model) if hook else contextlib.nullcontext():
        model.train(num_epochs=args.epochs, train_dataset=train, train_batch_size=8,
                    eval_dataset=val, save_interval_epochs=1, log_interval_steps=5,
                    save_dir=os.path.join(out, "train"), pretrain_weights=None,
                    learning_rate=0.02, use_vdl=True)
    history = hook.history if hook else []
    summary = {"rank": rank, "world": world, "epochs": [r.epoch for r in history],
               "errors": sum(len(r.errors) for r in history),
               "train_seconds": time.perf_counter() - t0,
               "blocked_seconds": hook.blocked_seconds if hook else 0.0,
               "accuracy": float((getattr(model, "eval_metrics", None) or {}).get("acc1", "nan")),  # rank 0 only
               "weights": weights_digest(model)}
    with open(os.path.join(out, "rank%d.json" % rank), "w") as f:
        json.dump(summary, f)
    logging.info("rank %d of %d: explained epochs %s", rank, world, summary["epochs"])
    return summary


if __name__ == "__main__":
    main()
