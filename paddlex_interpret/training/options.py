"""The options of an explanation session, declared and checked in one place.

:class:`ExplainOptions` is what :class:`~paddlex_interpret.training.session.ExplainSession`,
:class:`~paddlex_interpret.training.hook.ExplainHook` and
:class:`~paddlex_interpret.training.callback.ExplainCallback` take as keyword arguments.

Example::

    >>> from paddlex_interpret.training.options import ExplainOptions
    >>> ExplainOptions(num_samples=200, freq=2).num_samples
    200
"""
from dataclasses import dataclass, fields
from typing import Any, Dict, Optional

from ..core.atlas import ATLAS_METHODS
from ..core.classifier import check_positive_int
from ..core.lime import (DEFAULT_FILL, DEFAULT_NUM_SAMPLES, DEFAULT_SAMPLER, DEFAULT_SEGMENTER,
                         check_num_samples)
from ..core.normlime import MODES
from ..core.shortcut import FLIP_ALARM, IMAGES

__all__ = ["ExplainOptions"]


@dataclass
class ExplainOptions:
    """How a checkpoint is explained.

    LIME of the probes:
        num_samples: LIME samples per probe: ``'auto'`` (default, as everywhere: rounds until
            the probe's top ``num_features`` superpixels are certified, at most the budget's
            cap) or an int.
        sampler, budget: see :class:`~paddlex_interpret.core.lime.LimeExplainer`.
        batch_size: classifier batch size.
        seed: LIME sampling and segmentation seed, the same at every checkpoint (comparable).
        top_k: labels explained per probe when no probe label is given (the first is drawn).
        segmenter, segmenter_params, fill, kernel_width: see
            :class:`~paddlex_interpret.core.lime.LimeExplainer`.
        num_features: superpixels highlighted in the images, and ``k`` of the stability Jaccard.

    NormLIME:
        normlime: build NormLIME weights and log NormLIME-filtered explanations.
        normlime_mode: ``'fast'`` (one forward pass per eval image and checkpoint) or
            ``'aggregate'`` (LIME on every eval image: ``max_images x num_samples`` passes;
            300 per image with ``num_samples='auto'``).
        max_images: eval images (stratified by class, seeded) the weights are built on.
        n_concepts: concepts of the codebook when the session fits it.
        codebook: a fitted :class:`~paddlex_interpret.core.normlime.concepts.ConceptCodebook` to use
            instead of fitting one at the first checkpoint.
        normlime_kwargs: extra keyword arguments for the core builders.
        save_weights: write the NormLIME weights file for each checkpoint.

    Scores:
        metrics: log deletion/insertion AUC per probe.
        stability: ``'split'`` (True is the same): fit the surrogate on each half of the LIME
            samples too and log their top-k Jaccard / Spearman agreement (no extra model
            calls); ``'reseed'``: run LIME again with ``seed + 1`` (doubles the cost); False: off.
        metric_steps: points on the deletion/insertion curves (``None``: one per superpixel).

    The class atlas and the shortcut alarm
    (:mod:`~paddlex_interpret.training.atlas_stage`), both on an eval dataset:
        atlas: a gradient map of the eval images at every explained checkpoint, one atlas per
            predicted class (needs a Paddle network: gradients); its regions are tested by the
            alarm too.
        atlas_method: the maps (``'input_x_gradient'``, ``'gradcam'``,
            ``'integrated_gradients'``: :data:`~paddlex_interpret.api.audit.ATLAS_METHODS`).
        atlas_max_images: eval images (stratified, seeded, the same at every checkpoint) of the
            atlas and the alarm (default
            :data:`~paddlex_interpret.core.shortcut.IMAGES`, as ``audit``'s).
        alarm: the shortcut alarm (:mod:`~paddlex_interpret.core.shortcut`): regions proposed
            by the atlas, the transplant scan and the regions of earlier checkpoints, tested by
            intervention; needs predictions only.
        alarm_flip: the share of the other classes' images a region's transplant must turn
            into a class for the alarm (default one half).

    When:
        freq: explain at every ``freq``-th checkpoint (and always at the last one).
        normlime_freq, metrics_freq: rebuild weights / compute metrics at every N-th explained
            checkpoint (in between the previous weights are reused).
        max_overhead: a time budget, e.g. ``0.2``: a checkpoint is skipped (logged) when the
            time spent explaining so far plus the last checkpoint's would exceed this fraction of
            the training time so far. The first and the last checkpoints always run. None: no
            budget.

    Where:
        logdir: VisualDL directory (the integrations fill this in); ``None`` and no
            ``context.logdir``: nothing is logged, reports are still returned.
        log_images: log the rendered panels.
    """

    num_samples: Any = DEFAULT_NUM_SAMPLES
    sampler: Any = DEFAULT_SAMPLER
    budget: Any = None
    batch_size: int = 50
    seed: int = 0
    top_k: int = 1
    segmenter: Any = DEFAULT_SEGMENTER
    segmenter_params: Optional[Dict[str, Any]] = None
    fill: Any = DEFAULT_FILL
    kernel_width: float = 0.25
    num_features: int = 5
    normlime: bool = True
    normlime_mode: str = "fast"
    max_images: Optional[int] = 60
    n_concepts: int = 16
    codebook: Any = None
    normlime_kwargs: Optional[Dict[str, Any]] = None
    save_weights: bool = True
    metrics: bool = True
    stability: Any = "split"
    metric_steps: Optional[int] = 20
    atlas: bool = True
    atlas_method: str = "input_x_gradient"
    atlas_max_images: Optional[int] = IMAGES
    alarm: bool = True
    alarm_flip: float = FLIP_ALARM
    freq: int = 1
    normlime_freq: int = 1
    metrics_freq: int = 1
    max_overhead: Optional[float] = None
    logdir: Optional[str] = None
    log_images: bool = True

    def __post_init__(self):
        self.num_samples = check_num_samples(self.num_samples)
        for name in ("batch_size", "top_k", "num_features", "freq",
                     "normlime_freq", "metrics_freq"):
            setattr(self, name, check_positive_int(getattr(self, name), name))
        self.seed = int(self.seed)
        self.kernel_width = float(self.kernel_width)
        self.n_concepts = int(self.n_concepts)
        self.segmenter_params = dict(self.segmenter_params or {})
        self.normlime_kwargs = dict(self.normlime_kwargs or {})
        if self.normlime_mode not in MODES:
            raise ValueError("normlime_mode must be one of %s, got %r"
                             % (MODES, self.normlime_mode))
        for name in ("max_images", "atlas_max_images"):
            if getattr(self, name) is not None:
                setattr(self, name, check_positive_int(getattr(self, name), name))
        if self.atlas_method not in ATLAS_METHODS:
            raise ValueError("atlas_method must be one of %s, got %r"
                             % (ATLAS_METHODS, self.atlas_method))
        self.alarm_flip = float(self.alarm_flip)
        if not 0 < self.alarm_flip <= 1:
            raise ValueError("alarm_flip must be in (0, 1] (a share of images), got %r"
                             % (self.alarm_flip,))
        if self.stability is True:
            self.stability = "split"
        if self.stability not in ("split", "reseed", False, None):
            raise ValueError("stability must be 'split', 'reseed' or False, got %r"
                             % (self.stability,))
        self.stability = self.stability or False
        if self.max_overhead is not None and not float(self.max_overhead) > 0:
            raise ValueError("max_overhead must be > 0 (a fraction of training time) or None")
        self.max_overhead = None if self.max_overhead is None else float(self.max_overhead)

    @property
    def build_num_samples(self):
        """LIME samples per eval image of an aggregate NormLIME build: ``num_samples``, or 300
        with ``'auto'`` (an average over many images needs no certified single explanation)."""
        return 300 if self.num_samples == "auto" else self.num_samples

    def budget_for_probes(self):
        """The probes' budget: certify their top ``num_features`` unless ``budget`` says
        otherwise."""
        if self.budget is None:
            return {"top_k": self.num_features}
        return self.budget

    @classmethod
    def names(cls):
        """The option names (what the integrations accept as keyword arguments)."""
        return [f.name for f in fields(cls)]

    @classmethod
    def from_kwargs(cls, options):
        """Options from keyword arguments; an unknown name raises ``TypeError`` listing them."""
        unknown = sorted(set(options) - set(cls.names()))
        if unknown:
            raise TypeError("unknown explanation option(s) %s; the options are %s"
                            % (", ".join(unknown), ", ".join(cls.names())))
        return cls(**options)
