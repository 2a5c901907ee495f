"""What a training run's output directory holds, read while it is being written: its checkpoints,
whether each is complete, and whether training has ended.

Two layouts (:func:`detect_run`):

* **PaddleX 3 / PaddleClas** (``Global.uniform_output_enabled``, which PaddleX 3 sets):
  ``OUT/epoch_N/`` with ``epoch_N.pdparams`` (``.pdopt``, ``.pdstates``), the exported model in
  ``inference/`` and ``epoch_N.info.json``; ``best_model/`` and ``latest/`` alike, rewritten in
  place (not watched: their contents are an ``epoch_N``'s); ``config.yaml``,
  ``train_results.json`` and the trainer's VisualDL records in ``OUT``. PaddleClas writes
  nothing atomically, but ``save_model_info`` runs last for a checkpoint, after the weights and
  the export: a checkpoint is **complete** when ``epoch_N/epoch_N.info.json`` exists. Training
  has **ended** when ``latest/latest.info.json`` (written at every epoch, after ``epoch_N``)
  names the last epoch of ``config.yaml``'s ``Global.epochs``, or ``train_results.json`` says
  ``done_flag`` (set when the last epoch's ``epoch_N`` is saved).
* **PaddleX 2** (``model.train(save_dir=...)``): ``save_dir/epoch_N/`` with ``model.pdparams``,
  ``model.pdopt``, ``model.yml`` (and ``eval_details.json``), then ``.success``, which
  ``BaseModel.save_model`` writes last: a checkpoint is complete when ``.success`` exists.
  PaddleX 2 writes nothing when training ends (the number of epochs is an argument of
  ``train``): a watcher stops at a given epoch, after an idle time, or when stopped.

A complete checkpoint is read only while its files stay as they are:
:meth:`Checkpoint.signature` (size and modification time of every file the explanation reads)
taken before and after loading must agree, else the load is thrown away and tried again.

Example::

    from paddlex_interpret.training.run_dir import detect_run
    run = detect_run("output")                  # None while the directory shows neither layout
    [(c.name, c.complete) for c in run.checkpoints()]
    run.ended()                                 # None, or why training is over
"""
import json
import os
import re
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

__all__ = ["Checkpoint", "RunDir", "PaddleClasRun", "PaddleX2Run", "detect_run"]

_EPOCH = re.compile(r"^epoch_(\d+)$")


@dataclass
class Checkpoint:
    """One ``epoch_N`` directory: ``complete`` when its completion marker exists; ``files``: what
    an explanation reads from it (relative to ``path``)."""

    epoch: int
    name: str
    path: str
    complete: bool
    files: List[str] = field(default_factory=list)

    def signature(self) -> Optional[List[Tuple[str, int, int]]]:
        """``[(file, size, mtime_ns)]`` of :attr:`files`, or None when one is missing."""
        out = []
        for rel in self.files:
            try:
                st = os.stat(os.path.join(self.path, rel))
            except OSError:
                return None
            out.append((rel, int(st.st_size), int(st.st_mtime_ns)))
        return out


def _read_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):  # absent, or being written
        return None


def _epoch_dirs(root):
    try:
        names = os.listdir(root)
    except OSError:
        return []
    found = [(int(m.group(1)), n) for n in names if (m := _EPOCH.match(n))
             and os.path.isdir(os.path.join(root, n))]
    return sorted(found)


class RunDir:
    """A run directory of one layout (subclasses say which)."""

    kind = ""
    #: the sub-directory (of the run's VisualDL directory) the watcher logs to by default
    LOG_SUBDIR = "watch"

    def __init__(self, root: str):
        self.root = os.path.abspath(os.fspath(root))

    def checkpoints(self) -> List[Checkpoint]:
        """The ``epoch_N`` checkpoints there now, by epoch."""
        return [self._checkpoint(epoch, name) for epoch, name in _epoch_dirs(self.root)]

    def _checkpoint(self, epoch, name):
        raise NotImplementedError

    def last_epoch(self) -> Optional[int]:
        """The run's last epoch when the files say it, else None."""
        return None

    def ended(self) -> Optional[str]:
        """Why training is over, when the files say so; None otherwise."""
        return None

    def default_logdir(self) -> str:
        raise NotImplementedError

    def dataset(self):
        """``(dataset, class names)`` the run evaluates on, when its files name it, else None."""
        return None


class PaddleClasRun(RunDir):
    """A PaddleX 3 / PaddleClas run (see the module docstring)."""

    kind = "paddlex3"

    @staticmethod
    def looks_like(root):
        if os.path.isfile(os.path.join(root, "train_results.json")):
            return True
        return any(os.path.isfile(os.path.join(root, n, n + ".info.json"))
                   or os.path.isdir(os.path.join(root, n, "inference"))
                   for _, n in _epoch_dirs(root))

    def _checkpoint(self, epoch, name):
        from ..adapters.paddleclas import program_files

        path = os.path.join(self.root, name)
        exported = os.path.join(path, "inference")
        files = [name + ".pdparams", os.path.join("inference", "inference.yml")]
        if os.path.isfile(os.path.join(path, name + ".pdema")):
            files.append(name + ".pdema")
        program = program_files(exported)
        if program is not None:
            files += [os.path.relpath(p, path) for p in program]
        complete = os.path.isfile(os.path.join(path, name + ".info.json")) and program is not None
        return Checkpoint(epoch, name, path, complete, files)

    def config(self):
        """``config.yaml`` as a dict (empty when absent or unreadable)."""
        import yaml

        try:
            with open(os.path.join(self.root, "config.yaml"), encoding="utf-8") as f:
                config = yaml.safe_load(f)
        except (OSError, yaml.YAMLError):
            return {}
        return config if isinstance(config, dict) else {}

    def last_epoch(self):
        epochs = (self.config().get("Global") or {}).get("epochs")
        return int(epochs) if isinstance(epochs, int) and epochs > 0 else None

    def ended(self):
        last = self.last_epoch()
        latest = _read_json(os.path.join(self.root, "latest", "latest.info.json")) or {}
        if last is not None and isinstance(latest.get("epoch"), int) and latest["epoch"] >= last:
            return "latest/latest.info.json is at epoch %d, config.yaml's last" % latest["epoch"]
        if (_read_json(os.path.join(self.root, "train_results.json")) or {}).get("done_flag"):
            return "train_results.json says done_flag"
        return None

    def default_logdir(self):
        return os.path.join(self.root, self.LOG_SUBDIR)

    def dataset(self):
        """The evaluation ClsDataset of ``config.yaml`` (``DataLoader.Eval.dataset``)."""
        from ..api.datasets import dataset_from_dir

        spec = ((self.config().get("DataLoader") or {}).get("Eval") or {}).get("dataset") or {}
        root, labels = spec.get("image_root"), spec.get("cls_label_path")
        if not (root and labels and os.path.isdir(root) and os.path.isfile(labels)):
            return None
        names_file = os.path.join(self.root, "label_dict.txt")
        if not os.path.isfile(names_file):
            names_file = os.path.join(os.path.dirname(labels), "label.txt")
        if not os.path.isfile(names_file):
            return None
        items, names, _ = dataset_from_dir(root, os.path.relpath(labels, root),
                                           os.path.relpath(names_file, root))
        return items, names


class PaddleX2Run(RunDir):
    """A PaddleX 2 ``save_dir`` (see the module docstring)."""

    kind = "paddlex2"

    @staticmethod
    def looks_like(root):
        return any(os.path.isfile(os.path.join(root, n, "model.yml"))
                   or os.path.isfile(os.path.join(root, n, "model.pdparams"))
                   for _, n in _epoch_dirs(root)) or os.path.isdir(os.path.join(root, "vdl_log"))

    def _checkpoint(self, epoch, name):
        path = os.path.join(self.root, name)
        return Checkpoint(epoch, name, path, os.path.isfile(os.path.join(path, ".success")),
                          ["model.yml", "model.pdparams"])

    def default_logdir(self):
        return os.path.join(self.root, "vdl_log", self.LOG_SUBDIR)


def detect_run(root: str) -> Optional[RunDir]:
    """The run in ``root``, or None while it shows neither layout (training may not have written
    anything yet)."""
    root = os.fspath(root)
    if not os.path.isdir(root):
        return None
    for layout in (PaddleClasRun, PaddleX2Run):
        if layout.looks_like(root):
            return layout(root)
    return None
