"""Can a better estimator of LIME's weights make the defaults' top 5 stable at 1000 calls?
(research bench; writes BENCHMARKS.md "Variance reduction at equal calls").

The bench model (:mod:`bench.real_model`, ``PXI_BENCH_MODEL``) on the photos of
:mod:`bench.stable_photos`, the defaults' superpixels
(quickshift, PaddleX 1.3's settings), fill and sampler (stratified, LIME's kernel), the
predicted class. Every estimator below estimates LIME's weights (the weighted least-squares
projection of the model's output on the masks under LIME's law) from the same masks and
model outputs (:class:`bench.research_stable.Source`'s cache, seeds 0, 1, 2); they differ only
in what they subtract before the projection:

- ``plain``: the defaults' fit;
- ``adjusted (logistic)``: regression adjustment: a logistic model ``sigmoid(a + b . z)`` of the
  outputs, fitted on the samples; its projection under the law (computed on ``--simulate``
  simulated masks, no model call) plus the projection of the samples' residuals;
- ``adjusted (logistic + pairs)``: the same with the pairwise products of the 10 largest
  superpixels added to the model of the outputs (the interactions of the object's parts);
- ``control variate (integrated gradients)``: ``sigmoid`` of the model's log-odds linearised
  per superpixel by integrated gradients from the fill to the photo (16 steps, scaled so both
  ends are exact), subtracted with its least-squares scale; its projection by simulation.

Also two changes of the estimand, each against its own converged weights: the regression
target (LIME fits the class probability ``p``; here ``log(p / (1 - p))`` or ``sqrt(p)``, same
masks), and LIME's own sampler with wider kernels (only the seeds' agreement is reported). The converged weights: the plain fit on ``--reference-n`` calls of
seed 1000, as in "Time to a stable explanation".

    .venv/bin/python -m bench.research_estimators
    PXI_BENCH_MODEL=squeezenet1_1 .venv/bin/python -m bench.research_estimators

Each run saves its model's rows; the section shows every model's that are saved.
"""
import argparse
import itertools
import json
import os
import time

import numpy as np

from bench import report
from bench import research_stable as RS
from paddlex_interpret.core.agreement import topk_jaccard
from paddlex_interpret.core.sampling import make_kernel, make_sampler

K = 5
SEEDS = (0, 1, 2)
REF_SEED = 1000
PAIRS_OF = 10
IG_STEPS = 16
ESTIMATORS = ("plain", "adjusted (logistic)", "adjusted (logistic + pairs)",
              "control variate (integrated gradients)")


def wls(masks, y, w, alpha=1.0):
    """The defaults' surrogate: weighted ridge (``alpha``) with an unpenalised intercept."""
    return RS.fit(masks, y, w, alpha=alpha)[0]


def logistic(masks, y, w, lam=1.0, iters=50):
    """``z -> sigmoid(a + b . z)`` fitted to outputs in [0, 1] (weighted, ridge ``lam`` on b)."""
    X = np.hstack([np.ones((len(y), 1)), masks.astype(np.float64)])
    b = np.zeros(X.shape[1])
    mean = np.clip(np.average(y, weights=w), 1e-4, 1 - 1e-4)
    b[0] = np.log(mean / (1 - mean))
    P = lam * np.eye(X.shape[1])
    P[0, 0] = 0.0
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-X @ b))
        H = X.T @ ((w * p * (1 - p) + 1e-9)[:, None] * X) + P
        step = np.linalg.solve(H, X.T @ (w * (y - p)) - P @ b)
        b += step
        if np.abs(step).max() < 1e-7:
            break
    return lambda m: 1.0 / (1.0 + np.exp(-(b[0] + m.astype(np.float64) @ b[1:])))


def pairs_model(masks, y, w, top, alpha=1.0):
    """``z -> c + b . z + sum_ij g_ij z_i z_j`` over the pairs of ``top`` (weighted ridge)."""
    pairs = list(itertools.combinations(top, 2))

    def features(m):
        X = m.astype(np.float64)
        return np.hstack([X] + [X[:, [i]] * X[:, [j]] for i, j in pairs])

    F = features(masks)
    sw = w / w.sum()
    mu, ym = sw @ F, sw @ y
    Fc = F - mu
    coef = np.linalg.solve(Fc.T @ (w[:, None] * Fc) + alpha * np.eye(F.shape[1]),
                           Fc.T @ (w * (y - ym)))
    return lambda m: ym + (features(m) - mu) @ coef


def ig_control(net, view, fill_image, label, segments):
    """``z -> sigmoid(l(fill) + a . z)``: the log-odds of ``label`` linearised per superpixel by
    integrated gradients from ``fill_image`` to ``view`` (scaled so ``z = 1`` gives ``l(view)``)."""
    import paddle

    from bench import real_model as R

    def norm(img):
        return ((img.astype(np.float32) / 255.0 - R.MEAN) / R.STD).transpose(2, 0, 1)

    def log_odds(t):
        lp = paddle.nn.functional.log_softmax(net(t), axis=1)[:, label]
        return lp - paddle.log(1.0 - paddle.exp(lp) + 1e-12)

    x, f = norm(view), norm(fill_image)
    alphas = (np.arange(IG_STEPS) + 0.5) / IG_STEPS
    t = paddle.to_tensor(np.stack([f + a * (x - f) for a in alphas]).astype(np.float32),
                         stop_gradient=False)
    (grad,) = paddle.grad(log_odds(t).sum(), t)
    attr = ((x - f) * grad.numpy().mean(0)).sum(0)
    with paddle.no_grad():
        ends = log_odds(paddle.to_tensor(np.stack([x, f]))).numpy()
    d = int(segments.max()) + 1
    a = np.bincount(segments.ravel(), attr.ravel(), minlength=d)
    if abs(a.sum()) > 1e-12:
        a = a * (ends[0] - ends[1]) / a.sum()
    return lambda m: 1.0 / (1.0 + np.exp(-(ends[1] + m.astype(np.float64) @ a)))


def adjusted(masks, y, w, model, sim, sim_w):
    """Regression adjustment: ``model``'s projection under the law (on the simulated masks,
    ridge scaled to the same strength per sample) plus the projection of the residuals."""
    scale = len(sim_w) / float(len(y))
    return wls(sim, model(sim), sim_w, alpha=scale) + wls(masks, y - model(masks), w)


def controlled(masks, y, w, control, sim, sim_w):
    """``plain - c (fit of the control on the samples - its projection)``, ``c`` the
    least-squares scale of the control on the plain fit's residuals."""
    plain = wls(masks, y, w)
    g = control(masks)
    gfit = wls(masks, g, w)
    X = masks.astype(np.float64)
    sw = w / w.sum()
    ry = (y - sw @ y) - (X - sw @ X) @ plain
    rg = (g - sw @ g) - (X - sw @ X) @ gfit
    c = float((w * rg) @ ry / max((w * rg) @ rg, 1e-300))
    scale = len(sim_w) / float(len(y))
    return plain - c * (gfit - wls(sim, control(sim), sim_w, alpha=scale)), c


def seeds_and_agreement(weights, converged):
    """Mean pairwise top-``K`` Jaccard (positive weights) of the seeds' ``weights``, and their
    mean with ``converged``."""
    return (np.mean([topk_jaccard(a, b, K, True) for a, b in itertools.combinations(weights, 2)]),
            np.mean([topk_jaccard(w, converged, K, True) for w in weights]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=1000, help="model calls per explanation")
    ap.add_argument("--reference-n", type=int, default=4000)
    ap.add_argument("--simulate", type=int, default=60000,
                    help="simulated masks for a model's projection under the law")
    ap.add_argument("--photos", nargs="+", default=None)
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--report", action="store_true",
                    help="only write the section from the saved results")
    args = ap.parse_args()
    import paddle

    from bench import real_model as R
    from bench import stable_photos as P

    if args.report:
        return publish(R, args)

    paddle.set_device("cpu")
    clf, net = R.classifier()
    names = args.photos or list(P.TUNING + P.HELD_OUT)
    views = P.views(names)
    kernel = make_kernel(None, 0.25)
    strat = make_sampler("stratified")
    rows = {k: {"err": [], "seeds": [], "agree": []} for k in ESTIMATORS}
    widths = {"LIME's sampler, kernel width 0.25 (LIME's)": 0.25,
              "LIME's sampler, kernel width 1": 1.0, "LIME's sampler, no kernel": None}
    wide = {k: [] for k in widths}
    targets = {"target log-odds log(p / (1 - p))": lambda p: np.log(
        np.clip(p, 1e-7, 1 - 1e-7) / (1 - np.clip(p, 1e-7, 1 - 1e-7))),
        "target sqrt(p)": np.sqrt}
    retarget = {k: {"seeds": [], "agree": []} for k in targets}
    scales, corr = [], []
    t0 = time.time()
    for name in names:
        src = RS.Source(clf, name, views[name], "qs13")
        label = src.predicted_label()
        src._prepare()
        sim = np.asarray(strat.sample(args.simulate, src.d, np.random.default_rng(99), kernel),
                         dtype=bool)
        sim_w = RS.sample_weight("stratified", sim, kernel)
        control = ig_control(net, src.view, src.fill_image, label, src.segments)
        ref_m, ref_y = src.outputs("stratified", REF_SEED, args.reference_n)
        ref_w = RS.sample_weight("stratified", ref_m, kernel)
        ref = wls(ref_m, ref_y, ref_w)
        est = {k: [] for k in ESTIMATORS}
        target_weights = {k: [] for k in targets}
        for seed in SEEDS:
            m, y = src.outputs("stratified", seed, args.n)
            w = RS.sample_weight("stratified", m, kernel)
            for k, f in targets.items():
                target_weights[k].append(wls(m, f(y), w))
            plain = wls(m, y, w)
            est["plain"].append(plain)
            lg = logistic(m, y, w)
            est["adjusted (logistic)"].append(adjusted(m, y, w, lg, sim, sim_w))
            top = sorted(np.argsort(-np.abs(plain))[:PAIRS_OF].tolist())
            inter = pairs_model(m, y - lg(m), w, top)
            est["adjusted (logistic + pairs)"].append(
                adjusted(m, y, w, lambda z: lg(z) + inter(z), sim, sim_w))
            cv, c = controlled(m, y, w, control, sim, sim_w)
            est["control variate (integrated gradients)"].append(cv)
            scales.append(c)
            corr.append(float(np.corrcoef(y, control(m))[0, 1]))
        for k, ws in est.items():
            rows[k]["err"].append(np.mean([np.sum((v - ref) ** 2) / np.sum(ref ** 2)
                                           for v in ws]))
            seeds, agree = seeds_and_agreement(ws, ref)
            rows[k]["seeds"].append(seeds)
            rows[k]["agree"].append(agree)
        for k, f in targets.items():
            seeds, agree = seeds_and_agreement(target_weights[k], wls(ref_m, f(ref_y), ref_w))
            retarget[k]["seeds"].append(seeds)
            retarget[k]["agree"].append(agree)
        bern = make_sampler("bernoulli")
        for label_w, width in widths.items():
            fits = []
            for seed in SEEDS:
                m, y = src.outputs("bernoulli", seed, args.n)
                w = (np.ones(len(y)) if width is None else
                     np.asarray(bern.sample_weight(m, make_kernel(None, width)), np.float64))
                fits.append(wls(m, y, w))
            wide[label_w].append(seeds_and_agreement(fits, fits[0])[0])
        print("%s d=%d %s (%.0f s)" % (name, src.d, " ".join(
            "%s %.2f" % (k.split(" ")[0], rows[k]["seeds"][-1]) for k in ESTIMATORS),
            time.time() - t0), flush=True)

    base = float(np.exp(np.mean(np.log(rows["plain"]["err"]))))
    table = []
    for k in ESTIMATORS:
        r = rows[k]
        err = float(np.exp(np.mean(np.log(r["err"]))))
        table.append(["**%s**" % k if k == "plain" else k, "%.4f" % err, "%.2f" % (base / err),
                      "%.2f (%.2f)" % (np.median(r["seeds"]), np.percentile(r["seeds"], 10)),
                      "%.2f (%.2f)" % (np.median(r["agree"]), np.percentile(r["agree"], 10))])
    for k, r in retarget.items():
        table.append([k, "-", "-",
                      "%.2f (%.2f)" % (np.median(r["seeds"]), np.percentile(r["seeds"], 10)),
                      "%.2f (%.2f)" % (np.median(r["agree"]), np.percentile(r["agree"], 10))])
    for k, v in wide.items():
        table.append([k, "-", "-", "%.2f (%.2f)" % (np.median(v), np.percentile(v, 10)), "-"])
    result = {"model": R.MODELS[R.MODEL], "photos": names, "n": args.n,
              "reference_n": args.reference_n, "simulate": args.simulate, "table": table,
              "corr": [float(np.median(corr)), float(np.min(corr)), float(np.max(corr))],
              "scale": float(np.median(scales))}
    with open(os.path.join(RS.CACHE, "estimators.json"), "w") as f:
        json.dump(result, f)
    publish(R, args)


def publish(R, args):
    """Print the section, then write it to BENCHMARKS.md unless ``--no-write``."""
    body = section(R)
    print(body)
    if not args.no_write:
        report.write_section("Variance reduction at equal calls", body,
                             "python -m bench.research_estimators && PXI_BENCH_MODEL="
                             "squeezenet1_1 python -m bench.research_estimators")


def section(R):
    """The section from every bench model's saved results (the default model first)."""
    results = []
    for model in R.MODELS:
        path = os.path.join(RS.cache_dir(model), "estimators.json")
        if os.path.exists(path):
            results.append(json.load(open(path)))
    first = results[0]
    parts = [
        "%d photos (%s), the defaults' superpixels (quickshift), fill and sampler (stratified, "
        "LIME's kernel), the predicted class, %d model calls per explanation, seeds %s; the "
        "converged weights: the plain fit on %d calls of another seed. Every estimator but the "
        "last five rows estimates the same weights (LIME's) from the same masks and outputs; a "
        "model's projection under the law is computed on %d simulated masks (no model call). "
        "Relative error: squared distance to the converged weights over their squared norm, "
        "geometric mean over the photos (part of it is the reference's own noise); calls saved: "
        "the plain error over the estimator's (how many times the calls plain needs for the "
        "same error)." % (len(first["photos"]), ", ".join(first["photos"]), first["n"],
                          list(SEEDS), first["reference_n"], first["simulate"])]
    for r in results:
        parts += ["**%s**" % r["model"],
                  report.markdown_table(["estimator", "relative error", "calls saved",
                                         "top-5 Jaccard across seeds, median (10th pct.)",
                                         "with the converged, median (10th pct.)"], r["table"])]
    adjusted_rows = [row for r in results for row in r["table"] if row[0].startswith("adjusted")]
    saved = [float(row[2]) for row in adjusted_rows]
    medians = [float(row[3].split(" ")[0]) for row in adjusted_rows]
    parts.append(
        "The model's output is far from what the subtracted models describe: the integrated-"
        "gradients control correlates with the outputs at %s and its fitted scale is %s, so it "
        "removes almost nothing; the logistic model, with or without the parts' interactions, "
        "needs %.2fx to %.2fx fewer calls for the plain fit's error, and its median top-5 "
        "Jaccard across seeds is at most %.2f. None of these approaches the order of magnitude the stable "
        "top 5 needs: the 5th and 6th converged weights are tied within the noise of 1000 calls "
        "on most photos (\"Time to a stable explanation\"), and no estimator of the same weights "
        "separates a tie. Another regression target or a wider kernel changes the weights but "
        "not their ties (a target's rows are compared with that target's converged weights). "
        "The defaults keep the plain fit." % (
            "; ".join("%.2f on %s (median; %.2f to %.2f)" % (r["corr"][0], r["model"].split(" (")[0],
                                                          r["corr"][1], r["corr"][2])
                      for r in results),
            ", ".join("%.3f" % r["scale"] for r in results) + " (medians)",
            min(saved), max(saved), max(medians)))
    return "\n\n".join(parts)

if __name__ == "__main__":
    main()
