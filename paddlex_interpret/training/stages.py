"""The two stages of a checkpoint: the NormLIME weights, and each probe's explanation.

* :class:`NormLimeStage` asks the builder for the weights, writes them into the checkpoint,
  scores the drift since the previous weights and writes the top concepts per class as text.
* :class:`ProbeStage` explains one probe with LIME (fixed seed and superpixels, so checkpoints are
  comparable), adds the NormLIME-filtered weights when there are global weights, renders the
  panels and scores deletion / insertion AUC and split-half stability (the two halves of the
  same samples: no extra model calls).

Both write into a :class:`~paddlex_interpret.training.report.CheckpointReport`; the session runs
each inside its own guard.
"""
import os

import numpy as np

from .. import rendering
from ..core import metrics
from ..core.fill import fill_value, resolve_fill
from ..core.lime import LimeExplainer
from ..core.normlime import combine, normlime_weights_for
from .sink import tag_part

__all__ = ["NormLimeStage", "ProbeStage"]


class NormLimeStage:
    """Global weights at a checkpoint (see the module docstring).

    Args:
        options: the session's :class:`~paddlex_interpret.training.options.ExplainOptions`.
        builder: a :class:`~paddlex_interpret.training.builders.WeightsBuilder`.
    """

    def __init__(self, options, builder):
        self.options = options
        self.builder = builder
        self.reset()

    def reset(self):
        """A new run: no previous weights."""
        self.previous = None
        self.global_weights = None
        self.builder.reset()

    def run(self, context, report):
        if context.shared_weights and context.shared_error:
            raise RuntimeError("NormLIME weights built by the ranks: %s" % context.shared_error)
        gw = context.global_weights if context.shared_weights else self.builder(context)
        if gw is None:
            return None
        path = context.weights_file() if self.options.save_weights else None
        if path is not None:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            report.weights_file = gw.save(path)
        W = np.asarray(gw.weights, dtype=np.float64)
        prev = self.previous
        if prev is not None and prev.shape == W.shape:
            denom = max(float(np.linalg.norm(prev)), 1e-12)
            report.scalars["normlime/drift"] = float(np.linalg.norm(W - prev)) / denom
            k = min(5, W.shape[1])
            report.scalars["normlime/top_concepts_jaccard"] = float(np.mean(
                [metrics.topk_jaccard(W[c], prev[c], k, positive_only=True)
                 for c in range(W.shape[0])]))
        self.previous = W.copy()
        self.global_weights = gw
        report.texts.update(top_concepts_texts(gw, context.label_names))
        return gw


def top_concepts_texts(gw, label_names=None, k=5):
    """``{'normlime/top_concepts/<class>': text}``: per class (one VisualDL text card each, which
    keeps them readable) its ``k`` top concepts: id, weight, the mean colour of the concept (hex)
    and the share of the eval images it occurs in."""
    names = list(gw.class_names or label_names or [])
    colours = None
    if gw.codebook is not None:
        try:
            colours = gw.codebook.concept_colours()
        except Exception:  # an unusual descriptor: no colour
            colours = None
    freq = gw.info.get("concept_frequency")
    out = {}
    for c in range(gw.num_classes):
        name = names[c] if c < len(names) else str(c)
        count = int(gw.counts[c]) if c < len(gw.counts) else 0
        items = []
        for t in gw.top_concepts(c, k):
            t = int(t)
            parts = ["c%d %+.3f" % (t, float(gw.weights[c, t]))]
            if colours is not None:
                parts.append("colour #%02x%02x%02x" % tuple(int(v) for v in colours[t]))
            if freq is not None and t < len(freq):
                parts.append("in %.0f%% of images" % (100 * freq[t]))
            items.append(" ".join(parts))
        tag = "normlime/top_concepts/" + tag_part(name, str(c))
        out[tag] = "%s (%s weights, %d of %s eval images): %s" % (
            name, gw.mode, count, gw.info.get("n_images", "?"), " | ".join(items))
    return out


class ProbeStage:
    """One probe at a checkpoint (see the module docstring).

    Args:
        options: the session's :class:`~paddlex_interpret.training.options.ExplainOptions`.
        segmenter: the session's (memoised) segmenter: a probe is segmented once per run.
    """

    def __init__(self, options, segmenter):
        self.options = options
        self.segmenter = segmenter

    def run(self, context, report, name, probe, true_label, do_metrics, global_weights=None,
            codebook=None, on_error=None):
        o = self.options
        classifier = context.classifier
        image = classifier.view(probe)
        colour = global_weights.info.get("mean_colour") if global_weights is not None else None
        explainer = LimeExplainer(classifier, segmenter=self.segmenter,
                                  fill=resolve_fill(o.fill, colour),
                                  kernel_width=o.kernel_width, num_samples=o.num_samples,
                                  batch_size=o.batch_size, seed=o.seed,
                                  label_names=context.label_names, sampler=o.sampler,
                                  budget=o.budget_for_probes())
        labels = [true_label] if true_label is not None else None
        run = explainer.run(image, labels=labels, top_k=o.top_k)
        exp = run.explanation
        if not report.backend:  # what ran LIME (the metrics' small batches may run otherwise)
            report.backend = dict(classifier.backend_info)
        label = int(exp.labels[0])
        report.explanations[name] = exp
        prefix = "explain/%s/" % name
        report.scalars[prefix + "probability"] = float(exp.probabilities[label])
        report.scalars[prefix + "r2"] = float(exp.scores[0])
        self._spread(report, prefix, exp, label)
        if global_weights is not None and codebook is not None:
            try:
                # the API's NormLIME (paddlex_interpret.normlime): the same two calls
                concepts = codebook.assign(exp.image, exp.segments)
                exp.extra["normlime"] = normlime_weights_for(exp, concepts, global_weights)
                exp.extra["combined"] = combine(exp.weights, exp.extra["normlime"])
            except Exception as exc:
                if on_error is None:
                    raise
                on_error(name + "/normlime", exc)
        if o.log_images:
            self._render(report, prefix, exp, label, name, true_label)
        if do_metrics:
            self._score(report, prefix, classifier, explainer, run, label)
        return exp

    def _spread(self, report, prefix, exp, label):
        """The error bars in scalars: the mean standard error of the top ``num_features``
        weights relative to the largest weight (``top_weight_se``), how many of them are
        certified (``certified_top``) and the model calls spent (``num_samples_used``)."""
        k = self.options.num_features
        report.scalars[prefix + "num_samples_used"] = float(exp.settings["num_samples_used"])
        se = exp.se_for(label)
        if se is None:
            return
        w = exp.weights_for(label)
        top = np.argsort(-w, kind="stable")[:k]
        scale = float(np.max(np.abs(w))) or 1.0
        report.scalars[prefix + "top_weight_se"] = float(np.mean(se[top])) / scale
        report.scalars[prefix + "certified_top"] = float(len(exp.certified_top(k, label)))

    def _render(self, report, prefix, exp, label, name, true_label):
        o = self.options
        title = "epoch %d | %s | predicted %s (p=%.3f)" % (
            report.epoch, name, exp.label_name(exp.predicted_label), exp.predicted_probability)
        if true_label is not None:
            title += " | true %s" % exp.label_name(true_label)
        else:
            title += " | explaining %s" % exp.label_name(label)
        report.images[prefix + "lime"] = rendering.render_panel(exp, label, "lime",
                                                                o.num_features, title)
        if "combined" in exp.extra:
            report.images[prefix + "normlime"] = rendering.render_panel(
                exp, label, "normlime", o.num_features, title)

    def _score(self, report, prefix, classifier, explainer, run, label):
        o = self.options
        exp = run.explanation
        common = dict(fill=fill_value(exp), batch_size=o.batch_size, num_steps=o.metric_steps)
        w = exp.weights_for(label)
        report.scalars[prefix + "deletion_auc"] = metrics.deletion_auc(
            classifier, exp.image, exp.segments, w, label, **common)
        report.scalars[prefix + "insertion_auc"] = metrics.insertion_auc(
            classifier, exp.image, exp.segments, w, label, **common)
        if "combined" in exp.extra:
            report.scalars[prefix + "normlime_deletion_auc"] = metrics.deletion_auc(
                classifier, exp.image, exp.segments, exp.weights_for(label, "combined"), label,
                **common)
        runs = None
        if o.stability == "split" and len(run.masks) >= 8:
            mid = len(run.masks) // 2
            runs = [explainer.fit(run.masks[sl], run.outputs[sl], exp.labels[:1],
                                  sample_weight=run.sample_weight[sl]).coef[0]
                    for sl in (slice(0, mid), slice(mid, None))]
        elif o.stability == "reseed":
            again = explainer.explain(exp.image, labels=exp.labels, segments=exp.segments,
                                      seed=o.seed + 1)
            runs = [w, again.weights_for(label)]
        if runs is not None:
            st = metrics.stability(runs, k=o.num_features)
            report.scalars[prefix + "stability_jaccard"] = st["jaccard"]
            report.scalars[prefix + "stability_spearman"] = st["spearman"]
