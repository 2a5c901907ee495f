"""A PaddleX 3 image-classification training run, written to disk by PaddleClas's own functions.

PaddleX 3 trains a classifier by running PaddleClas's trainer (``tools/train.py`` with
``Global.uniform_output_enabled``) in a subprocess. That trainer cannot run here: the
``paddlex`` 3.x wheel ships no training code, and its PaddleClas plugin is fetched from the
network at install time. The PyPI ``paddleclas`` wheel ships what the trainer writes a run with,
and :func:`write_run` calls it in the trainer's order (``ppcls/engine/engine.py``,
``Engine.train``) after each epoch of a plain Paddle training of a PaddleClas backbone
(``PPLCNet_x0_5`` by default: on the 64 px shapes ``PPLCNet_x0_25``'s eval predictions
swung between classes from epoch to epoch) on a generated dataset:

1. when the eval accuracy is the best so far: ``save_load.save_model`` into ``best_model/``,
   the export (``paddle.jit.save`` of the backbone plus a Softmax, as PaddleClas's
   ``ExportModel``, and ``config.dump_infer_config`` -> ``inference/inference.yml``),
   ``save_result.update_train_results``, ``save_load.save_model_info``;
2. every ``save_interval`` epochs the same into ``epoch_N/`` (``done_flag`` at the last epoch);
3. the same into ``latest/`` (no ``update_train_results``);

plus ``config.yaml`` (the trainer dumps its config first), ``label_dict.txt`` (PaddleX's copy of
the dataset's ``label.txt``), ``train.log`` (PaddleClas's logger) and its VisualDL scalars
(``train_loss``, ``eval_acc``) in ``vdlrecords.*.log`` in the run directory. The files are
theirs; only the training loop is ours.

The dataset is a :class:`~pxi_testing.synthetic.ShapesDataset` root with the
ClsDataset lists PaddleX 3 reads (:func:`write_cls_lists`: ``label.txt``, ``train.txt``,
``val.txt``). Run as a program (what the tests start in the background)::

    python -m pxi_testing.paddleclas_run OUT --dataset ROOT --epochs 3 --sleep 2

Needs ``paddleclas`` (``pip install --no-deps paddleclas==2.6.0``).
"""
import argparse
import copy
import os
import sys
import time
from typing import Optional

import numpy as np

__all__ = ["write_cls_lists", "run_config", "write_run", "main"]


def write_cls_lists(root: str) -> str:
    """Write PaddleX 3's ClsDataset lists into a ShapesDataset ``root`` (``label.txt``: ``"0
    red"``; ``train.txt`` / ``val.txt``: ``"red/train_0.png 0"``) from its ImageNet-layout
    lists; returns ``root``."""
    with open(os.path.join(root, "labels.txt"), encoding="utf-8") as f:
        names = [line.strip() for line in f if line.strip()]
    with open(os.path.join(root, "label.txt"), "w", encoding="utf-8") as f:
        f.writelines("%d %s\n" % (i, n) for i, n in enumerate(names))
    for src, dst in (("train_list.txt", "train.txt"), ("val_list.txt", "val.txt")):
        with open(os.path.join(root, src), encoding="utf-8") as f:
            lines = f.read()
        with open(os.path.join(root, dst), "w", encoding="utf-8") as f:
            f.write(lines)
    return root


def _read_list(root, name):
    with open(os.path.join(root, name), encoding="utf-8") as f:
        rows = [line.rsplit(" ", 1) for line in f if line.strip()]
    return [os.path.join(root, p) for p, _ in rows], np.asarray([int(l) for _, l in rows])


def run_config(out: str, root: str, num_classes: int, size: int, epochs: int,
               arch: str = "PPLCNet_x0_5", model_name: str = "PP-LCNet_x0_5",
               save_interval: int = 1) -> dict:
    """The PaddleClas config of the run, with the overrides PaddleX 3 applies (uniform output,
    its model name, the ClsDataset of ``root``, VisualDL on)."""
    return {
        "Global": {"output_dir": out, "pdx_model_name": model_name,
                   "uniform_output_enabled": True, "epochs": int(epochs),
                   "save_interval": int(save_interval), "eval_during_train": True,
                   "eval_interval": 1, "use_visualdl": True, "device": "cpu",
                   "image_shape": [3, int(size), int(size)]},
        "Arch": {"name": arch, "class_num": int(num_classes)},
        "DataLoader": {"Eval": {"dataset": {"name": "ClsDataset", "image_root": root,
                                            "cls_label_path": os.path.join(root, "val.txt")}}},
        "Infer": {
            "transforms": [
                {"DecodeImage": {"to_rgb": True, "channel_first": False}},
                {"ResizeImage": {"resize_short": int(size)}},
                {"CropImage": {"size": int(size)}},
                {"NormalizeImage": {"scale": "1.0/255.0", "mean": [0.485, 0.456, 0.406],
                                    "std": [0.229, 0.224, 0.225], "order": ""}},
                {"ToCHWImage": None}],
            "PostProcess": {"name": "Topk", "topk": min(5, int(num_classes)),
                            "class_id_map_file": os.path.join(out, "label_dict.txt")}},
    }


def _inputs(paths, ops):
    from paddlex_interpret.adapters.clas_transforms import ClasTransforms

    transforms = ClasTransforms([op for op in ops if "DecodeImage" not in op])
    return transforms.preprocess(np.stack([transforms.view(p) for p in paths]))


class _Checkpoints:
    """PaddleClas's save, export and bookkeeping calls of one checkpoint, in the trainer's order."""

    def __init__(self, config, net, optimizer, arch):
        from ppcls.utils import save_load
        from ppcls.utils.config import dump_infer_config
        from ppcls.utils.save_result import update_train_results

        self.config, self.net, self.optimizer, self.arch = config, net, optimizer, arch
        self.save_load, self.dump, self.update = save_load, dump_infer_config, update_train_results

    def export(self, directory):
        import paddle

        model = paddle.nn.Sequential(copy.deepcopy(self.net), paddle.nn.Softmax(axis=-1))
        model.eval()
        spec = paddle.static.InputSpec([None] + self.config["Global"]["image_shape"], "float32")
        paddle.jit.save(paddle.jit.to_static(model, input_spec=[spec]),
                        os.path.join(directory, "inference"))
        self.dump(copy.deepcopy(self.config), os.path.join(directory, "inference.yml"))

    def epoch_end(self, epoch, acc, best, save_interval, epochs):
        """The saves after an epoch's evaluation, in the trainer's order; the best accuracy."""
        info = {"metric": acc, "epoch": epoch}
        if acc >= best:
            best = acc
            self.save("best_model", info)
        if epoch % save_interval == 0:
            self.save("epoch_%d" % epoch, info, done=epoch == epochs)
        self.save("latest", info, results=False)
        return best

    def save(self, prefix, info, results=True, done=False):
        out = self.config["Global"]["output_dir"]
        self.save_load.save_model(self.net, [self.optimizer], info, os.path.join(out, prefix),
                                  model_name=self.arch, prefix=prefix)
        self.export(os.path.join(out, prefix, "inference"))
        if results:
            self.update(self.config, prefix, info, done_flag=done)
        self.save_load.save_model_info(info, out, prefix)


def _start(out, root, epochs, arch, model_name, size, save_interval):
    """The run directory's first files (``label_dict.txt``, ``config.yaml``, ``train.log``'s
    logger) and ``(config, (train paths, labels), (val paths, labels))``."""
    import yaml

    from ppcls.utils import logger

    os.makedirs(out, exist_ok=True)
    if not os.path.isfile(os.path.join(root, "label.txt")):
        write_cls_lists(root)
    with open(os.path.join(root, "label.txt"), encoding="utf-8") as f:
        labels = f.read()
    with open(os.path.join(out, "label_dict.txt"), "w", encoding="utf-8") as f:
        f.write(labels)
    train, val = _read_list(root, "train.txt"), _read_list(root, "val.txt")
    if size is None:
        from paddlex_interpret.core.images import load_image

        size = int(min(load_image(train[0][0]).shape[:2]))
    config = run_config(out, root, len(labels.splitlines()), size, epochs, arch, model_name,
                        save_interval)
    with open(os.path.join(out, "config.yaml"), "w", encoding="utf-8") as f:
        yaml.dump(config, f)
    logger.init_logger(log_file=os.path.join(out, "train.log"))
    return config, train, val


def write_run(out: str, root: str, epochs: int = 3, sleep: float = 0.0,
              arch: str = "PPLCNet_x0_5", model_name: str = "PP-LCNet_x0_5",
              size: Optional[int] = None, seed: int = 0, learning_rate: float = 0.05,
              batch_size: int = 16, save_interval: int = 1) -> str:
    """Train ``arch`` on the ShapesDataset at ``root`` for ``epochs`` epochs and write the run
    into ``out`` as PaddleX 3's trainer does (see the module docstring); ``sleep`` seconds
    between epochs (a watcher test's pace). Returns ``out``."""
    import paddle
    from visualdl import LogWriter

    from paddlex_interpret.adapters.paddleclas_net import import_ppcls

    import_ppcls()
    from ppcls.arch import backbone
    from ppcls.utils import logger

    out = os.path.abspath(out)
    config, (train_x, train_y), (val_x, val_y) = _start(out, root, epochs, arch, model_name,
                                                        size, save_interval)
    vdl = LogWriter(logdir=out)
    paddle.set_device("cpu")
    paddle.seed(seed)
    rng = np.random.default_rng(seed)
    net = getattr(backbone, arch)(class_num=config["Arch"]["class_num"])
    decay = paddle.optimizer.lr.PiecewiseDecay(  # a tenth for the last third of the epochs
        [max(1, round(2 * int(epochs) / 3)) * ((len(train_x) + batch_size - 1) // batch_size)],
        [learning_rate, learning_rate * 0.1])
    optimizer = paddle.optimizer.Momentum(learning_rate=decay, momentum=0.9,
                                          parameters=net.parameters())
    checkpoints = _Checkpoints(config, net, optimizer, arch)
    xt, xe = (_inputs(x, config["Infer"]["transforms"]) for x in (train_x, val_x))
    loss_fn, best, step = paddle.nn.CrossEntropyLoss(), -1.0, 0
    for epoch in range(1, int(epochs) + 1):
        net.train()
        order = rng.permutation(len(xt))
        for b in range(0, len(order), batch_size):
            idx = order[b:b + batch_size]
            loss = loss_fn(net(paddle.to_tensor(xt[idx])), paddle.to_tensor(train_y[idx]))
            loss.backward()
            optimizer.step()
            optimizer.clear_grad()
            step += 1
            logger.scaler("lr(PiecewiseDecay)", decay.get_lr(), step, vdl)
            logger.scaler("train_loss", float(loss), step, vdl)
            decay.step()
        net.eval()
        with paddle.no_grad():
            acc = float((net(paddle.to_tensor(xe)).numpy().argmax(1) == val_y).mean())
        logger.info("[Eval][Epoch %d][Avg]top1: %.5f" % (epoch, acc))
        logger.scaler("eval_acc", acc, epoch, vdl)
        best = checkpoints.epoch_end(epoch, acc, best, int(save_interval), int(epochs))
        vdl.flush()
        if sleep and epoch < int(epochs):
            time.sleep(float(sleep))
    vdl.close()
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="write a PaddleX 3 training run with PaddleClas's "
                                             "functions")
    ap.add_argument("out")
    ap.add_argument("--dataset", required=True, help="a ShapesDataset root")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--sleep", type=float, default=0.0, help="seconds between epochs")
    ap.add_argument("--arch", default="PPLCNet_x0_5")
    ap.add_argument("--model-name", default="PP-LCNet_x0_5")
    ap.add_argument("--size", type=int, default=None, help="input side (default the images')")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--learning-rate", type=float, default=0.05)
    ap.add_argument("--save-interval", type=int, default=1)
    a = ap.parse_args(argv)
    write_run(a.out, a.dataset, a.epochs, a.sleep, a.arch, a.model_name, a.size, a.seed,
              a.learning_rate, save_interval=a.save_interval)
    return 0


if __name__ == "__main__":
    sys.exit(main())
