"""NormLIME and GLIME on a PaddleX MobileNetV3_small trained here on the coloured-shapes data.

Measures, and writes into the "NormLIME and GLIME" section of BENCHMARKS.md:

1. the concept descriptor choice: how well KMeans concepts over each candidate descriptor separate
   the deciding object (per class) from the background, and their cost;
2. build time per dataset image: codebook fit, ``fast`` weights (superpixels, cached occurrences,
   PaddleX 1.3's grid) and ``aggregate`` weights, each next to its forward-pass floor;
3. whether each mode ranks the deciding concept first for each class;
4. GLIME stability: top-5 superpixel Jaccard over 5 seeds at N = 250 and 500 for plain LIME and
   GLIME (plus LIME at N = 1000), agreement with a converged LIME (the 5 runs' samples pooled), and
   whether the top superpixels lie on the object that decides the class.

    .venv/bin/python -m bench.bench_normlime            # ~3-4 min on 2 cores
    .venv/bin/python -m bench.bench_normlime --quick    # ~1.5 min, fewer images (a smoke run)
"""
import argparse
import functools
import itertools
import os
import sys
import tempfile
import time

os.environ.setdefault("OMP_NUM_THREADS", str(os.cpu_count() or 1))

import numpy as np  # noqa: E402

import paddlex_interpret  # noqa: E402,F401  (before paddlex)
import paddle  # noqa: E402
import paddlex as pdx  # noqa: E402,F401

from bench.report import markdown_table, write_section  # noqa: E402
from pxi_testing.recipes import SHAPES_KWARGS, TRAIN_SETTINGS, train_classifier  # noqa: E402
from paddlex_interpret.core import normlime as nl  # noqa: E402
from paddlex_interpret.core.normlime.concepts import DESCRIPTORS, ConceptCodebook  # noqa: E402
from paddlex_interpret.core.lime import LimeExplainer  # noqa: E402
from paddlex_interpret.core.perturbation import sample_masks  # noqa: E402
from paddlex_interpret.core.sampling import (  # noqa: E402
    BernoulliSampler, PairedKernelSampler, exponential_kernel)
from paddlex_interpret.core.surrogate import EvidenceRidge, WeightedRidge  # noqa: E402
from paddlex_interpret.adapters.paddlex import PaddleXClassifier  # noqa: E402
from pxi_testing.synthetic import make_shapes_dataset  # noqa: E402

SECTION = "NormLIME and GLIME"
N_CONCEPTS = 16
SEEDS = 5
TOP = 5


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def stratified(items, per_class, stride_seed=0):
    out = []
    for c in sorted({l for _, l, _ in items}):
        cls = [it for it in items if it[1] == c]
        step = max(1, len(cls) // per_class)
        out += cls[stride_seed % step::step][:per_class]
    return out


def category_of_superpixels(ds, path, segments, label):
    """0 = background, c + 1 = on the object of class c (> 50% of the superpixel's pixels)."""
    mask = ds.mask_for(path)
    n = int(segments.max()) + 1
    frac = (np.bincount(segments.ravel(), weights=mask.ravel(), minlength=n)
            / np.bincount(segments.ravel(), minlength=n))
    return np.where(frac > 0.5, label + 1, 0)


# ------------------------------------------------------------------------------------ 1
def descriptor_table(ds, clf, model, fit_items, eval_items):
    """Concepts from each descriptor: NMI with (background / object of class c), balanced accuracy
    of 'concept -> majority category' learnt on the fit images and scored on held-out ones."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import balanced_accuracy_score, normalized_mutual_info_score
    from sklearn.preprocessing import normalize

    seg = ConceptCodebook().make_segmenter()

    def prepare(items):
        out = []
        for path, label, _ in items:
            im = clf.view(path)
            s = seg(im)
            out.append((im, s, category_of_superpixels(ds, path, s, label)))
        return out

    fit, ev = prepare(fit_items), prepare(eval_items)

    def conv1(im, s):  # PaddleX 1.3's recipe on the model's own first conv: centroid + mean
        x = paddle.to_tensor(clf.preprocess(im[None]))
        model.net.eval()
        with paddle.no_grad():
            f = model.net.conv(x).numpy()[0].transpose(1, 2, 0)
        ry = np.minimum(np.arange(im.shape[0]) * f.shape[0] // im.shape[0], f.shape[0] - 1)
        rx = np.minimum(np.arange(im.shape[1]) * f.shape[1] // im.shape[1], f.shape[1] - 1)
        f = f[ry][:, rx]
        n, flat = s.max() + 1, s.ravel()
        F = f.reshape(-1, f.shape[2])
        cnt = np.bincount(flat, minlength=n)
        mean = np.stack([np.bincount(flat, weights=F[:, c], minlength=n)
                         for c in range(F.shape[1])], 1) / cnt[:, None]
        yy, xx = np.mgrid[:s.shape[0], :s.shape[1]]
        cy = np.clip((np.bincount(flat, yy.ravel(), n) / cnt + .5).astype(int), 0, s.shape[0] - 1)
        cx = np.clip((np.bincount(flat, xx.ravel(), n) / cnt + .5).astype(int), 0, s.shape[1] - 1)
        return normalize(np.concatenate([f[cy, cx], mean], 1))

    def score(fit_c, ev_c):
        tc, tcat = np.concatenate(fit_c), np.concatenate([c for _, _, c in fit])
        vc, vcat = np.concatenate(ev_c), np.concatenate([c for _, _, c in ev])
        k = int(max(tc.max(), vc.max())) + 1
        ncat = ds.num_classes + 1
        mapping = np.array([np.bincount(tcat[tc == i], minlength=ncat).argmax()
                            if (tc == i).any() else 0 for i in range(k)])
        pred = mapping[vc]
        obj = vcat > 0
        return (normalized_mutual_info_score(vcat, vc), balanced_accuracy_score(vcat, pred),
                (pred[obj] == vcat[obj]).mean(), (pred[~obj] > 0).mean())

    rows = []
    for name in DESCRIPTORS:
        segs = iter([s for _, s, _ in fit])
        t0 = time.perf_counter()
        cb = ConceptCodebook().fit([im for im, _, _ in fit], segmenter=lambda im: next(segs),
                                   n_concepts=N_CONCEPTS, seed=0, descriptor=name)
        t_fit = time.perf_counter() - t0
        t0 = time.perf_counter()
        ev_c = [cb.assign(im, s) for im, s, _ in ev]
        t_assign = (time.perf_counter() - t0) / len(ev)
        m = score([cb.assign(im, s) for im, s, _ in fit], ev_c)
        rows.append(("`%s`%s" % (name, " (default)" if name == "lab_std_texture" else ""),)
                    + m + (t_fit, t_assign))
    t0 = time.perf_counter()
    X = [conv1(im, s) for im, s, _ in fit]
    km = KMeans(N_CONCEPTS, random_state=0, n_init=4).fit(np.concatenate(X))
    t_fit = time.perf_counter() - t0
    t0 = time.perf_counter()
    ev_c = [km.predict(conv1(im, s)) for im, s, _ in ev]
    t_assign = (time.perf_counter() - t0) / len(ev)
    rows.append(("model's first conv, frozen (1.3 recipe)",)
                + score([km.predict(x) for x in X], ev_c) + (t_fit, t_assign))
    return markdown_table(
        ["descriptor", "NMI(concept, category)", "balanced acc.", "object superpixels -> "
         "their class's concept", "background -> an object concept", "fit (s)",
         "assign (ms/img)"],
        [(r[0], "%.3f" % r[1], "%.3f" % r[2], "%.3f" % r[3], "%.3f" % r[4], "%.2f" % r[5],
          "%.2f" % (1000 * r[6])) for r in rows]), len(fit), len(ev)


# ------------------------------------------------------------------------------------ 2
def forward_floor(clf, images, batch_size=50, repeats=5):
    """Seconds per image of the classifier itself on images it already sees (its backend, the
    per-batch Normalize and the forward pass, as LIME calls it): best of ``repeats`` batches after
    two warm-up batches of the same shape."""
    batch = np.stack(images[:batch_size])
    for _ in range(2):
        clf(batch)
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        clf(batch)
        best = min(best, (time.perf_counter() - t0) / len(batch))
    return best


# ------------------------------------------------------------------------------------ 3
def ranking_rows(name, gw, ds, eval_items, view):
    seg = gw.codebook.make_segmenter()
    share_on = {}
    for path, label, _ in eval_items:
        im = view(path)
        s = seg(im)
        concepts = gw.codebook.assign(im, s)
        cat = category_of_superpixels(ds, path, s, label)
        for k, c in zip(concepts, cat):
            share_on.setdefault(int(k), []).append(int(c))
    rows = []
    for c, cname in enumerate(gw.class_names):
        top = int(gw.top_concepts(c, 1)[0])
        cats = np.array(share_on.get(top, [-1]))
        on = float((cats == c + 1).mean())
        rows.append((name, cname, top, "%.3f" % gw.weights[c, top], "%.2f" % on, len(cats),
                     "yes" if on >= 0.8 else "**no**"))
    return rows


# ------------------------------------------------------------------------------------ 4
def stability(clf, ds, items, methods):
    """Per (method, N): top-5 Jaccard over SEEDS runs, agreement with the pooled-sample LIME,
    top-1 superpixel on the object, and the object's share of the top-5.

    ``methods``: ``(name, global weights or None, area exponent, beta, Ns, sampler)``; sampler
    ``'bernoulli'`` (LIME's: the runs are N-prefixes of one draw per seed) or ``'paired_kernel'``
    (GLIME's default: a fresh draw per N and seed, same seeds).
    """
    assert np.array_equal(sample_masks(1000, 9, np.random.default_rng(3))[:250],
                          sample_masks(250, 9, np.random.default_rng(3)))  # N-prefix property

    def top(w):
        return set(np.argsort(-w, kind="stable")[:TOP].tolist())

    def jac(a, b):
        return len(a & b) / len(a | b)

    samplers = {"bernoulli": BernoulliSampler(), "paired_kernel": PairedKernelSampler()}
    kernel = functools.partial(exponential_kernel, kernel_width=0.25)

    def fit(masks, outs, label, beta=0.0, prior=None, sampler="bernoulli"):
        w = samplers[sampler].sample_weight(masks, kernel)
        surrogate = EvidenceRidge(1.0) if beta == "auto" else WeightedRidge(1.0, beta)
        return surrogate.fit(masks, outs[:, label], w, prior=prior).coef[0]

    scores = {}
    n_max = max(n for m in methods for n in m[4])
    nseg = []
    for j, (path, true_label, _) in enumerate(items):
        log("  stability image %d/%d" % (j + 1, len(items)))
        image = clf.view(path)
        ex = LimeExplainer(clf, num_samples=n_max, seed=0)
        segments = ex.segment(image)
        nseg.append(int(segments.max()) + 1)
        on_object = category_of_superpixels(ds, path, segments, true_label) > 0
        runs = [ex.sample(image, segments, n_max, 50, s) for s in range(SEEDS)]
        label = np.array([int(runs[0][1][0].argmax())])
        ref = top(fit(np.concatenate([m for m, _ in runs]), np.concatenate([o for _, o in runs]),
                      label))
        paired = LimeExplainer(clf, sampler="paired_kernel", num_samples=n_max)
        paired_runs = {}
        for name, gw, gamma, beta, nlist, sampler in methods:
            prior = None if gw is None else nl.glime_prior(gw, None, image, area_exponent=gamma)(
                segments, label)
            for n in nlist:
                if sampler == "bernoulli":
                    sruns = [(m[:n], o[:n]) for m, o in runs]
                else:
                    if n not in paired_runs:
                        paired_runs[n] = [paired.sample(image, segments, n, 50, s)
                                          for s in range(SEEDS)]
                    sruns = paired_runs[n]
                ws = [fit(m, o, label, beta, prior, sampler) for m, o in sruns]
                tops = [top(w) for w in ws]
                r = scores.setdefault((name, n), {"stab": [], "agree": [], "top1": [], "obj": []})
                r["stab"].append(np.mean([jac(a, b) for a, b in itertools.combinations(tops, 2)]))
                r["agree"].append(np.mean([jac(t, ref) for t in tops]))
                r["top1"].append(np.mean([on_object[int(np.argmax(w))] for w in ws]))
                n_obj = max(1, min(TOP, int(on_object.sum())))
                r["obj"].append(np.mean([on_object[list(t)].sum() / n_obj for t in tops]))
    return {k: {m: float(np.mean(v)) for m, v in r.items()} for k, r in scores.items()}, nseg


# ------------------------------------------------------------------------------------ main
def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer images (a smoke run)")
    ap.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(),
                                                      "paddlex_interpret_bench_normlime"))
    ap.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md")
    args = ap.parse_args()
    paddle.set_device("cpu")
    t_start = time.perf_counter()
    build_m, agg_m, stab_per_class, agg_n = (60, 9, 1, 100) if args.quick else (120, 60, 12, 250)

    log("dataset + training ...")
    ds = make_shapes_dataset(os.path.join(args.workdir, "shapes"), **SHAPES_KWARGS)
    trained = train_classifier(ds, os.path.join(args.workdir, "model"), **TRAIN_SETTINGS)
    model = trained.model
    clf = PaddleXClassifier(model)
    train_items, val_items = ds.train_items(), ds.val_items()

    log("descriptors ...")
    desc_table, n_fit, n_eval = descriptor_table(ds, clf, model, stratified(train_items, 10),
                                                 stratified(val_items, 10))

    log("codebook and fast weights ...")
    build_items = stratified(train_items, build_m // 3)
    paths = [p for p, _, _ in build_items]
    labels = [l for _, l, _ in build_items]
    views = [clf.view(p) for p in paths]
    floor = forward_floor(clf, views)
    t0 = time.perf_counter()
    codebook = ConceptCodebook().fit(paths, n_concepts=N_CONCEPTS, seed=0, load=clf.view)
    t_cb = time.perf_counter() - t0
    t0 = time.perf_counter()
    fast = nl.build_global_weights_fast(clf, paths, codebook, labels=labels, load=clf.view)
    t_fast = time.perf_counter() - t0
    occ = nl.concept_occurrences(paths, codebook, labels=labels, load=clf.view)
    t0 = time.perf_counter()
    nl.build_global_weights_fast(clf, paths, codebook, labels=labels, load=clf.view,
                                 occurrences=occ)
    t_cached = time.perf_counter() - t0
    t0 = time.perf_counter()
    fast_grid = nl.build_global_weights_fast(clf, paths, codebook, labels=labels, load=clf.view,
                                             grid=10)
    t_grid = time.perf_counter() - t0

    log("aggregate weights ...")
    agg_items = stratified(train_items, agg_m // 3)
    t0 = time.perf_counter()
    agg = nl.build_global_weights_aggregate(clf, [p for p, _, _ in agg_items], codebook,
                                            variant="avg", num_samples=agg_n, seed=0,
                                            labels=[l for _, l, _ in agg_items], load=clf.view)
    t_agg = time.perf_counter() - t0
    t0 = time.perf_counter()
    agg_nl = nl.build_global_weights_aggregate(clf, [p for p, _, _ in agg_items], codebook,
                                               variant="normlime", num_samples=agg_n, seed=0,
                                               labels=[l for _, l, _ in agg_items],
                                               load=clf.view)
    t_agg_nl = time.perf_counter() - t0

    floor = min(floor, forward_floor(clf, views))
    m = len(paths)
    build_rows = [
        ("codebook fit (%d concepts; quickshift + descriptors + KMeans)" % N_CONCEPTS, m,
         t_cb, t_cb / m, "0 (no model)", "-"),
        ("`fast`, superpixel occurrences (segments every image)", m, t_fast, t_fast / m,
         "%.4f" % floor, "%.1f" % (t_fast / m / floor)),
        ("`fast`, occurrences cached (each later checkpoint)", m, t_cached, t_cached / m,
         "%.4f" % floor, "%.1f" % (t_cached / m / floor)),
        ("`fast`, PaddleX 1.3 10x10 grid", m, t_grid, t_grid / m, "%.4f" % floor,
         "%.1f" % (t_grid / m / floor)),
        ("`aggregate` avg, LIME N=%d per image" % agg_n, len(agg_items), t_agg,
         t_agg / len(agg_items), "%.3f" % ((agg_n + 1) * floor),
         "%.2f" % (t_agg / len(agg_items) / ((agg_n + 1) * floor))),
        ("`aggregate` normlime, LIME N=%d per image" % agg_n, len(agg_items), t_agg_nl,
         t_agg_nl / len(agg_items), "%.3f" % ((agg_n + 1) * floor),
         "%.2f" % (t_agg_nl / len(agg_items) / ((agg_n + 1) * floor))),
    ]
    build_table = markdown_table(
        ["step", "images", "total (s)", "s / image", "forward floor (s / image)", "ratio"],
        [(r[0], r[1], "%.2f" % r[2], "%.4f" % r[3], r[4], r[5]) for r in build_rows])

    log("ranking ...")
    eval_items = stratified(val_items, 10)
    rank = []
    for name, gw in (("fast", fast), ("fast, grid", fast_grid), ("aggregate avg", agg),
                     ("aggregate normlime", agg_nl)):
        rank += ranking_rows(name, gw, ds, eval_items, clf.view)
    rank_table = markdown_table(["weights", "class", "top concept", "weight",
                                 "its superpixels on this class's objects", "superpixels",
                                 "deciding?"], rank)

    log("GLIME stability ...")
    stab_items = stratified(val_items, stab_per_class)
    B, P = "bernoulli", "paired_kernel"
    methods = [("LIME", None, 0.0, 0.0, (250, 500, 1000), B),
               ("GLIME default: paired sampler, aggregate-avg prior, area^0.5, beta=10", agg, 0.5,
                10.0, (250, 500), P),
               ("GLIME, paired sampler only (beta=0)", None, 0.0, 0.0, (250, 500), P),
               ("GLIME, paired sampler, aggregate-avg prior, area^0.5, beta=100", agg, 0.5,
                100.0, (250, 500), P),
               ("GLIME, paired sampler, aggregate-avg prior, area^0.5, beta='auto' (evidence)",
                agg, 0.5, "auto", (250, 500), P),
               ("GLIME, LIME sampling, aggregate-avg prior, area^0.5, beta=10", agg, 0.5, 10.0,
                (250, 500), B),
               ("GLIME, LIME sampling, fast prior, area^0.5, beta=100", fast, 0.5, 100.0,
                (250, 500), B),
               ("GLIME, LIME sampling, aggregate-avg prior, concepts only, beta=30", agg, 0.0,
                30.0, (250, 500), B),
               ("GLIME, LIME sampling, aggregate-avg prior, area^0.5, beta=30", agg, 0.5, 30.0,
                (250, 500), B),
               ("GLIME, LIME sampling, aggregate-avg prior, area^0.5, beta=100 (the default "
                "before)", agg, 0.5, 100.0, (250, 500), B),
               ("GLIME, LIME sampling, aggregate-avg prior, area^1, beta=100", agg, 1.0, 100.0,
                (250, 500), B)]
    scores, nseg = stability(clf, ds, stab_items, methods)
    stab_rows = []
    for name, _, _, _, nlist, _ in methods:
        for n in nlist:
            r = scores[(name, n)]
            stab_rows.append((name, n, "**%.3f**" % r["stab"], "%.3f" % r["agree"],
                              "%.3f" % r["top1"], "%.3f" % r["obj"]))
    stab_table = markdown_table(["method", "N", "stability (top-5 Jaccard, 5 seeds)",
                                 "agreement with converged LIME", "top-1 on the object",
                                 "object's share of the top-5"], stab_rows)
    lime1000 = scores[("LIME", 1000)]["stab"]
    best = max((scores[(m[0], 250)]["stab"], m[0]) for m in methods[1:])
    default, sampler_only, strong = methods[1][0], methods[2][0], methods[3][0]
    total = time.perf_counter() - t_start

    body = """Data: coloured shapes (`pxi_testing.synthetic`, 3 colour classes, 64 px, %d
train / %d val images); model: PaddleX `MobileNetV3_small` trained here (`pxi_testing/recipes.py`
recipe, %.0f s, val accuracy %.3f). Concepts: %d, descriptor `lab_std_texture`, quickshift
superpixels (PaddleX 1.3 settings). Whole run: %.0f s.

**Concept descriptor.** KMeans (%d concepts) fitted on the superpixels of %d training images,
scored on %d held-out images whose object masks are known. Category of a superpixel: background,
or on the object of class c. "balanced acc." maps each concept to its majority category on the fit
images.

%s

Colour statistics separate every object superpixel from the background and by class; the model's
own first conv layer (PaddleX 1.3's recipe: feature at the centroid + mean feature,
L2-normalised) does not, depends on the checkpoint (it would have to be frozen from one) and costs
a forward pass. Between the colour variants the NMI differences are within the run-to-run spread
of KMeans on this colour-decided data; the default keeps the Lab spread and a gradient-orientation
histogram (a fraction of a millisecond per image) for datasets where colour alone does not tell
concepts apart, a case these data cannot measure.

**Build time per dataset image** (forward floor: the classifier on images it already sees, batch
50, %.2f ms per image; `aggregate` needs N+1 forward passes per image):

%s

Segmentation (quickshift) dominates the first `fast` build on small images; the occurrences do not
depend on the model, so at later checkpoints `fast` costs the forward passes plus preprocessing.

**Does each mode rank the deciding concept first?** (%d val images; "deciding" = at least 80%% of
the top concept's superpixels lie on objects of that class)

%s

`fast` uses co-occurrence with the predicted label, so the object's colour always wins here.
`aggregate` follows what LIME finds: this net's green probability saturates (it learnt green partly
as "neither red nor blue"), its LIME weights on green images are tiny and of both signs, and
`normlime`'s w^2/||w||_1 ignores the sign, so a background concept with large negative weights can
come first; `avg` keeps the sign.

**GLIME stability** on %d val images (%s superpixels). Stability: mean pairwise Jaccard of the
top-%d superpixels over %d seeds (segmentation fixed, sampling seeded 0-4; the LIME-sampling runs
at N=250 and N=500 are exactly `LimeExplainer(num_samples=N, seed=s)`, the paired-sampler runs
exactly `glime(..., num_samples=N, seed=s)`'s masks). Agreement: mean Jaccard of each run's top-%d
with the top-%d of LIME fitted on all %d x 1000 samples pooled. Top-1 on the object / object's
share of the top-5: against the known object mask (superpixels more than half on it). GLIME =
`WeightedRidge(alpha=1, beta)` with `glime_prior(weights, area_exponent=g)`: each superpixel's
concept weight times (relative area)^g, L1-normalised per class; the `aggregate` avg weights are
those of the build table (%d images, N=%d). "paired sampler": `PairedKernelSampler` (masks in
complementary pairs drawn from LIME's kernel-weighted distribution, importance-weighted to LIME's
estimand; `glime()`'s default sampler), "LIME sampling": LIME's Bernoulli masks and kernel weights.
`glime()`'s defaults (paired sampler, beta=10) were chosen on Fashion-MNIST test images, not on
these data (BENCHMARKS.md, "GLIME settings, chosen on other images"); the area exponent 0.5 was
chosen on these data earlier (rows "concepts only" / "area^1").

%s

Target "GLIME at N=250 at least as stable as LIME at N=1000" (%.3f): the default (`glime()`:
paired sampler, aggregate-avg prior, area^0.5, beta=10) reaches %.3f at N=250, **%s**; with
beta=100 (`glime(beta=100)`, paired sampler) %.3f, **%s**; the most stable setting is %s (%.3f).
The default beta=10 was chosen on Fashion-MNIST, where a beta of 30-100 made deletion AUC worse
(section "GLIME settings, chosen on other images"); here the prior is reliable (the object's colour
decides the class) and a strong prior pays. The prior's strength is data-dependent: `beta` is the
knob. What the sampler and the prior bring and cost:

- The paired sampler estimates LIME's own surrogate with less sampling noise, here a little
  (%.3f vs LIME's %.3f at N=250, %.3f vs %.3f at N=500; likely, not measured here: with few
  superpixels and a saturating response, more of the noise is odd-order, which pairs do not
  remove); it does not move the explanation toward anything, so its agreement with the converged
  LIME stays about LIME's.
- PaddleX 1.3's `fast` weights (a softmax of 10x the logistic coefficients) are nearly one-hot per
  class: as a prior they lift the deciding concept (top-1 on the object) but say nothing about the
  other superpixels, so the rest of the top-5 stays as noisy as in LIME.
- The `aggregate` avg weights (mean LIME weight of each concept per class, in LIME's units) rank
  every concept. Concept weights alone leave ties between superpixels of the same concept (most
  of the background); the area factor breaks them, at the price of more large background
  superpixels in the top-5. Exponent 1 pushes that far enough to cost the object the top-1 now
  and then; 0.5 keeps it on top.
- Agreement with the converged LIME falls: superpixels LIME has little evidence about are ordered
  by the prior instead. On this data the prior is right more often than LIME (the object is what
  decides the class), but on a model that really uses context the prior would hide it; `beta`
  trades the two, and `glime(beta=0, sampler='bernoulli')` is plain LIME, bit for bit.
""" % (len(train_items), len(val_items), trained.train_seconds, trained.accuracy, N_CONCEPTS,
       total, N_CONCEPTS, n_fit, n_eval, desc_table, 1000 * floor, build_table, len(eval_items),
       rank_table, len(stab_items), "%d-%d" % (min(nseg), max(nseg)), TOP, SEEDS, TOP, TOP,
       SEEDS, len(agg_items), agg_n, stab_table, lime1000, scores[(default, 250)]["stab"],
       "met" if scores[(default, 250)]["stab"] >= lime1000 else "not met",
       scores[(strong, 250)]["stab"],
       "met" if scores[(strong, 250)]["stab"] >= lime1000 else "not met", best[1], best[0],
       scores[(sampler_only, 250)]["stab"], scores[("LIME", 250)]["stab"],
       scores[(sampler_only, 500)]["stab"], scores[("LIME", 500)]["stab"])
    print(body)
    command = ".venv/bin/python -m bench.bench_normlime" + (" --quick" if args.quick else "")
    if not args.no_write:
        write_section(SECTION, body, command)
        log("BENCHMARKS.md updated (%s)" % SECTION)


if __name__ == "__main__":
    main()
