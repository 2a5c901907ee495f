"""What bench/bench_stable.py and its report (bench/stable_report.py) share: the methods compared,
their seeds and labels, the results file, and the replay of ``num_samples='auto'`` on the model
outputs bench/research_stable.py caches."""
import json
import os

import numpy as np

from bench import research_stable as RS
from paddlex_interpret.core.budget import AutoBudget
from paddlex_interpret.core.sampling import make_kernel, make_sampler
from paddlex_interpret.core.uncertainty import top_k_certified

K = 5
SEEDS = (0, 1, 2)
OUT = os.path.join(RS.CACHE, "bench_stable.json")
#: method -> (segmentation, sampler, budget: an int or 'auto')
METHODS = {
    "defaults": ("qs13", "stratified", "auto"),
    "coarse_auto": ("coarse", "stratified", "auto"),
    "today_300": ("qs13", "bernoulli", 300),
    "today_1000": ("qs13", "bernoulli", 1000),
}
LABELS = {"defaults": "**defaults**: quickshift, stratified sampler, num_samples='auto'",
          "coarse_auto": "segmenter='coarse', stratified sampler, num_samples='auto'",
          "coarse_bernoulli_1000": "coarse regions, LIME's sampler, N=1000",
          "today_300": ("PaddleX 1.3's LIME (quickshift, LIME's sampler), N=300 (the hook's "
                        "former default)"),
          "today_1000": "PaddleX 1.3's LIME (quickshift, LIME's sampler), N=1000",
          "interpretdl_1000": "InterpretDL 0.8 LIME (quickshift superpixels), N=1000",
          "interpretdl_300": "InterpretDL 0.8 LIME (quickshift superpixels), N=300"}
KERNEL = make_kernel(None, 0.25)


def load(path):
    return json.load(open(path)) if os.path.exists(path) else {}


def save(data, path=OUT):
    with open(path + ".tmp", "w") as f:
        json.dump(data, f)
    os.replace(path + ".tmp", path)


def cached(name, seg, sampler, seed):
    with np.load(os.path.join(RS.CACHE, "%s_%s_%s_%d.npz" % (name, seg, sampler, seed))) as z:
        return z["y"], int(z["label"])


def replay(name, seg, sampler, budget, seed, d, cap=1000):
    """``(weights, covariance, calls, certified by the budget, looks)`` of one method from the
    cache (``budget``: 'auto' with ``cap``, or an int)."""
    pairs = make_sampler(sampler).cluster_size
    y, _ = cached(name, seg, sampler, seed)
    cap = cap if budget == "auto" else budget
    masks = np.asarray(make_sampler(sampler).sample(cap, d, np.random.default_rng(seed), KERNEL),
                       dtype=bool)
    policy = AutoBudget()
    plan = policy.plan(d, 50) if budget == "auto" else [budget]
    k = min(K, d - 1)
    for n in plan:
        m = masks[:n]
        coef, ainv, xr, wr = RS.fit(m, y[:n], RS.sample_weight(sampler, m, KERNEL))
        cov = RS.sandwich(ainv, xr, wr, pairs > 1) * n / max(n - d - 1, 1)
        done = top_k_certified(coef, cov, k, policy.confidence, len(plan), policy.tolerance)
        if budget == "auto" and done:
            break
    return coef, cov, n, done, len(plan)


def reference(results, seg, name):
    e = results["%s|%s" % (seg, name)]
    return np.asarray(e["ref_weights"]), e
