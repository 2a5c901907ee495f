"""The section "Time to a stable explanation" from the caches of bench/research_stable.py and
bench/bench_stable.py (no model calls)."""
import json
import os
from itertools import combinations

import numpy as np

from bench import research_stable as RS
from bench import stable_common as B
from bench.report import markdown_table
from paddlex_interpret.core import metrics
from paddlex_interpret.core.uncertainty import certified_top

GRID = (300, 500, 1000)
SEG_NAMES = {"coarse": "coarse (quickshift merged, <= 25 regions)",
             "slic25": "SLIC, 25 requested",
             "qs13": "quickshift (PaddleX 1.3)"}


def _research(seg):
    path = RS.research_path(seg)
    return json.load(open(path)) if os.path.exists(path) else {}


def _jaccards(ws, ref):
    seed = np.mean([metrics.topk_jaccard(a, b, B.K, True) for a, b in combinations(ws, 2)])
    agree = np.mean([metrics.topk_jaccard(w, ref, B.K, True) for w in ws]) if ref is not None \
        else float("nan")
    return seed, agree


def _q(v, p):
    v = np.asarray([x for x in v if np.isfinite(x)])
    return float(np.percentile(v, p)) if v.size else float("nan")


def method_runs(photos, research, data):
    """``{method: {photo: (weights per seed, calls per seed, certified per seed, covs, ref)}}``."""
    out = {}
    for method, (seg, sampler, budget) in B.METHODS.items():
        for name in photos:
            key = "%s|%s" % (seg, name)
            if key not in research.get(seg, {}):
                continue
            ref, e = B.reference(research[seg], seg, name)
            runs = [B.replay(name, seg, sampler, budget, s, e["d"]) for s in B.SEEDS]
            ref_n = e["reference_n"]
            ref_cov = B.replay(name, seg, "stratified", ref_n, 1000, e["d"],
                               cap=ref_n)[1]
            out.setdefault(method, {})[name] = (
                [r[0] for r in runs], [r[2] for r in runs], [r[3] for r in runs],
                [(r[1], r[4], ref_cov) for r in runs], ref)
    for n in (300, 1000):
        for name in photos:
            ws = [data.get("peers", {}).get("%s|%d|%d" % (name, n, s)) for s in B.SEEDS]
            if all(ws):
                out.setdefault("interpretdl_%d" % n, {})[name] = (
                    [np.asarray(w["weights"]) for w in ws], [n] * 3, [False] * 3, None, None)
    return out


def headline(runs, held_out):
    rows = []
    for method, per in runs.items():
        sj, ag, calls = [], [], []
        hsj, hag = [], []
        for name, (ws, used, _, _, ref) in per.items():
            s, a = _jaccards(ws, ref)
            sj.append(s)
            ag.append(a)
            calls.extend(used)
            if name in held_out:
                hsj.append(s)
                hag.append(a)
        rows.append([B.LABELS[method], "%d (max %d)" % (np.median(calls), max(calls)),
                     "%.2f (%.2f)" % (np.median(sj), _q(sj, 10)),
                     "%.2f (%.2f)" % (np.median(ag), _q(ag, 10)) if np.isfinite(ag).any()
                     else "-",
                     "%.2f / %s" % (np.median(hsj), "%.2f" % np.median(hag)
                                    if np.isfinite(hag).any() else "-") if hsj else "-"])
    return markdown_table(["method", "model calls per explanation (median)",
                           "top-5 Jaccard across seeds, median (10th pct.)",
                           "top-5 Jaccard with the converged, median (10th pct.)",
                           "held-out photos: across seeds / with the converged"], rows)


def calls_to_stable(research, photos):
    """Per segmentation and sampler: the smallest N of the grid whose median (over photos)
    Jaccard across seeds and with the converged are both >= 0.9."""
    rows = []
    for seg in ("coarse", "slic25", "qs13"):
        for sampler in ("bernoulli", "stratified"):
            if seg not in research:
                continue
            first = None
            cells = []
            for n in GRID:
                sj, ag = [], []
                for name in photos:
                    e = research[seg].get("%s|%s" % (seg, name))
                    if e is None or "%s|%d|0" % (sampler, n) not in e["runs"]:
                        continue
                    ws = [np.asarray(e["runs"]["%s|%d|%d" % (sampler, n, s)]["weights"])
                          for s in B.SEEDS]
                    s, a = _jaccards(ws, np.asarray(e["ref_weights"]))
                    sj.append(s)
                    ag.append(a)
                if not sj:
                    continue
                cells.append("%.2f / %.2f" % (np.median(sj), np.median(ag)))
                if first is None and np.median(sj) >= 0.9 and np.median(ag) >= 0.9:
                    first = n
            if cells:
                rows.append([SEG_NAMES[seg],
                             sampler] + cells + ["%d" % first if first else "> %d" % GRID[-1]])
    return markdown_table(["superpixels", "sampler"] + ["N=%d: across seeds / with the converged"
                                                         % n for n in GRID]
                          + ["calls to 0.9 (both)"], rows)


def efficiency(research, photos):
    """Relative error ``|w - w_converged|^2 / |w_converged|^2`` (geometric mean over photos)."""
    rows = []
    for seg in ("coarse", "slic25", "qs13"):
        for method in ("bernoulli", "stratified", "stratified+size"):
            if seg not in research:
                continue
            cells = []
            for n in (300, 1000):
                errs = []
                for name in photos:
                    e = research[seg].get("%s|%s" % (seg, name))
                    if e is None or "%s|%d|0" % (method, n) not in e["runs"]:
                        continue
                    ref = np.asarray(e["ref_weights"])
                    errs.append(np.mean([np.sum((np.asarray(e["runs"]["%s|%d|%d" % (
                        method, n, s)]["weights"]) - ref) ** 2) / np.sum(ref ** 2)
                        for s in B.SEEDS]))
                cells.append(float(np.exp(np.mean(np.log(errs)))) if errs else float("nan"))
            if all(np.isfinite(cells)):
                rows.append([SEG_NAMES[seg], method] + ["%.4f" % c for c in cells])
    return markdown_table(["superpixels", "estimator", "relative error N=300",
                           "relative error N=1000"], rows)


def coverage(runs):
    """Certified claims against the converged explanation, and 95% intervals per weight."""
    rows = []
    for method in ("defaults", "today_1000"):
        per = runs.get(method, {})
        right = claims = 0
        inside = []
        for name, (ws, _, _, covs, ref) in per.items():
            for w, (cov, looks, ref_cov) in zip(ws, covs):
                c = certified_top(w, cov, B.K, 0.95, looks)
                if c:
                    claims += 1
                    right += c == sorted(np.argsort(-ref, kind="stable")[:len(c)].tolist())
                se = np.sqrt(np.diag(cov) + np.diag(ref_cov))  # the reference has its noise too
                inside.append(np.mean(np.abs(w - ref) < 1.96 * se))
        if claims or inside:
            rows.append([B.LABELS[method], "%d / %d" % (right, claims),
                         "%.2f" % (right / claims) if claims else "-",
                         "%.3f" % np.mean(inside)])
    return markdown_table(["method", "certified top sets equal to the converged one's",
                           "rate (claimed: >= 0.95)",
                           "95% intervals of the difference to the converged weight holding "
                           "0"], rows)


def faithfulness(data, photos):
    faith = data.get("faith", {})
    rows = []
    for method in list(B.METHODS) + ["interpretdl_1000"]:
        vals = [faith.get("%s|%s" % (method, n)) for n in photos]
        vals = [v for v in vals if v]
        if not vals:
            continue
        cells = []
        for fill in ("grey", "blur"):
            arr = np.array([v["%s/pixels" % fill] for v in vals])  # (photos, 2)
            for j in (0, 1):
                x = arr[:, j]
                cells.append("%.3f ± %.3f" % (x.mean(), x.std(ddof=1) / np.sqrt(len(x))
                                              if len(x) > 1 else 0.0))
        rows.append([B.LABELS[method], len(vals)] + cells)
    return markdown_table(["method", "photos", "deletion, grey (lower better)",
                           "insertion, grey (higher better)", "deletion, blur (lower better)",
                           "insertion, blur (higher better)"], rows)


def ties(runs, method="defaults"):
    """How many photos' converged 5th and 6th weights are closer than one standard error of
    their difference at the calls the method spent (no estimator at that budget orders them)."""
    per = runs.get(method, {})
    close = []
    for name, (ws, used, _, covs, ref) in per.items():
        order = np.argsort(-ref, kind="stable")
        i, j = order[B.K - 1], order[B.K]
        cov = covs[0][0]
        sd = np.sqrt(max(cov[i, i] + cov[j, j] - 2 * cov[i, j], 0.0))
        close.append((name, float(ref[i] - ref[j]) / sd if sd > 0 else float("inf")))
    few = [n for n, z in close if z < 1]
    return ("Ties: on %d of %d photos (%s) the converged 5th and 6th weights differ by less than "
            "one standard error of their difference at the calls the defaults spent (gap / "
            "standard error, median over the photos %.2f): there the top 5 is a coin toss for "
            "any estimator of these weights at this budget, and the seeds disagree on the 5th."
            % (len(few), len(close), ", ".join(few) or "none",
               float(np.median([z for _, z in close])) if close else float("nan")))


def decision(data, photos, runs):
    """Why the default segmentation is what it is, from the faithfulness numbers."""
    faith = data.get("faith", {})
    coarse = [_jaccards(v[0], v[4])[0] for v in runs.get("coarse_auto", {}).values()]
    steady = float(np.median(coarse)) if coarse else float("nan")

    def mean(method, fill, j):
        v = [faith["%s|%s" % (method, n)]["%s/pixels" % fill][j] for n in photos
             if "%s|%s" % (method, n) in faith]
        return float(np.mean(v)) if v else float("nan")

    parts = []
    for fill in ("grey", "blur"):
        parts.append("%s removal: deletion %.3f vs %.3f, insertion %.3f vs %.3f" % (
            fill, mean("coarse_auto", fill, 0), mean("defaults", fill, 0),
            mean("coarse_auto", fill, 1), mean("defaults", fill, 1)))
    how = ("hold still where quickshift's superpixels do not" if steady >= 0.9 else
           "are steadier than quickshift's superpixels (though short of a top-5 Jaccard of 0.9 "
           "across seeds on this model: median %.2f)" % steady)
    return ("The coarse regions " + how + ", but they are "
            "less faithful than quickshift's at the same budget (coarse vs the defaults, %s): "
            "a region brings irrelevant pixels along with the relevant ones. The estimand may "
            "change only for an explanation at least as faithful, so quickshift stays the "
            "default and `segmenter='coarse'` is there by name for those who want the steadier "
            "top 5." % "; ".join(parts))


def report(data, photos):
    from bench import stable_photos as P

    research = {seg: _research(seg) for seg in ("coarse", "slic25", "qs13")}
    research = {seg: r for seg, r in research.items() if r}
    runs = method_runs(photos, research, data)
    held = set(P.HELD_OUT)
    from bench import real_model as R

    parts = ["%s, %d photos "
             "that packages ship at %d px (tuning: %s; held out, never looked at while "
             "choosing: %s), the predicted class, fill 'auto' (%s on this model), seeds %s. "
             "The converged explanation of each photo and superpixels: the stratified sampler "
             "at N=%s with its own seed (LIME's estimand: the seed mean of LIME's own sampler "
             "converges to it), its two halves agreeing at top-5 Jaccard %s."
             % (R.MODELS[R.MODEL], len(photos), R.input_size(), ", ".join(P.TUNING),
                ", ".join(P.HELD_OUT), _fills(data), list(B.SEEDS),
                _ref_n(research), _ref_half(research)),
             headline(runs, held),
             decision(data, photos, runs),
             ties(runs),
             "Calls to a stable top 5, per superpixels (%s) and sampler (median over the photos "
             "of the top-5 Jaccard across seeds / with the converged explanation):"
             % _counts(research),
             calls_to_stable(research, photos),
             "Estimator error at equal calls (relative squared distance to the converged "
             "weights, geometric mean over the photos; the ratio of two rows is how many "
             "times the calls one needs for the other's error):",
             efficiency(research, photos),
             "Coverage of the error bars (95%, certified top sets with the Bonferroni "
             "correction and, for 'auto', its looks):",
             coverage(runs),
             "Faithfulness at equal calls (x = fraction of pixels; removed pixels grey 127, "
             "or blurred, a removal that is not the explainer's fill; seed 0; mean ± "
             "standard error over the photos):",
             faithfulness(data, photos)]
    parts.extend(_extra_lines(data))
    return "\n\n".join(parts)


def _fills(data):
    """The fills 'auto' chose on the photos of the randomised-model check."""
    fills = sorted({v.get("fill") or "grey" for v in data.get("sanity", {}).values()})
    return " or ".join(fills) if fills else "grey"


def _counts(research):
    return ", ".join("%s %d-%d per photo" % (SEG_NAMES[seg].split(" (")[0], min(e["d"] for e in
                                                                            r.values()),
                                             max(e["d"] for e in r.values()))
                     for seg, r in research.items())


def _ref_n(research):
    ns = {e["reference_n"] for r in research.values() for e in r.values()}
    return "/".join(str(n) for n in sorted(ns))


def _ref_half(research):
    v = [e["ref_half_jaccard"] for r in research.values() for e in r.values()]
    return "%.2f on average (min %.2f)" % (np.mean(v), np.min(v)) if v else "-"


def _extra_lines(data):
    lines = []
    t = data.get("timing")
    if t:
        lines.append(
            "Seconds per explanation on %s, one run: the defaults %.1f s (%d calls), PaddleX "
            "1.3's LIME at N=1000 %.1f s, InterpretDL 0.8's LIME at N=1000 %.1f s with its default "
            "dygraph model and %.1f s with the network in Paddle Inference: the defaults take "
            "%.1fx less time than InterpretDL's default at its best N measured (N=1000, where "
            "it is not stable: see the table), %.1fx less than InterpretDL on our engine."
            % (t["photo"], t["defaults"], t["defaults_calls"], t["today_1000"],
               t["interpretdl_dygraph_1000"], t["interpretdl_inference_1000"],
               t["interpretdl_dygraph_1000"] / t["defaults"],
               t["interpretdl_inference_1000"] / t["defaults"]))
    s = data.get("sanity")
    if s:
        rho = [v["spearman"] for v in s.values()]
        lines.append("Randomised-model check (every learned weight of the network re-drawn, "
                     "BatchNorm's running statistics, if any, kept): Spearman of "
                     "the defaults' weights on the randomised and the trained network %s "
                     "(passes below 0.3: %s)." % (", ".join("%s %.2f" % (k, v["spearman"])
                                                            for k, v in s.items()),
                                                  "yes" if max(np.abs(rho)) < 0.3 else "NO"))
    if not data.get("peers"):
        lines.append("InterpretDL 0.8's LIME draws LIME's masks (each superpixel kept with "
                     "probability 1/2) with LIME's kernel, and fits a ridge with alpha 0 on a "
                     "black fill: at equal superpixels and N its seed-to-seed top-5 stability is "
                     "PaddleX 1.3's LIME's (equal within noise in \"Explanations with the "
                     "defaults vs "
                     "the peers\"), so it is not stable within N=1000 either" + (
                         "; its time is compared at N=1000, its largest N measured."
                         if t else "."))
    if data.get("peer_versions"):
        lines.append("Peers: %s." % ", ".join("%s %s" % kv for kv in data["peer_versions"].items()))
    return lines
