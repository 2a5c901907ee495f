"""What a user gets without tuning, on three models: run by ``bench/bench_defaults.py``.

* :func:`defaults_vs_peers`: deletion / insertion AUC, top-k stability and time of ours with
  ``fill='auto'`` (the default) and with every fixed fill, against InterpretDL 0.8's LIME and
  lime 0.2, at equal N, same images, superpixels and label, several seeds.
* :func:`pointing_game`: on the shapes model, how often LIME's top superpixel lies on the object,
  per class, with each fill.
* :func:`time_to_stable`: on the real model, the samples (and seconds) each method needs before
  its top-k superpixels are stable across seeds, and its agreement with a converged explanation.

The metrics follow InterpretDL's ``DeletionInsertion`` for LIME results: superpixels removed (or
inserted) one at a time in the order of the explanation's signed weights, removed pixels set to
grey (127), the curve's area over the steps (:mod:`paddlex_interpret.core.metrics` with
``x='segments'``), the same classifier for every tool. The peers run in their own venv
(``bench/setup_peers.sh``) on the same network exported with ``paddle.jit.save``; their
explanations are computed with that network in Paddle Inference (``*_inference`` tools of
``bench/peers_runner.py``: the same weights as with their default dygraph model, to 1e-7, in a
fraction of the time) and their default speed is timed separately.
"""
import os
import time

import numpy as np

from paddlex_interpret.core import metrics
from paddlex_interpret.core.fill import FILLS
from paddlex_interpret.core.lime import LimeExplainer
from pxi_testing.reliance import object_reliance, top_on_object

GREY = (127, 127, 127)
FIXED_FILLS = FILLS
PEERS = (("interpretdl_lime_inference", "InterpretDL 0.8 LIME"),
         ("lime_inference", "lime 0.2.0.1"))


def auc_pair(clf, image, segments, weights, label):
    """``(deletion AUC, insertion AUC)`` by InterpretDL's definition (see the module doc)."""
    kw = dict(fill=GREY, batch_size=50, x="segments", num_steps=None)
    return (metrics.deletion_auc(clf, image, segments, weights, label, **kw),
            metrics.insertion_auc(clf, image, segments, weights, label, **kw))


def ours(clf, image, segments, label, fill, n, seed, **kwargs):
    """``(weights, seconds, settings)`` of our LIME."""
    t = time.perf_counter()
    e = LimeExplainer(clf, num_samples=n, batch_size=50, seed=seed, fill=fill, **kwargs).explain(
        image, labels=[label], segments=segments)
    return e.weights[0], time.perf_counter() - t, e.settings


def peer_runs(run_peers, prefix, workdir, items, ns, seeds, tools):
    """``{(tool, image index, n, seed): (weights, seconds)}`` from the peers' venv."""
    tasks = []
    for i, (image_path, seg_path, label) in enumerate(items):
        for n in ns:
            for s in seeds:
                for tool in tools:
                    tasks.append({"tool": tool, "image": image_path, "segments": seg_path,
                                  "label": int(label), "num_samples": int(n), "batch_size": 50,
                                  "seed": int(s), "prior": None, "reg_force": 1.0, "index": i})
    out = run_peers({"model": prefix, "tasks": tasks}, workdir)
    return {(r["tool"], r["index"], r["num_samples"], r["seed"]): (np.asarray(r["weights"]),
                                                                   r["wall"])
            for r in out["results"]}, out["versions"]


def stability(runs, k):
    """Mean pairwise top-``k`` Jaccard (positive weights, as LIME shows them) of ``runs``."""
    return metrics.stability(np.asarray(runs), k=k, positive_only=True)["jaccard"]


def case_inputs(case, workdir):
    """Save each image and its superpixels for the peers; ``[(image npy, segments npy, label)]``
    and the superpixels."""
    items, segs = [], []
    for i, (name, view, label, _) in enumerate(case["images"]):
        seg = case["segmenter"](view)
        p_img = os.path.join(workdir, "%s_%d.npy" % (case["key"], i))
        p_seg = os.path.join(workdir, "%s_%d_seg.npy" % (case["key"], i))
        np.save(p_img, view)
        np.save(p_seg, seg)
        items.append((p_img, p_seg, label))
        segs.append(seg)
    return items, segs


def defaults_vs_peers(case, run_peers, workdir, ns, seeds, k, peers=True):
    """The rows of one model's table and the numbers its verdicts need."""
    clf = case["classifier"]
    items, segs = case_inputs(case, workdir)
    scores = {}   # (tool, n) -> list of (deletion, insertion) over images x seeds
    stab = {}     # (tool, n) -> list of per-image stability
    secs = {}     # (tool, n) -> list of seconds
    chosen = {}   # (image index, n, seed) -> the fill auto chose
    runs = {}
    stages = {}   # stage of the rule -> count
    checked = []  # auto's run recomputed with the fill it chose: the same bits
    for i, (name, view, label, _) in enumerate(case["images"]):
        for n in ns:
            for fill in ("auto",) + FIXED_FILLS:
                ws = []
                for s in seeds:
                    picked = chosen.get((i, n, s))
                    if picked == fill and checked:
                        w, dt = runs[("ours_auto", i, n, s)]  # same seed, same fill: same bits
                    else:
                        w, dt, st = ours(clf, view, segs[i], label, fill, n, s)
                        if picked == fill:
                            checked.append(bool(np.array_equal(w, runs[("ours_auto", i, n, s)][0])))
                    ws.append(w)
                    runs[("ours_" + fill, i, n, s)] = (w, dt)
                    scores.setdefault(("ours_" + fill, n), []).append(
                        auc_pair(clf, view, segs[i], w, label))
                    secs.setdefault(("ours_" + fill, n), []).append(dt)
                    if fill == "auto":
                        chosen[(i, n, s)] = st.get("fill_chosen")
                        stages[st.get("fill_stage")] = stages.get(st.get("fill_stage"), 0) + 1
                stab.setdefault(("ours_" + fill, n), []).append(stability(ws, k))
        print("  %s: %s done" % (case["key"], name), flush=True)
    if checked and not all(checked):
        raise SystemExit("fill='auto' differs from the fill it chose, same seed: %s" % checked)
    versions = None
    if peers:
        got, versions = peer_runs(run_peers, case["prefix"], workdir, items, ns, seeds,
                                  [t for t, _ in PEERS])
        for (tool, i, n, s), (w, dt) in sorted(got.items()):
            name, view, label, _ = case["images"][i]
            runs[(tool, i, n, s)] = (w, dt)
            scores.setdefault((tool, n), []).append(auc_pair(clf, view, segs[i], w, label))
            secs.setdefault((tool, n), []).append(dt)
        for tool, _ in PEERS:
            for n in ns:
                for i in range(len(items)):
                    stab.setdefault((tool, n), []).append(
                        stability([runs[(tool, i, n, s)][0] for s in seeds], k))
    return {"scores": scores, "stability": stab, "seconds": secs, "chosen": chosen,
            "stages": stages, "runs": runs, "segments": segs, "versions": versions}


def mean_se(values):
    v = np.asarray(values, dtype=np.float64)
    return float(v.mean()), float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else 0.0


def table_rows(result, ns, names):
    rows = []
    for tool, label in names:
        for n in ns:
            if (tool, n) not in result["scores"]:
                continue
            d, ins = np.asarray(result["scores"][(tool, n)]).T
            rows.append([label, n, "%.3f ± %.3f" % mean_se(d), "%.3f ± %.3f" % mean_se(ins),
                         "%.3f" % np.mean(result["stability"][(tool, n)]),
                         "%.2f" % np.mean(result["seconds"][(tool, n)])])
    return rows


def verdicts(result, ns, tol=0.01):
    """Lines: the defaults against every peer, and ``auto`` against the best fixed fill."""
    out = []
    for n in ns:
        d_auto, i_auto = np.asarray(result["scores"][("ours_auto", n)]).mean(axis=0)
        for tool, label in PEERS:
            if (tool, n) not in result["scores"]:
                continue
            d, i = np.asarray(result["scores"][(tool, n)]).mean(axis=0)
            out.append("N=%d, defaults vs %s: deletion %.3f vs %.3f (%s), insertion %.3f vs "
                       "%.3f (%s)" % (n, label, d_auto, d, "met" if d_auto <= d else "**not met**",
                                      i_auto, i, "met" if i_auto >= i else "**not met**"))
        fixed = {f: np.asarray(result["scores"][("ours_" + f, n)]).mean(axis=0)
                 for f in FIXED_FILLS}
        best_d = min(fixed, key=lambda f: fixed[f][0])
        best_i = max(fixed, key=lambda f: fixed[f][1])
        out.append("N=%d, auto vs the best fixed fill: deletion %.3f vs %.3f (%s: %s), insertion "
                   "%.3f vs %.3f (%s: %s)" % (
                       n, d_auto, fixed[best_d][0], best_d,
                       "within %.2f" % tol if d_auto <= fixed[best_d][0] + tol else "**not**",
                       i_auto, fixed[best_i][1], best_i,
                       "within %.2f" % tol if i_auto >= fixed[best_i][1] - tol else "**not**"))
    return out


def pointing_game(case, n, seed=0, fills=("auto",) + FIXED_FILLS):
    """``{fill: {class name: (hits, images)}}``: LIME's top superpixel on the object."""
    clf = case["classifier"]
    out = {f: {} for f in fills}
    for name, view, label, mask in case.get("pointing_images", case["images"]):
        seg = case["segmenter"](view)
        cls = case["class_names"][label]
        for f in fills:
            w, _, _ = ours(clf, view, seg, label, f, n, seed)
            hit = int(top_on_object(w, seg, mask))
            h, m = out[f].get(cls, (0, 0))
            out[f][cls] = (h + hit, m + 1)
    return out


def case_reliance(case):
    """``{class name: mean drop of p(label) when the object alone is greyed out}``: the
    classes whose decision provably rests on their object."""
    drops = object_reliance(case["classifier"], [
        (view, label, mask) for _, view, label, mask in case.get("pointing_images",
                                                                 case["images"])])
    return {case["class_names"][c]: d for c, d in drops.items()}


def time_to_stable(case, run_peers, workdir, grid, seeds, k, reference_n, threshold=0.9,
                   cap=None, known=None, peers_grid=None, paired_max=None):
    """Per method: for each N of ``grid``, the seed-to-seed top-``k`` Jaccard and the top-``k``
    Jaccard with ours at ``reference_n`` (seed 0), and the smallest N reaching ``threshold``
    across seeds (with its seconds). ``known``: runs of :func:`defaults_vs_peers` to reuse
    (ours and the peers'); ``paired_max``: the largest N of the paired sampler."""
    clf = case["classifier"]
    items, segs = case_inputs(case, workdir)
    known = known or {}
    methods = {"lime": {}, "paired": {"sampler": "paired_kernel"}}
    table = {}
    refs = []
    for i, (name, view, label, _) in enumerate(case["images"]):
        ref, _, _ = ours(clf, view, segs[i], label, "auto", reference_n, 0)
        refs.append(ref)
        for m, kw in methods.items():
            for n in grid:
                if m == "paired" and paired_max and n > paired_max:
                    continue
                ws, ts = [], []
                for s in seeds:
                    key = ("ours_auto", i, n, s) if m == "lime" else None
                    if key in known:
                        w, dt = known[key]
                    else:
                        w, dt, _ = ours(clf, view, segs[i], label, "auto", n, s, **kw)
                    ws.append(w)
                    if dt is not None:
                        ts.append(dt)
                entry = table.setdefault((m, n), {"stab": [], "agree": [], "secs": []})
                entry["stab"].append(stability(ws, k))
                entry["agree"].append(np.mean([metrics.topk_jaccard(w, ref, k, True)
                                               for w in ws]))
                entry["secs"].extend(ts)
        print("  stable: %s done" % name, flush=True)
    adaptive = []
    for i, (name, view, label, _) in enumerate(case["images"]):
        ws, used, ts = [], [], []
        for s in seeds:
            t = time.perf_counter()
            e = LimeExplainer(clf, num_samples=cap or max(grid), batch_size=50, seed=s,
                              fill="auto", adaptive=dict(top_k=k)).explain(
                view, labels=[label], segments=segs[i])
            ts.append(time.perf_counter() - t)
            ws.append(e.weights[0])
            used.append(e.settings["num_samples_used"])
        adaptive.append({"stab": stability(ws, k), "used": float(np.mean(used)),
                         "secs": float(np.mean(ts)),
                         "agree": float(np.mean([metrics.topk_jaccard(w, refs[i], k, True)
                                                 for w in ws]))})
    peer = {}
    if run_peers is not None and peers_grid:
        tool = "interpretdl_lime_inference"
        got = {key: v for key, v in known.items() if key[0] == tool}
        if not all((tool, i, n, s) in got for i in range(len(items)) for n in peers_grid
                   for s in seeds):
            got, _ = peer_runs(run_peers, case["prefix"], workdir, items, peers_grid, seeds,
                               [tool])
        for n in peers_grid:
            st = [stability([got[("interpretdl_lime_inference", i, n, s)][0] for s in seeds], k)
                  for i in range(len(items))]
            peer[n] = float(np.mean(st))
    return {"table": table, "adaptive": adaptive, "peer": peer}


# ----------------------------------------------------------------------------- the report
def _counts(values):
    counts = {}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    return ", ".join("%s %d" % kv for kv in sorted(counts.items(), key=lambda kv: -kv[1]))


def report(cases, run_peers, workdir, args, markdown_table):
    """``{section title: body}`` of the defaults benchmark over ``cases``."""
    names = ([("ours_auto", "**ours, defaults (fill='auto')**")]
             + [("ours_" + f, "ours, fill='%s'" % f) for f in FIXED_FILLS] + list(PEERS))
    header = ["tool", "N", "deletion AUC (lower better)", "insertion AUC (higher better)",
              "top-%d Jaccard across seeds" % args.k, "s / explanation"]
    main, fills, stable = [], [], []
    versions = None
    for case in cases:
        print("defaults: %s" % case["key"], flush=True)
        res = defaults_vs_peers(case, run_peers, workdir, args.defaults_ns, args.seeds, args.k,
                                peers=not args.no_peers)
        versions = versions or res["versions"]
        main.append("**%s** (%s)\n\n%s\n\n%s" % (
            case["title"], case["about"], markdown_table(header, table_rows(res, args.defaults_ns,
                                                                             names)),
            "\n".join("- " + v for v in verdicts(res, args.defaults_ns))))
        fills.append("- %s: `auto` chose %s (over %d explanations); the rule's stage: %s." % (
            case["title"], _counts(res["chosen"].values()), len(res["chosen"]),
            _counts([{"blank": "a blank", "image": "per image"}.get(k, k)
                     for k, c in res["stages"].items() for _ in range(c)])))
        if case.get("masks"):
            pg = pointing_game(case, args.defaults_ns[0])
            reliance = case_reliance(case)
            classes = list(pg["auto"])
            fills.append(markdown_table(
                ["fill"] + ["%s: top superpixel on the object" % c for c in classes],
                [[f] + ["%d / %d" % pg[f][c] for c in classes] for f in pg]))
            fills.append("Drop of the class's probability when the object alone is hidden "
                         "(grey), the model's reliance on it: " + ", ".join(
                             "%s %.2f" % kv for kv in reliance.items()) + ".")
        if case.get("stable"):
            st = time_to_stable(case, None if args.no_peers else run_peers, workdir,
                                args.stable_grid, args.seeds, args.k, args.reference_n,
                                known=res["runs"], peers_grid=args.defaults_ns,
                                paired_max=args.stable_paired_max)
            stable.append(stable_table(case, st, args, markdown_table))
    bodies = {
        "Explanations with the defaults vs the peers": "\n\n".join(main) + "\n\n" + (
            "Same for every tool: the network, the image (the model's view), the superpixels "
            "(given to every tool), the label (predicted), N, seeds %s. Ours: `LimeExplainer`"
            " with the fill named (`auto` is the default of `paddlex.interpret.lime/normlime`,"
            " `glime`, the hook, the callback and the CLI); the peers as documented in "
            "bench/peers_runner.py (hidden superpixels black, their own surrogate). Deletion /"
            " insertion: InterpretDL's definition (signed-weight order, removed pixels grey "
            "127, one step per superpixel); mean ± standard error over images x seeds. "
            "Stability: mean pairwise top-%d Jaccard over the seeds, per image, averaged. "
            "The peers' seconds are with the network in Paddle Inference (their loop, our "
            "engine's speed)." % (args.seeds, args.k)
            + ("\n\nPeers: %s." % ", ".join("%s %s" % kv for kv in versions.items())
               if versions else "")),
        "The fill: chosen by measurement": (
            "`fill='auto'` (paddlex_interpret.core.fill). The score of a candidate is the "
            "normalised entropy of the model's prediction on the fully hidden image (how far "
            "the model is from being sure of a class when everything is hidden). Candidates: "
            "the blanks black and grey (and the dataset's mean colour where a dataset is "
            "known), and the image-derived fills: the image's median colour, each "
            "superpixel's mean, a blur. The rule: the blank with the highest score if it is "
            "at least 0.1 (the model is not sure of a class on it: a blank's score is the "
            "same for every image, so this is a choice per model); else, per image, the "
            "candidate with the highest score. One batch of 5-6 forward passes per image.\n\n"
            "The threshold and the blank-first order were set on other images than these: "
            "see \"The fill rule, set on other images\" (`python -m bench.bench_fill_rule`).\n\n"
            + "\n\n".join(fills)),
    }
    if stable:
        bodies["Time to a stable explanation"] = "\n\n".join(stable)
    return bodies


def stable_table(case, st, args, markdown_table):
    rows = []
    for m, label in (("lime", "ours LIME (defaults)"),
                     ("paired", "ours, paired sampler (GLIME's, no prior)")):
        reached = None
        for n in args.stable_grid:
            if (m, n) not in st["table"]:
                continue
            e = st["table"][(m, n)]
            stab = float(np.mean(e["stab"]))
            if reached is None and stab >= 0.9:
                reached = n
            rows.append([label, n, "%.3f" % stab, "%.3f" % float(np.mean(e["agree"])),
                         "%.2f" % float(np.mean(e["secs"])) if e["secs"] else "-"])
    for n, stab in sorted(st["peer"].items()):
        rows.append(["InterpretDL 0.8 LIME", n, "%.3f" % stab, "-", "-"])
    a = st["adaptive"]
    rows.append(["ours, adaptive=True (cap %d)" % max(args.stable_grid),
                 "%.0f (mean used)" % np.mean([x["used"] for x in a]),
                 "%.3f" % np.mean([x["stab"] for x in a]),
                 "%.3f" % np.mean([x["agree"] for x in a]),
                 "%.2f" % np.mean([x["secs"] for x in a])])
    first = {}
    for m in ("lime", "paired"):
        for n in args.stable_grid:
            if (m, n) in st["table"] and float(np.mean(st["table"][(m, n)]["stab"])) >= 0.9:
                first[m] = n
                break
    agree = {}
    for m in ("lime", "paired"):
        for n in args.stable_grid:
            if (m, n) in st["table"] and float(np.mean(st["table"][(m, n)]["agree"])) >= 0.9:
                agree[m] = "%d (%.1f s)" % (n, float(np.mean(st["table"][(m, n)]["secs"])))
                break
    peer_first = next((n for n, s in sorted(st["peer"].items()) if s >= 0.9), None)
    text = ("**%s**: top-%d Jaccard across seeds %s and with ours at N=%d (seed 0, the "
            "converged explanation), per N. The first N whose explanations agree with the "
            "converged one at Jaccard >= 0.9: ours LIME %s, paired sampler %s. The first N at "
            "which the seeds agree with each other at Jaccard >= 0.9: ours LIME %s, paired "
            "sampler %s, InterpretDL %s (none: not within the N it was run at)."
            % (case["title"], args.k, args.seeds, args.reference_n, agree.get("lime", "none"),
               agree.get("paired", "none"), first.get("lime", "none"),
               first.get("paired", "none"), peer_first or "none"))
    return text + "\n\n" + markdown_table(
        ["method", "N", "top-%d Jaccard across seeds" % args.k,
         "top-%d Jaccard with the converged" % args.k, "s / explanation"], rows)
