"""Time to a stable explanation: the defaults against PaddleX 1.3's LIME and InterpretDL 0.8's, on
a real pretrained model (:mod:`bench.real_model`: EfficientNet-Lite0 by default,
``PXI_BENCH_MODEL=squeezenet1_1`` for SqueezeNet 1.1, each with its own caches and section) and the
photos of :mod:`bench.stable_photos`.

Built on the model outputs :mod:`bench.research_stable` caches (run it first for the
segmentations ``coarse`` and ``qs13``); this script adds, each into its own cache:

* ``--peers``: InterpretDL 0.8's LIME (bench/peers_runner.py, its loop with the network in
  Paddle Inference) on PaddleX 1.3's quickshift superpixels, 3 seeds at each N of ``--peer-grid``;
* ``--faith``: deletion / insertion AUC at equal calls (x = fraction of pixels; removed pixels
  grey 127, and blurred: a removal that is not the explainer's fill) of the seed-0 explanations
  of each method;
* ``--sanity``: the defaults on a randomised copy of the network (every weight re-drawn):
  Spearman of its weights with the trained network's;
* ``--timing``: seconds per explanation of each method, measured in one run;

and ``--report`` writes the section. ``num_samples='auto'`` is replayed on the cached outputs: the
explainer's rounds are prefixes of one stream of masks, so the replay fits what the explainer
fits (the same masks, outputs, weights and stop; ``--check-replay`` runs the explainer itself on
one photo and compares the bits).

    .venv/bin/python -m bench.research_stable --segs slic25 coarse --reference-n 6000 --faith \
        --methods bernoulli stratified stratified+size
    .venv/bin/python -m bench.research_stable --segs qs13 --reference-n 4000 --faith \
        --methods bernoulli stratified
    .venv/bin/python -m bench.bench_stable --faith --sanity --sanity-photos 3
    .venv/bin/python -m bench.bench_stable --timing --report
"""
import argparse
import os
import tempfile
import time

os.environ.setdefault("OMP_NUM_THREADS", str(os.cpu_count() or 1))

import numpy as np  # noqa: E402

import paddlex_interpret  # noqa: E402,F401
from bench import research_stable as RS  # noqa: E402
from bench.stable_common import (METHODS, OUT, SEEDS, cached, load, replay,  # noqa: E402
                                  save)


# ----------------------------------------------------------------------------- the measurements
def run_peers_part(photos, grid, workdir):
    """InterpretDL 0.8's LIME on PaddleX 1.3's quickshift superpixels."""
    from bench import real_model as R
    from bench.bench_speed import run_peers
    from paddlex_interpret.core.segmentation import make_segmenter
    from paddlex_interpret.runtime.export import export_layer

    data = load(OUT)
    peers = data.setdefault("peers", {})
    clf, net = R.classifier()
    prefix = os.path.join(workdir, "model")
    export_layer(net, (3, R.input_size(), R.input_size()), prefix)
    views = __import__("bench.stable_photos", fromlist=["views"]).views(photos)
    tasks = []
    for i, name in enumerate(photos):
        seg = make_segmenter("quickshift", seed=0)(views[name])
        label = int(np.argmax(clf.predict(views[name][None])[0]))
        np.save(os.path.join(workdir, "%s.npy" % name), views[name])
        np.save(os.path.join(workdir, "%s_seg.npy" % name), seg)
        for n in grid:
            for s in SEEDS:
                if "%s|%d|%d" % (name, n, s) in peers:
                    continue
                tasks.append({"tool": "interpretdl_lime_inference",
                              "image": os.path.join(workdir, "%s.npy" % name),
                              "segments": os.path.join(workdir, "%s_seg.npy" % name),
                              "label": label, "num_samples": int(n), "batch_size": 50,
                              "seed": int(s), "prior": None, "reg_force": 1.0, "index": i})
    if tasks:
        out = run_peers({"model": prefix, "tasks": tasks}, workdir)
        for r in out["results"]:
            peers["%s|%d|%d" % (photos[r["index"]], r["num_samples"], r["seed"])] = {
                "weights": list(map(float, r["weights"])), "wall": r["wall"]}
        data["peer_versions"] = out["versions"]
    save(data)


def faith_part(photos):
    """Deletion / insertion AUC of the seed-0 explanation of every method (grey and blur)."""
    from bench import real_model as R
    from bench import stable_photos as P
    from paddlex_interpret.core.segmentation import make_segmenter

    data = load(OUT)
    faith = data.setdefault("faith", {})
    clf, _ = R.classifier()
    views = P.views(photos)
    for name in photos:
        segs = {s: make_segmenter("coarse" if s == "coarse" else "quickshift", seed=0)(
            views[name]) for s in ("coarse", "qs13")}
        _, label = cached(name, "coarse", "stratified", 0)
        todo = {m: (seg, sampler, b) for m, (seg, sampler, b) in METHODS.items()}
        todo["interpretdl_1000"] = ("qs13", None, 1000)
        for method, (seg, sampler, budget) in todo.items():
            key = "%s|%s" % (method, name)
            if key in faith:
                continue
            d = int(segs[seg].max()) + 1
            if sampler is None:
                peer = data.get("peers", {}).get("%s|1000|0" % name)
                if peer is None:
                    continue
                w = np.asarray(peer["weights"])
            else:
                w = replay(name, seg, sampler, budget, 0, d)[0]
            faith[key] = RS.faithfulness(clf, _Src(views[name], segs[seg]), w, label)
        print("faith %s done" % name, flush=True)
        save(data)


class _Src:
    def __init__(self, view, segments):
        self.view, self.segments, self.d = view, segments, int(segments.max()) + 1


def sanity_part(photos):
    """The defaults on the trained network and on a copy with every learned weight re-drawn
    (normal, each tensor's own standard deviation; BatchNorm's running statistics kept)."""
    import paddle

    from bench import real_model as R
    from bench import stable_photos as P
    from paddlex_interpret.core.lime import LimeExplainer
    from paddlex_interpret.core.agreement import spearman

    data = load(OUT)
    clf, net = R.classifier()
    rclf, rnet = R.classifier()
    paddle.seed(0)
    for p in rnet.parameters():  # the learned weights; BatchNorm's running statistics stay
        if not p.stop_gradient:
            p.set_value(paddle.normal(0.0, float(p.numpy().std()) or 0.1,
                                      p.shape).astype(p.dtype))
    views = P.views(photos)
    out = {}
    for name in photos:
        a = LimeExplainer(clf, seed=0).explain(views[name])
        label = int(a.labels[0])
        b = LimeExplainer(rclf, seed=0).explain(views[name], labels=[label])
        out[name] = {"spearman": spearman(a.weights[0], b.weights[0]),
                     "calls": [a.settings["num_samples_used"], b.settings["num_samples_used"]],
                     "fill": a.settings.get("fill_chosen")}
        print("sanity", name, out[name], flush=True)
    data["sanity"] = out
    save(data)


def timing_part(photo, workdir):
    """Seconds per explanation, one run: the defaults, PaddleX 1.3's LIME at N=1000,
    InterpretDL's LIME at N=1000 with its default dygraph model and with the network in Paddle
    Inference."""
    from bench import real_model as R
    from bench import stable_photos as P
    from bench.bench_speed import run_peers
    from paddlex_interpret.core.lime import LimeExplainer
    from paddlex_interpret.core.segmentation import make_segmenter
    from paddlex_interpret.runtime.export import export_layer

    data = load(OUT)
    clf, net = R.classifier()
    view = P.views([photo])[photo]
    LimeExplainer(clf, seed=0, num_samples=100).explain(view)  # warm the engine
    t = time.perf_counter()
    e = LimeExplainer(clf, seed=0).explain(view)
    ours = time.perf_counter() - t
    t = time.perf_counter()
    LimeExplainer(clf, seed=0, segmenter="quickshift", sampler="bernoulli",
                  num_samples=1000).explain(view)
    today = time.perf_counter() - t
    prefix = os.path.join(workdir, "model")
    export_layer(net, (3, R.input_size(), R.input_size()), prefix)
    np.save(os.path.join(workdir, "t.npy"), view)
    np.save(os.path.join(workdir, "t_seg.npy"), make_segmenter("quickshift")(view))
    tasks = [{"tool": tool, "image": os.path.join(workdir, "t.npy"),
              "segments": os.path.join(workdir, "t_seg.npy"), "label": int(e.labels[0]),
              "num_samples": 1000, "batch_size": 50, "seed": 0, "prior": None,
              "reg_force": 1.0, "index": 0}
             for tool in ("interpretdl_lime_inference", "interpretdl_lime")]
    out = run_peers({"model": prefix, "tasks": tasks}, workdir)
    walls = {r["tool"]: r["wall"] for r in out["results"]}
    data["timing"] = {"photo": photo, "defaults": ours,
                      "defaults_calls": e.settings["num_samples_used"], "today_1000": today,
                      "interpretdl_inference_1000": walls["interpretdl_lime_inference"],
                      "interpretdl_dygraph_1000": walls["interpretdl_lime"]}
    print("timing", data["timing"], flush=True)
    save(data)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--photos", nargs="+", default=None)
    ap.add_argument("--peers", action="store_true")
    ap.add_argument("--peer-grid", type=int, nargs="+", default=[300, 1000])
    ap.add_argument("--faith", action="store_true")
    ap.add_argument("--sanity", action="store_true")
    ap.add_argument("--sanity-photos", type=int, default=4)
    ap.add_argument("--timing", action="store_true")
    ap.add_argument("--report", action="store_true")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    import paddle

    from bench import stable_photos as P

    paddle.set_device("cpu")
    photos = args.photos or list(P.TUNING + P.HELD_OUT)
    workdir = tempfile.mkdtemp(prefix="pxi_bench_stable_")
    if args.peers:
        run_peers_part(photos, args.peer_grid, workdir)
    if args.faith:
        faith_part(photos)
    if args.sanity:
        sanity_part(photos[:args.sanity_photos])
    if args.timing:
        timing_part(photos[0], workdir)
    if args.report:
        from bench.stable_report import report

        body = report(load(OUT), photos)
        print(body)
        if not args.no_write:
            from bench.report import write_section

            from bench import real_model as R

            if R.MODEL == "efficientnet_lite0":
                cmd = ("python -m bench.research_stable --segs slic25 coarse --methods bernoulli "
                       "stratified stratified+size --reference-n 6000 --faith (coarse: "
                       "stratified stratified+size) && python -m bench.research_stable --segs "
                       "qs13 --methods bernoulli stratified --reference-n 4000 --faith && python "
                       "-m bench.bench_stable --faith --sanity --sanity-photos 3 && python -m "
                       "bench.bench_stable --timing --report")
                title = "Time to a stable explanation"
            else:
                env = "PXI_BENCH_MODEL=%s " % R.MODEL
                cmd = ("{e}python -m bench.research_stable --segs qs13 --methods bernoulli "
                       "stratified --reference-n 4000 --faith && {e}python -m "
                       "bench.research_stable --segs coarse --methods stratified --reference-n "
                       "6000 --faith && {e}python -m bench.bench_stable --faith --sanity "
                       "--sanity-photos 3 --report").format(e=env)
                title = "Time to a stable explanation on a second model"
            write_section(title, body, cmd)


if __name__ == "__main__":
    main()
