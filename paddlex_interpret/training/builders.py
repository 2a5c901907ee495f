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
from ..core.normlime.concepts import ConceptCodebook
from ..core.segmentation import MemoSegmenter, make_segmenter
from ..core.sharding import checked

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


class _ViewCache:
    """``item -> image`` through the classifier's view, each item read once per run (the view
    is the model's geometric transforms, the same at every checkpoint)."""

    def __init__(self):
        self.view, self.items, self._images = None, [], {}

    def __call__(self, item):
        key = id(item)  # the items stay in ``self.items``: their ids are stable
        image = self._images.get(key)
        if image is None:
            image = self._images[key] = self.view(item)
        return image


class NormLimeBuilder(WeightsBuilder):
    """The default NormLIME weights builder of a session (see the module docstring).

    Args:
        options: the session's :class:`~paddlex_interpret.training.options.ExplainOptions`.
        collective: a :class:`~paddlex_interpret.core.sharding.Collective` whose ranks all call
            the builder at the same checkpoints, each on its share of the images (default one
            process); every rank gets the weights.
    """

    needs_dataset = True

    def __init__(self, options, collective=None):
        self.options = options
        self.collective = collective
        self.reset()

    def reset(self):
        """Forget the run's images, codebook and occurrences (a new training run)."""
        self.items = None
        self.labels = None
        self.view = _ViewCache()
        self.codebook = self.options.codebook
        self.occurrences = None
        self.segmenter = MemoSegmenter(make_segmenter(self.options.segmenter,
                                                      seed=self.options.seed,
                                                      **self.options.segmenter_params))

    def _load(self, context):
        """The run's chosen items, read (once, and on a rank its share only) through the
        classifier's view when a stage needs them; unreadable ones are skipped there."""
        o = self.options
        items, labels, _ = resolve_dataset(context.dataset)
        idx = nl.select_stratified(len(items), labels, o.max_images, o.seed)
        self.view.items = self.items = [items[int(i)] for i in idx]
        self.labels = None if labels is None else [labels[int(i)] for i in idx]

    def __call__(self, context):
        if context.dataset is None:
            logger.info("explanations: no dataset for NormLIME (give an eval dataset); skipped")
            return None
        o, c = self.options, self.collective
        if self.items is None:
            self._load(context)
        self.view.view = context.classifier.view
        if self.codebook is None:
            codebook = ConceptCodebook().fit(self.items, segmenter=self.segmenter,
                                             n_concepts=o.n_concepts, seed=o.seed,
                                             load=self.view, collective=c)
            # record the real segmenter (not the memo) so that the codebook can be rebuilt
            codebook.settings.update(self.segmenter.describe())
            self.codebook = codebook
        kwargs = dict(o.normlime_kwargs)
        common = dict(seed=o.seed, batch_size=o.batch_size, class_names=context.label_names,
                      load=self.view, collective=c)
        if o.normlime_mode == "aggregate":
            kwargs.setdefault("num_samples", o.build_num_samples)
            gw = nl.build_global_weights_aggregate(context.classifier, self.items,
                                                   self.codebook, fill=o.fill, **common, **kwargs)
        else:
            if self.occurrences is None:
                segmenter = kwargs.pop("segmenter", None) or self.segmenter
                grid = kwargs.pop("grid", None)
                self.occurrences = checked(c, lambda: nl.concept_occurrences(
                    self.items, self.codebook, segmenter=segmenter, grid=grid, seed=o.seed,
                    load=self.view, collective=c))
            gw = nl.build_global_weights_fast(context.classifier, self.items, self.codebook,
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
                kwargs.get("num_samples", o.build_num_samples), kwargs.get("top_k", 1),
                kwargs.get("grid"), o.fill, o.kernel_width, o.segmenter, o.segmenter_params)
            stamp(gw, context.classifier, mode, settings, self.codebook)
        except Exception:  # the weights are fine without it
            logger.debug("explanations: could not fingerprint the NormLIME weights", exc_info=True)
