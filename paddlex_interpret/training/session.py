"""What a checkpoint does, as a short recipe: build NormLIME weights, explain the probes, score
them, log everything to VisualDL.

:class:`ExplainSession` knows nothing about *when* it is called:
:class:`~paddlex_interpret.training.hook.ExplainHook` (PaddleX 2.x ``model.train``) and
:class:`~paddlex_interpret.training.callback.ExplainCallback` (``paddle.Model.fit``) decide that
and hand it a :class:`~paddlex_interpret.training.report.CheckpointContext`. One call of
:meth:`ExplainSession.on_checkpoint` does, on rank 0 only and when the schedule says so, the
:mod:`~paddlex_interpret.training.stages` (NormLIME weights every ``normlime_freq``-th time, the
class atlas and shortcut alarm of :mod:`~paddlex_interpret.training.atlas_stage`, every probe) and
writes the :class:`~paddlex_interpret.training.report.CheckpointReport` to the
:class:`~paddlex_interpret.training.sink.VisualDLSink`.

Never hurts training: every stage (and every probe) runs in its own guard; an exception is logged
with its traceback (Python logging and VisualDL text ``explain/errors``) and the next stage goes
on. The model's train/eval mode and the RNG states are saved and restored
(:func:`~paddlex_interpret.runtime.modes.preserve_training_state`); the inference predictors
built for the checkpoint's weights are released after.

Example (what the integrations do)::

    from paddlex_interpret.training.session import ExplainSession
    from paddlex_interpret.training.report import CheckpointContext
    session = ExplainSession(["val/0.png", "val/1.png"], logdir="output/vdl_log/explain")
    report = session.on_checkpoint(CheckpointContext(
        epoch=3, classifier=PaddleXClassifier(model), layer=model.net,
        checkpoint_dir="output/epoch_3", dataset=eval_dataset))
    report.scalars["explain/probe_0/deletion_auc"]
    session.close()
"""
import contextlib
import logging
import os
import time
import traceback
from typing import Any, Dict, List, Optional

import numpy as np

from ..core.segmentation import MemoSegmenter, make_segmenter
from ..runtime.modes import get_rank, preserve_training_state
from .atlas_stage import AtlasStage
from .builders import NormLimeBuilder, as_weights_builder
from .options import ExplainOptions
from .report import CheckpointReport
from .schedule import Schedule
from .sink import VisualDLSink, tag_part
from .stages import NormLimeStage, ProbeStage

__all__ = ["ExplainSession"]

logger = logging.getLogger("paddlex_interpret")


class ExplainSession:
    """Explain a fixed set of probe images at checkpoints and log to VisualDL.

    Args:
        probes: image paths or arrays (any bit depth/channels), or None / ``[]`` (NormLIME, the
            class atlas and the shortcut alarm still run). Each is shown to the model through
            ``classifier.view`` (PaddleX: the geometric steps of ``model.test_transforms``).
        probe_labels: optional true class id per probe: that label is explained at every
            checkpoint (comparable over time); otherwise the predicted top-``top_k``.
        probe_names: optional names used in tags (default ``probe_0``, ``probe_1``...).
        weights_builder: a :class:`~paddlex_interpret.training.builders.WeightsBuilder` or a
            function ``f(context) -> GlobalWeights`` (default: a
            :class:`~paddlex_interpret.training.builders.NormLimeBuilder` on the context's
            dataset).
        **options: :class:`~paddlex_interpret.training.options.ExplainOptions`.

    Cost of one explained checkpoint, in forward passes of the model: ``probes x num_samples``
    for LIME, ``probes x 3 x (metric_steps + 1)`` for deletion/insertion and NormLIME deletion
    (``metrics``) and ``max_images`` for NormLIME (``'fast'``); for the class atlas one forward
    and one backward pass per atlas image, and for the shortcut alarm a few thousand forward
    passes (the transplant scan, about 400 a class, and each region's transplant onto the other
    classes' images; ``report.scalars["alarm/forward_passes"]``); plus a few hundredths of a
    second per rendered panel and, with Paddle Inference, one predictor build for the new
    weights (the network is traced at the first checkpoint only). Once per run the codebook fit
    and the concept occurrences segment the ``max_images`` eval images. Thin it out with
    ``freq`` (and ``normlime_freq`` / ``metrics_freq``).
    """

    def __init__(self, probes=None, probe_labels=None, probe_names=None, *, weights_builder=None,
                 **options):
        self.options = ExplainOptions.from_kwargs(options)
        if isinstance(probes, (str, bytes, os.PathLike)) or (
                isinstance(probes, np.ndarray) and probes.ndim == 3):
            probes = [probes]
        self.probes = list(probes) if probes is not None else []
        n = len(self.probes)
        if probe_labels is not None:
            probe_labels = [None if l is None else int(l) for l in probe_labels]
            if len(probe_labels) != n:
                raise ValueError("probe_labels has %d entries for %d probes"
                                 % (len(probe_labels), n))
        self.probe_labels = probe_labels or [None] * n
        if probe_names is None:
            probe_names = ["probe_%d" % i for i in range(n)]
        if len(probe_names) != n:
            raise ValueError("probe_names has %d entries for %d probes" % (len(probe_names), n))
        self.probe_names = [tag_part(p, "probe") for p in probe_names]
        if len(set(self.probe_names)) != n:
            raise ValueError("probe_names must be distinct: %s" % self.probe_names)
        o = self.options
        self.builder = (as_weights_builder(weights_builder) if weights_builder is not None
                        else NormLimeBuilder(o))
        self.sink = VisualDLSink(o.logdir)
        self.schedule = Schedule(o.freq, o.max_overhead)
        self.normlime_stage = NormLimeStage(o, self.builder)
        segmenter = MemoSegmenter(make_segmenter(o.segmenter, seed=o.seed, **o.segmenter_params))
        self.probe_stage = ProbeStage(o, segmenter)
        self.atlas_stage = AtlasStage(o)
        self._said_no_atlas = False
        self.history = []
        self.reset_run()

    # ------------------------------------------------------------------ run state
    def reset_run(self):
        """Forget per-run state (checkpoint counter, previous weights, fitted codebook). The
        integrations call it when a new training run starts."""
        self.schedule.start()
        self.normlime_stage.reset()
        self.atlas_stage.reset()
        self.codebook = self.options.codebook
        self.global_weights = None

    def should_run(self, is_last=False):
        """Count one checkpoint; True when this one is explained (:class:`Schedule`)."""
        return self.schedule.should_run(is_last)

    def last_alarm_state(self) -> Optional[Dict[str, Any]]:
        """The shortcut alarm's memory after the latest report that carries one, or None."""
        states = [r.alarm_state for r in self.history if r.alarm_state]
        return states[-1] if states else None

    def alarms(self) -> List[Any]:
        """Every class the alarm was raised for in this run (the latest report's memory), by
        class."""
        from ..core.shortcut import ShortcutMemory

        memory, state = ShortcutMemory(), self.last_alarm_state()
        if state:
            memory.restore(state)
        return [a for _, a in sorted(memory.alarms.items())]

    # ------------------------------------------------------------------ VisualDL
    def writer(self, logdir=None):
        """The sink's ``visualdl.LogWriter`` for ``logdir`` (rank 0 only), or None."""
        return self.sink.writer(logdir)

    def flush(self):
        self.sink.flush()

    def close(self):
        """Flush and close the VisualDL writer (a new one is made if the session is used again)."""
        self.sink.close()

    # ------------------------------------------------------------------ main entry
    def on_checkpoint(self, context):
        """Explain at this checkpoint when the schedule says so. Never raises (except
        ``KeyboardInterrupt``/``SystemExit``); returns the report, or None when skipped
        (schedule, or not rank 0)."""
        t0 = time.perf_counter()
        try:
            if get_rank() != 0 or not self.should_run(context.is_last):
                return None
            return self.explain_checkpoint(context)
        except Exception as exc:  # the guard of last resort: training must go on
            self.log_error(None, context, "checkpoint", exc)
            return None
        finally:
            self.schedule.add(time.perf_counter() - t0)

    def explain_checkpoint(self, context):
        """Run all stages now (no schedule check). Stage errors are caught and reported."""
        t0 = time.perf_counter()
        o = self.options
        report = CheckpointReport(epoch=int(context.epoch), pid=os.getpid())
        run_index = self.schedule.next_index()
        if context.shared_weights:  # built by the ranks when due (normlime_freq)
            do_normlime = context.global_weights is not None or bool(context.shared_error)
        else:
            do_normlime = (o.normlime and run_index % o.normlime_freq == 0
                           and (context.dataset is not None or not self.builder.needs_dataset))
        do_metrics = o.metrics and run_index % o.metrics_freq == 0
        with preserve_training_state(context.layer), context.classifier.hold_weights():
            if do_normlime:
                gw = self._stage(report, context, "normlime", self.normlime_stage.run, context,
                                 report)
                if gw is not None:
                    self.global_weights = gw
                    self.codebook = gw.codebook or self.codebook
            gw = self.global_weights if o.normlime else None
            codebook = (gw.codebook or self.codebook) if gw is not None else None
            atlas = o.atlas and context.dataset is not None and self._atlas_supported(context)
            if atlas or (o.alarm and context.dataset is not None):
                self._stage(report, context, "atlas", self.atlas_stage.run, context, report, gw,
                            codebook, self.probe_stage.segmenter, atlas)
            for name, probe, label in zip(self.probe_names, self.probes, self.probe_labels):
                self._stage(report, context, name, self.probe_stage.run, context, report, name,
                            probe, label, do_metrics, gw, codebook,
                            lambda stage, exc: self.log_error(report, context, stage, exc))
        if not report.backend:
            with contextlib.suppress(Exception):
                report.backend = dict(context.classifier.backend_info)
        self._release_engines(context)
        self._summarise(report)
        report.seconds = time.perf_counter() - t0
        report.scalars["explain/seconds"] = report.seconds
        if "normlime" in report.timings:
            report.scalars["explain/seconds_normlime"] = report.timings["normlime"]
        report.scalars["explain/seconds_probes"] = float(sum(
            report.timings.get(n, 0.0) for n in self.probe_names))
        self._stage(report, context, "visualdl", self.sink.write, report, context.logdir)
        for old in self.history:  # bounded memory: only the latest report keeps pictures
            old.images, old.explanations = {}, {}
        self.history.append(report)
        logger.info("explanations for epoch %d: %d probe(s), %d error(s), %.1f s",
                    report.epoch, len(self.probes), len(report.errors), report.seconds)
        return report

    def _atlas_supported(self, context):
        if self.atlas_stage.supports_gradients(context.classifier):
            return True
        if not self._said_no_atlas:
            self._said_no_atlas = True
            logger.info("explanations: no class atlas for a %s (it needs a Paddle network's "
                        "gradients)", type(context.classifier).__name__)
        return False

    @staticmethod
    def _release_engines(context):
        """Free the inference predictors built for this checkpoint's weights (training changes
        them next; the traced program is kept)."""
        if context.layer is None:
            return
        with contextlib.suppress(Exception):
            from ..runtime.cache import release_engines

            release_engines(context.layer)

    # ------------------------------------------------------------------ guards
    def _stage(self, report, context, name, fn, *args):
        t0 = time.perf_counter()
        try:
            return fn(*args)
        except Exception as exc:
            self.log_error(report, context, name, exc)
            return None
        finally:
            report.timings[name] = report.timings.get(name, 0.0) + time.perf_counter() - t0

    def log_error(self, report, context, stage, exc):
        """Log an explanation failure with its traceback (Python logging), and into ``report``
        (written to VisualDL with it) or, without a report, straight to VisualDL."""
        epoch = getattr(context, "epoch", None)
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        message = "explanation stage %r failed at epoch %s: %s: %s" % (
            stage, epoch, type(exc).__name__, exc)
        logger.error("%s\n%s", message, tb)
        if report is not None:
            report.errors.append(message + "\n" + tb)
            return
        self.sink.write_error(message + "\n\n" + tb, epoch, getattr(context, "logdir", None))

    @staticmethod
    def _summarise(report):
        for metric in ("deletion_auc", "insertion_auc", "stability_jaccard",
                       "stability_spearman", "top_weight_se", "certified_top",
                       "num_samples_used"):
            vals = [v for k, v in report.scalars.items()
                    if k.startswith("explain/") and k.endswith("/" + metric)
                    and k.count("/") == 2]
            if vals:
                report.scalars["explain/mean_%s" % metric] = float(np.mean(vals))
        report.scalars["explain/num_errors"] = float(len(report.errors))
