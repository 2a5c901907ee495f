"""Explain a training run's checkpoints as they appear, from the file system, in a process of its
own: for training that cannot be hooked (PaddleX 3 runs PaddleClas's trainer in a subprocess),
and for PaddleX 2 ``save_dir`` s too.

:class:`Watcher` polls the run directory (:mod:`~paddlex_interpret.training.run_dir`: which
``epoch_N`` checkpoints exist, which are complete, whether training has ended) and runs the same
:class:`~paddlex_interpret.training.session.ExplainSession` as the PaddleX 2 hook on each new
complete checkpoint, in epoch order, once: NormLIME weights, the probes' LIME and NormLIME
panels, the metrics, the class atlas and the shortcut alarm, all into a VisualDL log next to the
run's own (``OUT/watch`` for PaddleX 3, ``save_dir/vdl_log/watch`` for PaddleX 2: a records file
in the run directory itself would hide the trainer's curves; ``visualdl --logdir OUT`` shows
both). The NormLIME weights of checkpoint ``epoch_N`` go to ``<log dir>/normlime/epoch_N.npz``:
nothing is written into the trainer's directories.

The model of a checkpoint: PaddleX 2, ``paddlex.load_model`` of the first, then only the weights
of the next; PaddleX 3, the checkpoint's network when PaddleClas's library is there
(:class:`~paddlex_interpret.adapters.paddleclas_net.PaddleClasNetwork`: gradients, so the class
atlas runs as in the hook), else its exported model (predictions only:
:class:`~paddlex_interpret.adapters.paddleclas.PaddleClasClassifier`). A checkpoint is read only
when complete, and only if its files did not change while it was read. A checkpoint that cannot
be read is logged (Python logging and the VisualDL text ``explain/errors`` at its epoch), recorded
as failed, and the next one goes on; one that never completed while a later one did is skipped.

Progress lives in ``<log dir>/watch_state.json`` (:mod:`~paddlex_interpret.training.watch_state`):
started again (after Ctrl-C or a kill), the watcher explains only what is left, cuts off the
records of a checkpoint stopped half-way, and goes on with the run's NormLIME codebook, the
previous weights (drift) and the alarm's memory.

When it stops: PaddleX 3, once training has ended (the files say so) and every checkpoint is
explained; ``until_epoch``; ``idle_timeout`` seconds without a new checkpoint; ``once`` (what is
there now); Ctrl-C.

Example::

    from paddlex_interpret.training.watch import watch
    watcher = watch("output", ["val/0.png", "val/7.png"], dataset="dataset")   # blocks
    watcher.session.history[-1].scalars["explain/mean_deletion_auc"]
"""
import json
import logging
import os
import time
from typing import Any, Dict, Optional

from ..core.normlime.weights import GlobalWeights
from ..errors import DatasetError, UnsupportedModelError
from .report import CheckpointJob
from .run_dir import PaddleClasRun, detect_run
from .session import ExplainSession
from .watch_state import WatchState

__all__ = ["Watcher", "watch"]

logger = logging.getLogger("paddlex_interpret")


class _Loader:
    """A checkpoint's classifier (and its Layer, or None), reusing the model of the last one."""

    def __init__(self, kind, network, device, num_threads):
        self.kind, self.network = kind, network
        self.device, self.num_threads = device, num_threads
        self.model = self.classifier = None

    def load(self, checkpoint):
        import paddle

        paddle.set_device(self.device)
        if self.kind == "paddlex2":
            return self._paddlex2(checkpoint.path)
        if self.classifier is not None and self.network:
            self.classifier.load_checkpoint(checkpoint.path)
            return self.classifier, self.classifier.layer
        if self.network is not False:
            from ..adapters.paddleclas_net import PaddleClasNetwork

            try:
                self.classifier = PaddleClasNetwork.from_checkpoint(
                    checkpoint.path, num_threads=self.num_threads)
                self.network = True
                logger.info("watch: explaining the checkpoints' network (PaddleClas's ppcls): "
                            "gradients and the class atlas too")
                return self.classifier, self.classifier.layer
            except (ImportError, UnsupportedModelError) as exc:
                if self.network:
                    raise
                logger.info("watch: no network (%s); explaining the exported models "
                            "(predictions only: no class atlas)", exc)
                self.network = False
        from ..adapters.paddleclas import PaddleClasClassifier

        return PaddleClasClassifier(checkpoint.path, num_threads=self.num_threads), None

    def _paddlex2(self, path):
        import paddle

        if self.model is None:
            from ..adapters.paddlex import PaddleXClassifier
            from ..compat import ensure_paddlex

            self.model = ensure_paddlex().load_model(path)
            self.classifier = PaddleXClassifier(self.model, num_threads=self.num_threads)
        else:
            self.model.net.set_state_dict(paddle.load(os.path.join(path, "model.pdparams")))
        return self.classifier, self.model.net


def _json_ready(value):
    return json.loads(json.dumps(value, sort_keys=True, default=repr))


class Watcher:
    """Explain the checkpoints of the run in ``run_dir`` (see the module docstring).

    Args:
        run_dir: the training output directory (PaddleX 3 ``Global.output`` / PaddleX 2
            ``save_dir``); it may not exist yet.
        probes, probe_labels, probe_names: the images explained at every checkpoint (as for
            :class:`~paddlex_interpret.training.session.ExplainSession`).
        dataset: NormLIME's and the atlas's images: a dataset directory (PaddleX 3 / PaddleClas
            ``val.txt`` + ``label.txt``, PaddleX 2 ``val_list.txt`` + ``labels.txt``, or a
            folder of images), or anything the session takes; default a PaddleX 3 run's own
            evaluation set (``config.yaml``), else none (no NormLIME, no atlas).
        logdir: VisualDL directory (default the run's ``watch`` sub-directory).
        until_epoch: stop after this epoch's checkpoint. idle_timeout: stop after this many
            seconds without a new checkpoint. once: explain what is there now, then stop.
        poll_seconds: how often the directory is read.
        network: PaddleX 3 checkpoints: their network (True), their exported models (False),
            or the network when PaddleClas's library is installed (None).
        device: Paddle device of the explanations (default ``'cpu'``: training has the card).
        num_threads: CPU threads (default all cores but one: training keeps one).
        **options: :class:`~paddlex_interpret.training.options.ExplainOptions`.
    """

    def __init__(self, run_dir, probes, dataset=None, *, probe_labels=None, probe_names=None,
                 logdir=None, until_epoch=None, idle_timeout=None, once=False,
                 poll_seconds=2.0, network=None, device="cpu", num_threads=None, **options):
        from .options import ExplainOptions
        from .worker import default_worker_threads

        if options.get("max_overhead") is not None:
            raise ValueError("max_overhead budgets the hook's share of training time; the "
                             "watcher runs in its own process (thin it out with freq)")
        self._check = ExplainOptions.from_kwargs(dict(options, logdir=None))  # fail early
        self.run_dir = os.path.abspath(os.fspath(run_dir))
        self.probes, self.probe_labels, self.probe_names = probes, probe_labels, probe_names
        self.dataset, self.logdir, self.options = dataset, logdir, dict(options)
        self.until_epoch = None if until_epoch is None else int(until_epoch)
        self.idle_timeout = None if idle_timeout is None else float(idle_timeout)
        self.once, self.poll_seconds = bool(once), float(poll_seconds)
        self.network, self.device = network, device
        self.num_threads = int(num_threads or default_worker_threads())
        self.run = self.session = self.state = self.loader = None
        self.names = None
        self._last_activity = time.monotonic()
        self._seen = set()

    # ------------------------------------------------------------------ set-up
    def _settings(self):
        probes = [p if isinstance(p, (str, os.PathLike)) else "array%s" % (getattr(
            p, "shape", ""),) for p in ([self.probes] if isinstance(self.probes, str)
                                        else self.probes)]
        dataset = self.dataset if isinstance(self.dataset, (str, os.PathLike, type(None))) \
            else "%s of %d" % (type(self.dataset).__name__, len(self.dataset))
        return _json_ready({"options": self.options, "probes": probes,
                            "probe_labels": self.probe_labels, "probe_names": self.probe_names,
                            "dataset": dataset, "network": self.network})

    def _resolve_dataset(self):
        from ..api.datasets import dataset_from_dir

        if isinstance(self.dataset, (str, os.PathLike)):
            items, self.names, layout = dataset_from_dir(self.dataset)
            logger.info("watch: dataset %s (%s layout)", self.dataset, layout)
            return items
        if self.dataset is None:
            found = self.run.dataset()
            if found is not None:
                logger.info("watch: the run's evaluation set (config.yaml), %d images",
                            len(found[0]))
                items, self.names = found
                return items
            logger.info("watch: no dataset: the probes only (no NormLIME, no class atlas); "
                        "give one to have them")
        return self.dataset

    def _start(self, run):
        self.run = run
        logdir = os.path.abspath(self.logdir or run.default_logdir())
        self.state = WatchState.open(logdir, run.root, run.kind, self._settings())
        dropped = self.state.trim_records()
        if dropped:
            logger.info("watch: cut %d bytes of a checkpoint's records that a stopped watcher "
                        "left half-written in %s", dropped, self.state.records_path)
        options = dict(self.options, logdir=logdir)
        done = self.state.data["checkpoints"]
        explained = [d for d in done.values() if d["status"] == "explained"
                     and d.get("weights_file") and os.path.isfile(d["weights_file"])]
        first = min(explained, key=lambda d: d["epoch"], default=None)
        if first is not None and options.get("codebook") is None:
            options["codebook"] = GlobalWeights.load(first["weights_file"]).codebook
        self.session = ExplainSession(self.probes, self.probe_labels, self.probe_names, **options)
        self.session.sink.log_files[logdir] = self.state.data["records_file"]
        self._resume(explained)
        self.dataset_items = self._resolve_dataset()
        self.loader = _Loader(run.kind, self.network, self.device, self.num_threads)
        logger.info("watch: %s (%s run); logs to %s; %s", run.root, run.kind, logdir,
                    self._stop_rule())

    def _resume(self, explained):
        """Go on from the state: the schedule's counts, the last weights (drift), the alarm."""
        session = self.session
        session.schedule.triggers, session.schedule.explained = self.state.counts()
        last = max(explained, key=lambda d: d["epoch"], default=None)
        if last is not None:
            import numpy as np

            gw = GlobalWeights.load(last["weights_file"])
            session.normlime_stage.previous = np.asarray(gw.weights, dtype=np.float64)
            session.global_weights = gw
        if self.state.data.get("alarm_state"):
            session.atlas_stage.memory.restore(self.state.data["alarm_state"])
        if self.state.data["checkpoints"]:
            logger.info("watch: going on after %d checkpoint(s) done before",
                        len(self.state.data["checkpoints"]))

    def _stop_rule(self):
        rules = []
        if self.until_epoch is not None:
            rules.append("at epoch %d" % self.until_epoch)
        if isinstance(self.run, PaddleClasRun):
            rules.append("when training ends (latest/latest.info.json at config.yaml's last "
                         "epoch%s, or train_results.json's done_flag)"
                         % (" %s" % self.run.last_epoch() if self.run.last_epoch() else ""))
        if self.idle_timeout is not None:
            rules.append("after %.0f s without a new checkpoint" % self.idle_timeout)
        rules.append("on Ctrl-C")
        return "stops " + ", ".join(rules)

    # ------------------------------------------------------------------ the loop
    def poll(self) -> Optional[str]:
        """Read the directory once and explain what is ready; returns why to stop, or None."""
        if self.run is None:
            run = detect_run(self.run_dir)
            if run is None:
                if self.once:
                    return "nothing to watch in %s" % self.run_dir
                return self._stop_reason([], True)  # the idle timeout runs from the start
            self._start(run)
        pending = False
        checkpoints = self.run.checkpoints()
        for ck in checkpoints:
            if self.state.done(ck.name):
                continue
            if self.until_epoch is not None and ck.epoch > self.until_epoch:
                break
            if ck.name not in self._seen:
                self._seen.add(ck.name)
                self._last_activity = time.monotonic()
            if not ck.complete:
                if any(c.complete and c.epoch > ck.epoch for c in checkpoints):
                    logger.warning("watch: %s never completed (a later checkpoint did): "
                                   "skipped", ck.path)
                    self.state.finish(ck.name, ck.epoch, "skipped", error="never completed")
                    continue
                pending = True
                break
            if not self._explain(ck):
                pending = True
                break
            self._last_activity = time.monotonic()
        return self._stop_reason(checkpoints, pending)

    def _stop_reason(self, checkpoints, pending):
        if self.once and self.run is not None:  # an incomplete checkpoint is left for later
            return "explained what was there"
        if not pending:
            done = [c for c in checkpoints if self.state.done(c.name)]
            if self.until_epoch is not None and any(c.epoch >= self.until_epoch for c in done):
                return "epoch %d reached" % self.until_epoch
            ended = self.run.ended()  # read before the checkpoints: they come before the end
            if ended and all(self.state.done(c.name) for c in self.run.checkpoints()):
                return "training ended (%s)" % ended
        if self.idle_timeout is not None and \
                time.monotonic() - self._last_activity > self.idle_timeout:
            return "no new checkpoint for %.0f s" % self.idle_timeout
        return None

    def _is_last(self, ck):
        last = self.until_epoch or self.run.last_epoch()
        return last is not None and ck.epoch >= last

    def _explain(self, ck) -> bool:
        """Explain one complete checkpoint; False when its files changed while it was read
        (tried again at the next poll)."""
        before = ck.signature()
        job = CheckpointJob(
            epoch=ck.epoch, dataset=self.dataset_items, logdir=self.state.logdir,
            weights_path=os.path.join(self.state.logdir, "normlime", ck.name + ".npz"),
            is_last=self._is_last(ck))
        t0 = time.perf_counter()
        try:
            classifier, layer = self.loader.load(ck)
        except Exception as exc:
            if ck.signature() != before:
                return False
            self.session.log_error(None, job.context(), "load checkpoint %s" % ck.path, exc)
            self.state.finish(ck.name, ck.epoch, "failed", error="%s: %s" % (
                type(exc).__name__, exc))
            return True
        if before is None or ck.signature() != before:
            logger.info("watch: %s changed while it was read; reading it again", ck.path)
            return False
        load_seconds = time.perf_counter() - t0
        self._check_classes(classifier)
        if not self.session.should_run(self._is_last(ck)):
            self.state.finish(ck.name, ck.epoch, "thinned (freq)")
            return True
        context = job.context(classifier, layer)
        try:
            report = self.session.explain_checkpoint(context)
        except Exception as exc:  # the stages guard themselves; this is the last resort
            self.session.log_error(None, context, "checkpoint", exc)
            self.state.finish(ck.name, ck.epoch, "failed", error="%s: %s" % (
                type(exc).__name__, exc))
            return True
        self.session.flush()
        self.state.finish(ck.name, ck.epoch, "explained", seconds=round(report.seconds, 3),
                          load_seconds=round(load_seconds, 3),
                          errors=len(report.errors), weights_file=report.weights_file,
                          alarms=[a.to_dict() for a in report.alarms],
                          alarm_state=report.alarm_state,
                          model=type(classifier).__name__)
        return True

    def _check_classes(self, classifier):
        if self.names is not None and classifier.label_names is not None and \
                list(self.names) != list(classifier.label_names):
            raise DatasetError("the dataset's classes %s are not the model's %s"
                               % (list(self.names), list(classifier.label_names)))

    def run_until_done(self) -> str:
        """Poll until a stop rule says so (see the module docstring); returns why it stopped.
        On Ctrl-C (``KeyboardInterrupt``) the log is closed and cut back to the last finished
        checkpoint before the interrupt goes on."""
        try:
            while True:
                reason = self.poll()
                if reason is not None:
                    logger.info("watch: stopped: %s", reason)
                    return reason
                time.sleep(self.poll_seconds)
        finally:
            self.close()

    def close(self) -> None:
        """Close the VisualDL writer; what a checkpoint stopped half-way wrote is cut off."""
        if self.session is not None:
            self.session.close()
        if self.state is not None:
            self.state.trim_records()

    def outcomes(self) -> Dict[str, Dict[str, Any]]:
        """Every checkpoint handled so far (also by earlier watchers): ``{name: outcome}``."""
        return dict(self.state.data["checkpoints"]) if self.state is not None else {}


def watch(run_dir, probes, dataset=None, **kwargs) -> Watcher:
    """Watch ``run_dir`` until a stop rule says so (blocks); returns the :class:`Watcher`
    (``.outcomes()``, ``.session.history``). Arguments: :class:`Watcher`'s."""
    watcher = Watcher(run_dir, probes, dataset, **kwargs)
    watcher.run_until_done()
    return watcher
