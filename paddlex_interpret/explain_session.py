"""The shared core of the training integrations: at a checkpoint, build NormLIME global weights,
explain the probe images, render them, score them and log everything to VisualDL.

:class:`ExplainSession` knows nothing about *when* it is called: :class:`~paddlex_interpret.hooks.
ExplainHook` (PaddleX 2.x ``model.train``) and :class:`~paddlex_interpret.callbacks.ExplainCallback`
(``paddle.Model.fit``) decide that and hand it a :class:`CheckpointContext`. One call of
:meth:`ExplainSession.on_checkpoint` does, on rank 0 only:

1. NormLIME weights (every ``normlime_freq``-th run): a builder given by the integration computes
   :class:`~paddlex_interpret.core.normlime.GlobalWeights` on the eval set (``max_images``,
   ``normlime_mode``); the concept codebook is fitted once and kept for the whole run so that
   weights from different checkpoints are comparable; the weights file is written into the
   checkpoint directory (``normlime_weights.npz``); the drift since the previous weights is a scalar
   and the top concepts per class are text.
2. For every probe: LIME (fixed ``seed``, so checkpoints are comparable; the superpixels are
   computed once per probe and reused), and NormLIME-filtered LIME when global weights exist
   (``normlime`` = the global weight of each superpixel's concept for the label, ``combined`` =
   LIME x NormLIME). Each is rendered as a small panel (image, top superpixels, heat map, with the
   predicted label and probability in the title) and logged with ``add_image`` under the stable tags
   ``explain/<probe>/lime`` and ``explain/<probe>/normlime``, step = epoch.
3. Scalars (every ``metrics_freq``-th run): deletion and insertion AUC per probe
   (:mod:`paddlex_interpret.core.metrics`), the sampling stability of LIME (top-k Jaccard and
   Spearman between surrogates fitted on the two halves of the samples: no extra model calls),
   the probability of the explained label, and the seconds spent (per stage too).

Never hurts training: every stage (and every probe) runs in its own ``try``; an exception is
logged with its traceback (Python logging and VisualDL text ``explain/errors``) and the next stage
goes on. The model's train/eval mode (of every sub-layer), the RNG states of Paddle, NumPy and
``random`` are saved before and restored after; everything runs under ``paddle.no_grad()``; GPU
cache is released after. Nothing is written on ranks other than 0 (multi-card: the NormLIME
weights are built by rank 0 alone; the other ranks go on until the next collective).

Example (what the integrations do)::

    import paddlex_interpret
    from paddlex_interpret.explain_session import ExplainSession, CheckpointContext
    from paddlex_interpret.predictors import PaddleXClassifier
    session = ExplainSession(["val/0.png", "val/1.png"], logdir="output/vdl_log/explain")
    report = session.on_checkpoint(CheckpointContext(
        epoch=3, classifier=PaddleXClassifier(model), layer=model.net,
        checkpoint_dir="output/epoch_3", weights_builder=my_builder))
    report.scalars["explain/probe_0/deletion_auc"]
    session.close()
"""
import contextlib
import logging
import os
import random
import re
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional

import numpy as np

__all__ = ["ExplainSession", "CheckpointContext", "CheckpointReport", "preserve_training_state",
           "get_rank", "render_panel", "core_weights_builder", "WEIGHTS_FILENAME"]

logger = logging.getLogger("paddlex_interpret")

#: File name of the NormLIME weights written into each checkpoint directory.
WEIGHTS_FILENAME = "normlime_weights.npz"


def get_rank():
    """This process's rank in ``paddle.distributed`` (0 when not distributed or no Paddle)."""
    try:
        import paddle.distributed as dist

        return int(dist.get_rank())
    except Exception:  # not initialised, or no paddle: single process
        return 0


def _release_device_memory():
    try:
        import paddle

        if paddle.device.is_compiled_with_cuda():
            paddle.device.cuda.empty_cache()
    except Exception:  # best effort only
        logger.debug("could not release device memory", exc_info=True)


@contextlib.contextmanager
def preserve_training_state(layer=None):
    """Run a block without leaving a trace on training.

    Saves and restores the RNG states of Paddle (``paddle.get_rng_state()``, and the CUDA one when
    compiled with CUDA), NumPy's global generator and Python's ``random``; the ``training`` flag of
    ``layer`` and every sub-layer (a frozen ``BatchNorm`` left in eval mode stays so); runs the
    block under ``paddle.no_grad()`` with ``layer`` in eval mode; releases GPU cache after.
    """
    import paddle

    np_state = np.random.get_state()
    py_state = random.getstate()
    pd_state = paddle.get_rng_state()
    cuda_state = None
    if paddle.device.is_compiled_with_cuda():
        try:
            cuda_state = paddle.get_cuda_rng_state()
        except Exception:
            cuda_state = None
    modes = []
    if layer is not None:
        modes = [(sub, sub.training) for sub in layer.sublayers(include_self=True)]
        layer.eval()
    try:
        with paddle.no_grad():
            yield
    finally:
        for sub, mode in modes:
            sub.training = mode
        np.random.set_state(np_state)
        random.setstate(py_state)
        paddle.set_rng_state(pd_state)
        if cuda_state is not None:
            with contextlib.suppress(Exception):
                paddle.set_cuda_rng_state(cuda_state)
        _release_device_memory()


@dataclass
class CheckpointContext:
    """What an integration knows at a checkpoint.

    Attributes:
        epoch: the VisualDL step (completed epochs, 1-based).
        classifier: ``(B, H, W, 3) uint8 -> (B, C)`` with ``view(image)``
            (e.g. ``PaddleXClassifier``).
        layer: the ``paddle.nn.Layer`` whose mode is saved/restored (``model.net``).
        checkpoint_dir: where the NormLIME weights file goes (None: not written).
        weights_path: explicit path for the weights file (overrides ``checkpoint_dir``).
        weights_builder: ``f(session, context) -> GlobalWeights`` (None: no NormLIME).
        logdir: VisualDL directory for this run (None: the session's).
        is_last: the final checkpoint of the run (always explained, whatever ``freq``).
        label_names: class names.
        extra: anything an integration wants to pass its builder.
    """

    epoch: int
    classifier: Any
    layer: Any = None
    checkpoint_dir: Optional[str] = None
    weights_path: Optional[str] = None
    weights_builder: Optional[Callable] = None
    logdir: Optional[str] = None
    is_last: bool = False
    label_names: Optional[List[str]] = None
    extra: Dict[str, Any] = field(default_factory=dict)


@dataclass
class CheckpointReport:
    """What one checkpoint produced (also kept in ``ExplainSession.history``; only the latest
    report keeps its ``images`` and ``explanations``, older ones keep numbers and text).
    ``backend`` is the classifier's ``backend_info`` after the checkpoint (which backend ran, and
    for Paddle Inference whether the program was traced or only new weights were written, with
    the seconds of that export and of the predictor build). ``pid`` is the process that explained
    it (the hook's worker process, or the training process)."""

    epoch: int
    scalars: Dict[str, float] = field(default_factory=dict)
    images: Dict[str, np.ndarray] = field(default_factory=dict)
    texts: Dict[str, str] = field(default_factory=dict)
    errors: List[str] = field(default_factory=list)
    explanations: Dict[str, Any] = field(default_factory=dict)
    weights_file: Optional[str] = None
    seconds: float = 0.0
    timings: Dict[str, float] = field(default_factory=dict)
    backend: Dict[str, Any] = field(default_factory=dict)
    pid: int = 0


# ------------------------------------------------------------------------------ rendering
def _fit_nearest(img, height, width):
    """``img`` scaled (nearest neighbour, aspect kept) to fit ``height x width`` pixels."""
    img = np.asarray(img)
    if img.dtype != np.uint8:
        img = np.clip(np.rint(np.asarray(img, np.float64) * 255.0), 0, 255).astype(np.uint8)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    h, w = img.shape[:2]
    scale = min(height / h, width / w)
    oh, ow = max(1, int(round(h * scale))), max(1, int(round(w * scale)))
    rows = np.minimum((np.arange(oh) + 0.5) * h / oh, h - 1).astype(np.intp)
    cols = np.minimum((np.arange(ow) + 0.5) * w / ow, w - 1).astype(np.intp)
    return img[rows][:, cols, :3]


def render_panel(explanation, label, kind="lime", num_features=5, title=None, dpi=100,
                 panel_inches=2.4):
    """A compact 1 x 3 panel for VisualDL: the image, the ``num_features`` top superpixels of
    ``kind`` (green positive, red negative, as in PaddleX 1.3), and the heat map of ``kind``;
    ``title`` on top. For ``kind='normlime'`` the second panel shows NormLIME and the third the
    combined weights. Returns ``(H, W, 3)`` uint8.

    The pictures are scaled (nearest neighbour) and pasted into the canvas; matplotlib only draws
    the titles (no Axes: building their ticks was ~0.1 s per panel, most of a checkpoint's
    rendering time)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from . import rendering

    def top(which, title):
        # superpixels with (almost) no weight are not "top": keep those >= 5% of the largest
        w = np.abs(explanation.weights_for(label, which))
        n = min(int(num_features), int((w >= 0.05 * w.max()).sum()) if w.max() > 0 else 0)
        return rendering.overlay(explanation, label, n, kind=which), "%s top %d" % (title, n)

    if kind == "normlime":
        panels = [(explanation.image, "image"), top("normlime", "NormLIME"),
                  top("combined", "LIME x NormLIME")]
    else:
        panels = [(explanation.image, "image"), top(kind, "LIME"),
                  (rendering.heatmap_overlay(explanation, label, kind=kind), "LIME weights")]
    n = len(panels)
    fig_w, fig_h = panel_inches * n, panel_inches + 0.55
    width, height = int(round(fig_w * dpi)), int(round(fig_h * dpi))
    # the layout of subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=0.80, wspace=0.04)
    box_w = 0.98 * width / (n + 0.04 * (n - 1))
    box_h = 0.79 * height
    fig = Figure(figsize=(fig_w, fig_h), dpi=dpi)
    fig.patch.set_facecolor("white")
    canvas = FigureCanvasAgg(fig)
    top_px = 0.0
    for i, (img, name) in enumerate(panels):
        pic = _fit_nearest(img, int(box_h), int(box_w))
        ph, pw = pic.shape[:2]
        x0 = 0.01 * width + i * box_w * 1.04 + (box_w - pw) / 2.0
        y0 = 0.01 * height + (box_h - ph) / 2.0
        fig.figimage(pic, xo=int(round(x0)), yo=int(round(y0)), origin="upper")
        top_px = max(top_px, y0 + ph)
        fig.text((x0 + pw / 2.0) / width, (y0 + ph + 4) / height, name, fontsize=9,
                 ha="center", va="bottom")
    if title:
        fig.suptitle(title, fontsize=10)
    canvas.draw()
    out = np.array(canvas.buffer_rgba())[..., :3]
    fig.clear()
    return out


def _sanitize_tag(name):
    return re.sub(r"[^A-Za-z0-9_.\-]+", "_", str(name)).strip("_") or "probe"


class _MemoSegmenter:
    """The session's segmenter, remembering its result per image (the codebook fit and the
    concept occurrences segment the same eval images once instead of twice)."""

    def __init__(self, spec, params, seed):
        from .core.segmentation import make_segmenter

        self._seg = make_segmenter(spec, seed=seed, **(params or {}))
        self._memo = {}
        self.__name__ = "memo"

    def __call__(self, image):
        key = (image.shape, hash(image.tobytes()))
        if key not in self._memo:
            self._memo[key] = self._seg(image)
        return self._memo[key]

    def describe(self):
        return self._seg.describe()


def core_weights_builder(session, context):
    """Build NormLIME global weights with the core (:mod:`paddlex_interpret.core.normlime`) on
    ``context.extra['normlime_items']`` (paths or arrays, optional ``'normlime_labels'``).

    Once per run (cached in the session): a class-stratified, seeded choice of ``max_images``
    items is loaded through ``context.classifier.view`` (the images the model sees), the concept
    codebook is fitted on them (unless one was given) and, in ``'fast'`` mode, their concept
    occurrences are computed. At every checkpoint only the model runs: one forward pass per image
    (``'fast'``), or LIME on every image (``'aggregate'``; ``num_samples`` from
    ``normlime_kwargs``, else the session's).
    Returns None when there are no items.
    """
    from .core import normlime as nl
    from .core.concepts import ConceptCodebook

    items = context.extra.get("normlime_items")
    if items is None or len(items) == 0:
        logger.info("explanations: no images for NormLIME (give an eval dataset); skipped")
        return None
    labels = context.extra.get("normlime_labels")
    cache = session._normlime_cache
    if cache.get("images") is None:
        idx = nl.select_stratified(len(items), labels, session.max_images, session.seed)
        images, used, skipped = [], [], []
        for i in idx:
            try:
                images.append(context.classifier.view(items[int(i)]))
                used.append(int(i))
            except Exception as exc:  # a bad file: skip it, never crash training
                skipped.append("%s: %s" % (items[int(i)] if isinstance(items[int(i)], str)
                                           else "item %d" % int(i), exc))
        if skipped:
            logger.warning("NormLIME: skipped %d unreadable image(s), e.g. %s", len(skipped),
                           skipped[0])
        if not images:
            raise ValueError("NormLIME: none of the %d chosen images could be read" % len(idx))
        cache["images"] = images
        cache["labels"] = None if labels is None else [labels[i] for i in used]
    images = cache["images"]
    kwargs = dict(session.normlime_kwargs)
    segment = _MemoSegmenter(session.segmenter, session.segmenter_params, session.seed)
    if session.codebook is None:
        codebook = ConceptCodebook().fit(images, segmenter=segment, n_concepts=session.n_concepts,
                                         seed=session.seed)
        # record the real segmenter (not the memo) so that the codebook can be rebuilt later
        codebook.settings.update(segment.describe())
        session.codebook = codebook
    codebook = session.codebook
    names = context.label_names
    if session.normlime_mode == "aggregate":
        kwargs.setdefault("num_samples", session.num_samples)
        return nl.build_global_weights_aggregate(
            context.classifier, images, codebook, seed=session.seed,
            batch_size=session.batch_size, fill=session.fill, class_names=names, **kwargs)
    if session.normlime_mode != "fast":
        raise ValueError("normlime_mode must be 'fast' or 'aggregate', got %r"
                         % (session.normlime_mode,))
    if cache.get("occurrences") is None:
        cache["occurrences"] = nl.concept_occurrences(
            images, codebook, segmenter=kwargs.pop("segmenter", None) or segment,
            grid=kwargs.pop("grid", None), seed=session.seed)
    gw = nl.build_global_weights_fast(
        context.classifier, images, codebook, seed=session.seed, batch_size=session.batch_size,
        occurrences=cache["occurrences"], class_names=names, **kwargs)
    _fingerprint(gw, session, context, codebook)
    return gw


def _fingerprint(gw, session, context, codebook):
    """Give the weights the fingerprint :mod:`paddlex_interpret.normlime_api` checks, so that a
    checkpoint's weights file is reused as is by ``paddlex.interpret.normlime(...,
    normlime_weights_file=<checkpoint>/normlime_weights.npz, max_images=..., seed=...)`` with that
    checkpoint's model (best effort: left empty if that module is missing or differs)."""
    try:
        from . import normlime_api as api

        settings = api._build_settings(
            "fast", "normlime", int(session.max_images if session.max_images is not None
                                    else api.DEFAULT_MAX_IMAGES["fast"]),
            session.seed, session.num_samples, 1, None, session.fill, session.kernel_width,
            session.segmenter, session.segmenter_params)
        model = context.extra.get("model") or context.classifier
        fp = api.expected_fingerprint(model, gw.class_names, gw.num_classes, "fast", settings)
        fp["codebook"] = codebook.fingerprint()
        fp["codebook_settings"] = {
            "n_concepts": int(codebook.settings.get("n_concepts", codebook.n_concepts)),
            "segmenter": settings["segmenter"]}
        gw.settings.update(settings)
        gw.fingerprint = fp
    except Exception:  # the weights are fine without it; only cache reuse is affected
        logger.debug("explanations: could not fingerprint the NormLIME weights", exc_info=True)


class ExplainSession:
    """Explain a fixed set of probe images at checkpoints and log to VisualDL.

    Args:
        probes: image paths or arrays (any bit depth/channels). Each is shown to the model through
            ``classifier.view`` (PaddleX: the geometric steps of ``model.test_transforms``).
        probe_labels: optional true class id per probe: that label is explained at every
            checkpoint (comparable over time); otherwise the predicted top-``top_k``.
        probe_names: optional names used in tags (default ``probe_0``, ``probe_1``...).
        num_samples: LIME samples per probe (small by default: this runs during training).
        batch_size: classifier batch size.
        seed: LIME sampling and segmentation seed, the same at every checkpoint.
        top_k: labels explained per probe when ``probe_labels`` is not given (the first is drawn).
        segmenter, segmenter_params, fill, kernel_width: see
            :class:`~paddlex_interpret.core.lime.LimeExplainer`.
        num_features: superpixels highlighted in the images, and ``k`` of the stability Jaccard.
        normlime: build NormLIME weights and log NormLIME-filtered explanations.
        normlime_mode: ``'fast'`` (default: one forward pass per eval image and checkpoint) or
            ``'aggregate'`` (LIME on every eval image: ``max_images x num_samples`` passes).
        max_images: eval images (stratified by class, seeded) the weights are built on.
        n_concepts: concepts of the codebook when the session fits it.
        metrics: log deletion/insertion AUC per probe.
        stability: ``'split'`` (default; True is the same): fit the surrogate on each half of
            the LIME samples too and log their top-k Jaccard / Spearman agreement (free: no extra
            model calls); ``'reseed'``: run LIME again with ``seed + 1`` (doubles the cost);
            False: off.
        metric_steps: points on the deletion/insertion curves (``None``: one per superpixel).
        freq: explain at every ``freq``-th checkpoint (and always at the last one).
        normlime_freq, metrics_freq: rebuild weights / compute metrics at every N-th explained
            checkpoint (in between the previous weights are reused).
        max_overhead: a time budget, e.g. ``0.2``: a checkpoint is skipped (logged) when the time
            spent explaining so far plus the last checkpoint's would exceed this fraction of the
            training time so far (measured from the start of the run, explanations excluded).
            The first and the last checkpoints always run. None (default): no budget.
        logdir: VisualDL directory (the integrations fill this in); ``None`` and no
            ``context.logdir``: nothing is logged, reports are still returned.
        log_images: log the rendered panels.
        save_weights: write the NormLIME weights file for each checkpoint.
        codebook: a fitted :class:`~paddlex_interpret.core.concepts.ConceptCodebook` to use
            instead of fitting one on the first checkpoint.
        normlime_kwargs: extra keyword arguments for the weights builder.

    Cost of one explained checkpoint, in forward passes of the model: ``probes x (num_samples +
    1)`` for LIME, ``probes x 3 x (metric_steps + 1)`` for deletion/insertion and NormLIME
    deletion (``metrics``) and ``max_images`` for NormLIME (``'fast'``); plus about 0.02 s per
    rendered panel. With Paddle Inference each checkpoint builds one predictor for the new weights
    (~0.15 s; the network is traced only at the first checkpoint, ~1 s). Once per run the codebook
    fit and the concept occurrences segment the ``max_images`` eval images.
    Thin it out with ``freq`` (and ``normlime_freq`` / ``metrics_freq``).
    """

    def __init__(self, probes, probe_labels=None, probe_names=None, *, num_samples=300,
                 batch_size=50, seed=0, top_k=1, segmenter="quickshift", segmenter_params=None,
                 fill="black", kernel_width=0.25, num_features=5, normlime=True,
                 normlime_mode="fast", max_images=60, n_concepts=16, metrics=True,
                 stability="split", metric_steps=20, freq=1, normlime_freq=1, metrics_freq=1,
                 max_overhead=None, logdir=None, log_images=True, save_weights=True,
                 codebook=None, normlime_kwargs=None):
        from .core.lime import check_positive_int

        if isinstance(probes, (str, bytes, os.PathLike)) or (
                isinstance(probes, np.ndarray) and probes.ndim == 3):
            probes = [probes]
        self.probes = list(probes)
        if not self.probes:
            raise ValueError("give at least one probe image (a path or an array)")
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
        self.probe_names = [_sanitize_tag(p) for p in probe_names]
        if len(set(self.probe_names)) != n:
            raise ValueError("probe_names must be distinct: %s" % self.probe_names)
        self.num_samples = check_positive_int(num_samples, "num_samples")
        self.batch_size = check_positive_int(batch_size, "batch_size")
        self.seed = int(seed)
        self.top_k = check_positive_int(top_k, "top_k")
        self.segmenter = segmenter
        self.segmenter_params = dict(segmenter_params or {})
        self.fill = fill
        self.kernel_width = float(kernel_width)
        self.num_features = check_positive_int(num_features, "num_features")
        self.normlime = bool(normlime)
        self.normlime_mode = normlime_mode
        self.max_images = max_images
        self.n_concepts = int(n_concepts)
        self.metrics = bool(metrics)
        if stability is True:
            stability = "split"
        if stability not in ("split", "reseed", False, None):
            raise ValueError("stability must be 'split', 'reseed' or False, got %r" % (stability,))
        self.stability = stability or False
        self.metric_steps = metric_steps
        self.freq = check_positive_int(freq, "freq")
        self.normlime_freq = check_positive_int(normlime_freq, "normlime_freq")
        self.metrics_freq = check_positive_int(metrics_freq, "metrics_freq")
        if max_overhead is not None and not float(max_overhead) > 0:
            raise ValueError("max_overhead must be > 0 (a fraction of training time) or None")
        self.max_overhead = None if max_overhead is None else float(max_overhead)
        self.logdir = logdir
        self.log_images = bool(log_images)
        self.save_weights = bool(save_weights)
        self.normlime_kwargs = dict(normlime_kwargs or {})
        self._user_codebook = codebook
        self.history = []
        self._writer = None
        self._writer_dir = None
        #: ``{logdir: record file name}``: where :meth:`writer` appends instead of a new file
        self.log_files = {}
        self.reset_run()

    # ------------------------------------------------------------------ run state
    def reset_run(self):
        """Forget per-run state (checkpoint counter, previous weights, fitted codebook, cached
        superpixels). The integrations call it when a new training run starts."""
        self.codebook = self._user_codebook
        self._normlime_cache = {}
        self.global_weights = None
        self._previous_weights = None
        self._triggers = 0
        self._explained = 0
        self._segments = {}
        self._run_start = time.perf_counter()
        self._hook_seconds = 0.0
        self._last_seconds = 0.0

    def should_run(self, is_last=False):
        """Count one trigger; True when this one is explained: every ``freq``-th and the last,
        unless ``max_overhead`` says the time budget is spent (the last always runs)."""
        self._triggers += 1
        if is_last:
            return True
        if (self._triggers - 1) % self.freq != 0:
            return False
        if self.max_overhead is not None:
            training = time.perf_counter() - self._run_start - self._hook_seconds
            if self._hook_seconds + self._last_seconds > self.max_overhead * training:
                logger.info("explanations: checkpoint skipped to keep within max_overhead=%.2f "
                            "(%.1f s explaining vs %.1f s training so far)", self.max_overhead,
                            self._hook_seconds, training)
                return False
        return True

    # ------------------------------------------------------------------ VisualDL
    def writer(self, logdir=None):
        """The ``visualdl.LogWriter`` for ``logdir`` (created on first use, rank 0 only); None when
        there is no log directory or this is not rank 0."""
        logdir = logdir or self.logdir
        if logdir is None or get_rank() != 0:
            return None
        logdir = os.path.abspath(os.fspath(logdir))
        if self._writer is not None and self._writer_dir != logdir:
            self._close_writer()
        if self._writer is None:
            from visualdl import LogWriter

            os.makedirs(logdir, exist_ok=True)
            # append to a record file another writer of this run made (VisualDL shows one file
            # per directory: the newest)
            self._writer = LogWriter(logdir=logdir, file_name=self.log_files.get(logdir, ""))
            self._writer_dir = logdir
        return self._writer

    def _close_writer(self):
        if self._writer is not None:
            with contextlib.suppress(Exception):
                self._writer.close()
        self._writer = None
        self._writer_dir = None

    def flush(self):
        if self._writer is not None:
            with contextlib.suppress(Exception):
                self._writer.flush()

    def close(self):
        """Flush and close the VisualDL writer (a new one is made if the session is used again)."""
        self._close_writer()

    # ------------------------------------------------------------------ main entry
    def on_checkpoint(self, context):
        """Explain at this checkpoint when ``freq`` says so. Never raises (except
        ``KeyboardInterrupt``/``SystemExit``); returns the :class:`CheckpointReport`, or None when
        skipped (frequency, or not rank 0)."""
        t0 = time.perf_counter()
        try:
            if get_rank() != 0:
                return None
            if not self.should_run(context.is_last):
                return None
            return self.explain_checkpoint(context)
        except Exception as exc:  # the guard of last resort: training must go on
            self._log_error(None, context, "checkpoint", exc)
            return None
        finally:
            spent = time.perf_counter() - t0
            self._hook_seconds += spent
            if spent > 0.01:
                self._last_seconds = spent

    def explain_checkpoint(self, context):
        """Run all stages now (no frequency check). Stage errors are caught and reported."""
        from .core.lime import hold_weights

        t0 = time.perf_counter()
        report = CheckpointReport(epoch=int(context.epoch), pid=os.getpid())
        run_index = self._explained
        self._explained += 1
        writer = None
        try:
            writer = self.writer(context.logdir)
        except Exception as exc:
            self._log_error(report, context, "visualdl", exc)
        with preserve_training_state(context.layer), hold_weights(context.classifier):
            if self.normlime and context.weights_builder is not None \
                    and run_index % self.normlime_freq == 0:
                self._stage(report, context, "normlime", self._normlime_stage, context, report)
            do_metrics = self.metrics and run_index % self.metrics_freq == 0
            for i in range(len(self.probes)):
                self._stage(report, context, self.probe_names[i], self._probe_stage, context,
                            report, i, do_metrics)
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
        if writer is not None:
            self._stage(report, context, "visualdl", self._write, writer, report)
        for old in self.history:  # bounded memory: only the latest report keeps pictures
            old.images, old.explanations = {}, {}
        self.history.append(report)
        logger.info("explanations for epoch %d: %d probe(s), %d error(s), %.1f s",
                    report.epoch, len(self.probes), len(report.errors), report.seconds)
        return report

    @staticmethod
    def _release_engines(context):
        """Free the inference predictors built for this checkpoint's weights (training changes
        them next; the traced program is kept, so the next checkpoint only rebuilds the
        predictor)."""
        if context.layer is None:
            return
        with contextlib.suppress(Exception):
            from .backends import release_engines

            release_engines(context.layer)

    # ------------------------------------------------------------------ stages
    def _stage(self, report, context, name, fn, *args):
        t0 = time.perf_counter()
        try:
            return fn(*args)
        except Exception as exc:
            self._log_error(report, context, name, exc)
            return None
        finally:
            report.timings[name] = report.timings.get(name, 0.0) + time.perf_counter() - t0

    def _log_error(self, report, context, stage, exc):
        epoch = getattr(context, "epoch", None)
        tb = traceback.format_exc()
        message = "explanation stage %r failed at epoch %s: %s: %s" % (
            stage, epoch, type(exc).__name__, exc)
        logger.error("%s\n%s", message, tb)
        if report is not None:
            report.errors.append(message + "\n" + tb)
            return
        # no report (the outermost guard): write the text right away if we can
        with contextlib.suppress(Exception):
            writer = self.writer(getattr(context, "logdir", None))
            if writer is not None:
                writer.add_text("explain/errors", message + "\n\n" + tb, step=int(epoch or 0))
                writer.flush()

    def _normlime_stage(self, context, report):
        gw = context.weights_builder(self, context)
        if gw is None:
            return
        if self.codebook is None:
            self.codebook = getattr(gw, "codebook", None)
        if self.save_weights:
            path = context.weights_path or (os.path.join(context.checkpoint_dir, WEIGHTS_FILENAME)
                                            if context.checkpoint_dir else None)
            if path is not None:
                os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
                saved = gw.save(path)
                report.weights_file = saved if isinstance(saved, str) else path
        W = np.asarray(gw.weights, dtype=np.float64)
        prev = self._previous_weights
        if prev is not None and prev.shape == W.shape:
            denom = max(float(np.linalg.norm(prev)), 1e-12)
            report.scalars["normlime/drift"] = float(np.linalg.norm(W - prev)) / denom
            from .core.metrics import topk_jaccard

            k = min(5, W.shape[1])
            report.scalars["normlime/top_concepts_jaccard"] = float(np.mean(
                [topk_jaccard(W[c], prev[c], k, positive_only=True) for c in range(W.shape[0])]))
        self._previous_weights = W.copy()
        self.global_weights = gw
        report.texts["normlime/top_concepts"] = self._top_concepts_text(gw, context)

    def _top_concepts_text(self, gw, context):
        names = list(getattr(gw, "class_names", None) or context.label_names or [])
        W = np.asarray(gw.weights)
        lines = ["Top NormLIME concepts per class (concept id: weight)", ""]
        for c in range(W.shape[0]):
            name = names[c] if c < len(names) else str(c)
            try:
                top = gw.top_concepts(c, 5)
            except Exception:
                top = np.argsort(-W[c], kind="stable")[:5]
            items = []
            for t in top:
                if isinstance(t, (tuple, list)):
                    cid, w = int(t[0]), float(t[1])
                else:
                    cid, w = int(t), float(W[c, int(t)])
                items.append("c%d: %+.3f" % (cid, w))
            lines.append("- %s: %s" % (name, ", ".join(items)))
        return "\n".join(lines)

    def _probe_stage(self, context, report, i, do_metrics):
        from .core.lime import LimeExplainer
        from .core.segmentation import make_segmenter

        name = self.probe_names[i]
        classifier = context.classifier
        image = classifier.view(self.probes[i])
        key = (image.shape, hash(image.tobytes()))
        cached = self._segments.get(name)
        if cached is None or cached[0] != key:
            seg_fn = make_segmenter(self.segmenter, seed=self.seed, **self.segmenter_params)
            cached = (key, seg_fn(image))
            self._segments[name] = cached
        segments = cached[1]
        explainer = LimeExplainer(classifier, segmenter=self.segmenter,
                                  segmenter_params=self.segmenter_params, fill=self.fill,
                                  kernel_width=self.kernel_width, num_samples=self.num_samples,
                                  batch_size=self.batch_size, seed=self.seed,
                                  label_names=context.label_names)
        true_label = self.probe_labels[i]
        labels = [true_label] if true_label is not None else None
        exp, halves = self._lime(explainer, image, segments, labels)
        label = int(exp.labels[0])
        report.explanations[name] = exp
        prefix = "explain/%s/" % name
        report.scalars[prefix + "probability"] = float(exp.probabilities[label])
        report.scalars[prefix + "r2"] = float(exp.scores[0])
        title = "epoch %d | %s | predicted %s (p=%.3f)" % (
            report.epoch, name, exp.label_name(exp.predicted_label), exp.predicted_probability)
        if true_label is not None:
            title += " | true %s" % exp.label_name(true_label)
        else:
            title += " | explaining %s" % exp.label_name(label)

        gw = self.global_weights if self.normlime else None
        # the concepts must come from the codebook the weights were built with
        codebook = (getattr(gw, "codebook", None) or self.codebook) if gw is not None else None
        if gw is not None and codebook is not None:
            try:
                concepts = codebook.assign(exp.image, exp.segments)
                prior = np.asarray(gw.prior_for(concepts, exp.labels), dtype=np.float64)
                exp.extra["normlime"] = prior.reshape(exp.weights.shape)
                exp.extra["combined"] = exp.weights * exp.extra["normlime"]
            except Exception as exc:
                self._log_error(report, context, name + "/normlime", exc)

        if self.log_images:
            report.images[prefix + "lime"] = render_panel(exp, label, "lime",
                                                          self.num_features, title)
            if "combined" in exp.extra:
                report.images[prefix + "normlime"] = render_panel(exp, label, "normlime",
                                                                  self.num_features, title)
        if not do_metrics:
            return exp
        from .core import metrics

        common = dict(fill=self.fill, batch_size=self.batch_size, num_steps=self.metric_steps)
        w = exp.weights_for(label)
        report.scalars[prefix + "deletion_auc"] = metrics.deletion_auc(
            classifier, exp.image, exp.segments, w, label, **common)
        report.scalars[prefix + "insertion_auc"] = metrics.insertion_auc(
            classifier, exp.image, exp.segments, w, label, **common)
        if "combined" in exp.extra:
            report.scalars[prefix + "normlime_deletion_auc"] = metrics.deletion_auc(
                classifier, exp.image, exp.segments, exp.weights_for(label, "combined"), label,
                **common)
        if halves is not None:
            st = metrics.stability(halves, k=self.num_features)
            report.scalars[prefix + "stability_jaccard"] = st["jaccard"]
            report.scalars[prefix + "stability_spearman"] = st["spearman"]
        elif self.stability == "reseed":
            again = explainer.explain(image, labels=exp.labels, segments=segments,
                                      seed=self.seed + 1)
            st = metrics.stability([w, again.weights_for(label)], k=self.num_features)
            report.scalars[prefix + "stability_jaccard"] = st["jaccard"]
            report.scalars[prefix + "stability_spearman"] = st["spearman"]
        return exp

    def _lime(self, explainer, image, segments, labels):
        """LIME on ``image`` with fixed ``segments``; with ``stability='split'`` the surrogate is
        also fitted on the two halves of the samples (no extra model calls) and their label-0
        weights are returned for the stability scores."""
        from .core.explanation import Explanation
        from .core.lime import select_labels

        probs = explainer.predict(image[None])[0]
        labels = select_labels(probs, labels, self.top_k)
        masks, outputs = explainer.sample(image, segments, self.num_samples, self.batch_size,
                                          self.seed)
        fit = explainer.fit(masks, outputs, labels)
        exp = Explanation(image=image, segments=segments, probabilities=probs, labels=labels,
                          weights=fit.coef, intercepts=fit.intercept, scores=fit.score,
                          local_predictions=fit.local_prediction,
                          label_names=explainer.label_names,
                          settings=explainer.settings(self.num_samples, self.batch_size,
                                                      self.seed))
        halves = None
        if self.stability == "split" and len(masks) >= 8:
            mid = len(masks) // 2
            halves = [explainer.fit(masks[sl], outputs[sl], labels[:1]).coef[0]
                      for sl in (slice(0, mid), slice(mid, None))]
        return exp, halves

    def _summarise(self, report):
        for metric in ("deletion_auc", "insertion_auc", "stability_jaccard",
                       "stability_spearman"):
            vals = [v for k, v in report.scalars.items()
                    if k.startswith("explain/") and k.endswith("/" + metric)
                    and k.count("/") == 2]
            if vals:
                report.scalars["explain/mean_%s" % metric] = float(np.mean(vals))
        report.scalars["explain/num_errors"] = float(len(report.errors))

    def _write(self, writer, report):
        step = int(report.epoch)
        for tag, img in report.images.items():
            writer.add_image(tag=tag, img=img, step=step)
        for tag, value in report.scalars.items():
            if np.isfinite(value):
                writer.add_scalar(tag=tag, value=float(value), step=step)
        for tag, text in report.texts.items():
            writer.add_text(tag=tag, text_string=text, step=step)
        if report.errors:
            writer.add_text(tag="explain/errors", text_string="\n\n".join(report.errors),
                            step=step)
        writer.flush()
