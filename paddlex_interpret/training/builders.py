"""NormLIME weights at a checkpoint: :class:`NormLimeBuilder`, the builder a session uses unless
it is given another.

A builder is a :class:`WeightsBuilder`: ``builder(context) -> GlobalWeights or None``
(``context`` a :class:`~paddlex_interpret.training.report.CheckpointContext`) and ``reset()``,
called when a training run starts; a plain function ``f(context)`` becomes one with
:func:`as_weights_builder`. The default keeps per-run state so that each checkpoint
costs only the model's share: a class-stratified, seeded choice of ``max_images`` images of the
context's dataset, read through ``context.classifier.view`` (the images the model sees), the
concept codebook fitted on them (once per run: weights of different checkpoints are
comparable), and in ``'fast'`` mode their concept occurrences. At every checkpoint only the model
runs: one forward pass per image (``'fast'``) or LIME on every image (``'aggregate'``).

Example::

    from paddlex_interpret.training.builders import NormLimeBuilder
    from paddlex_interpret.training.options import ExplainOptions
    build = NormLimeBuilder(ExplainOptions(max_images=60))
    gw = build(context)          # GlobalWeights, with the fingerprint the weights cache checks
"""
import logging

from ..api.datasets import resolve_dataset
from ..api.weights import DEFAULT_MAX_IMAGES, build_settings, stamp
from ..core import normlime as nl
from ..core.concepts import ConceptCodebook
from ..core.segmentation import MemoSegmenter, make_segmenter

__all__ = ["WeightsBuilder", "NormLimeBuilder", "as_weights_builder"]

logger = logging.getLogger("paddlex_interpret")


class WeightsBuilder:
    """Builds a checkpoint's NormLIME weights (see the module docstring)."""

    #: the session skips the NormLIME stage when this is True and the context has no dataset
    needs_dataset = False

    def __call__(self, context):
        raise NotImplementedError

    def reset(self):
        """A new training run starts: forget per-run state."""


class _FunctionBuilder(WeightsBuilder):
    def __init__(self, fn):
        self.fn = fn

    def __call__(self, context):
        return self.fn(context)


def as_weights_builder(builder):
    """``builder`` itself when it is a :class:`WeightsBuilder`, else the function
    ``builder(context)`` as one."""
    if isinstance(builder, WeightsBuilder):
        return builder
    if not callable(builder):
        raise TypeError("weights_builder must be a WeightsBuilder or a function f(context), got "
                        "%r" % (builder,))
    return _FunctionBuilder(builder)


class NormLimeBuilder(WeightsBuilder):
    """The default NormLIME weights builder of a session (see the module docstring).

    Args:
        options: the session's :class:`~paddlex_interpret.training.options.ExplainOptions`.
    """

    needs_dataset = True

    def __init__(self, options):
        self.options = options
        self.reset()

    def reset(self):
        """Forget the run's images, codebook and occurrences (a new training run)."""
        self.images = None
        self.labels = None
        self.codebook = self.options.codebook
        self.occurrences = None
        self.segmenter = MemoSegmenter(make_segmenter(self.options.segmenter,
                                                      seed=self.options.seed,
                                                      **self.options.segmenter_params))

    def _load(self, context):
        """The run's chosen images, read once through the classifier's view."""
        o = self.options
        items, labels, _ = resolve_dataset(context.dataset)
        idx = nl.select_stratified(len(items), labels, o.max_images, o.seed)
        images, used, skipped = [], [], []
        for i in idx:
            item = items[int(i)]
            try:
                images.append(context.classifier.view(item))
                used.append(int(i))
            except Exception as exc:  # a bad file: skip it, never crash training
                skipped.append("%s: %s" % (item if isinstance(item, str) else "item %d" % i, exc))
        if skipped:
            logger.warning("NormLIME: skipped %d unreadable image(s), e.g. %s", len(skipped),
                           skipped[0])
        if not images:
            raise ValueError("NormLIME: none of the %d chosen images could be read" % len(idx))
        self.images = images
        self.labels = None if labels is None else [labels[i] for i in used]

    def __call__(self, context):
        if context.dataset is None:
            logger.info("explanations: no dataset for NormLIME (give an eval dataset); skipped")
            return None
        o = self.options
        if self.images is None:
            self._load(context)
        if self.codebook is None:
            codebook = ConceptCodebook().fit(self.images, segmenter=self.segmenter,
                                             n_concepts=o.n_concepts, seed=o.seed)
            # record the real segmenter (not the memo) so that the codebook can be rebuilt
            codebook.settings.update(self.segmenter.describe())
            self.codebook = codebook
        kwargs = dict(o.normlime_kwargs)
        common = dict(seed=o.seed, batch_size=o.batch_size, class_names=context.label_names)
        if o.normlime_mode == "aggregate":
            kwargs.setdefault("num_samples", o.num_samples)
            gw = nl.build_global_weights_aggregate(context.classifier, self.images,
                                                   self.codebook, fill=o.fill, **common, **kwargs)
        else:
            if self.occurrences is None:
                self.occurrences = nl.concept_occurrences(
                    self.images, self.codebook, segmenter=kwargs.pop("segmenter", None)
                    or self.segmenter, grid=kwargs.pop("grid", None), seed=o.seed)
            gw = nl.build_global_weights_fast(context.classifier, self.images, self.codebook,
                                              occurrences=self.occurrences, **common, **kwargs)
        self._fingerprint(gw, context, kwargs)
        return gw

    def _fingerprint(self, gw, context, kwargs):
        """Give the weights the fingerprint :mod:`~paddlex_interpret.api.weights` checks, so that
        a checkpoint's weights file is reused by ``paddlex.interpret.normlime(...,
        normlime_weights_file=<checkpoint>/normlime_weights.npz)`` with that checkpoint's model
        (best effort: without it only the reuse is affected)."""
        o = self.options
        try:
            mode = o.normlime_mode
            max_images = o.max_images if o.max_images is not None else DEFAULT_MAX_IMAGES[mode]
            settings = build_settings(
                mode, kwargs.get("variant", "normlime"), int(max_images), o.seed,
                kwargs.get("num_samples", o.num_samples), kwargs.get("top_k", 1),
                kwargs.get("grid"), o.fill, o.kernel_width, o.segmenter, o.segmenter_params)
            stamp(gw, context.classifier, mode, settings, self.codebook)
        except Exception:  # the weights are fine without it
            logger.debug("explanations: could not fingerprint the NormLIME weights", exc_info=True)
