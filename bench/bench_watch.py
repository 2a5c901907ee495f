"""What the watcher costs: seconds per checkpoint of the watcher against the hook on the same model
and settings, and the wall time of a training run with and without the watcher beside it (CPU).
Writes the "Watcher cost" section of BENCHMARKS.md.

    .venv-paddle3/bin/python bench/bench_watch.py            # ~12 min on 2 cores
    .venv-paddle3/bin/python bench/bench_watch.py --quick

1. The hook's model: PaddleX 2 MobileNetV3_small on the demo's shapes (4 epochs, a checkpoint
   each) trained with ExplainHook (its worker process); then the watcher, in this process, on the
   same ``save_dir`` with the same settings (catch-up: the checkpoints are there).
2. A PaddleX 3 run (PaddleClas's writers, PPLCNet_x0_5, 6 epochs): the watcher on its network and
   on its exported models.
3. Training cost: the PaddleX 3 run's training (``testing/paddleclas_run.py`` in a process of its
   own) alone, and with ``paddlex-interpret watch`` (defaults: all cores but one, nice 10) started
   beside it; alternated pairs, the fastest of each compared.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))

import paddlex_interpret  # noqa: E402,F401
import paddle  # noqa: E402

from bench.bench_hooks import DEMO_HOOK, train  # noqa: E402
from bench.report import markdown_table, write_section  # noqa: E402
from paddlex_interpret.compat import quiet_import_noise  # noqa: E402
from paddlex_interpret.hooks import ExplainHook  # noqa: E402
from paddlex_interpret.testing.paddleclas_run import write_cls_lists  # noqa: E402
from paddlex_interpret.testing.synthetic import make_shapes_dataset  # noqa: E402
from paddlex_interpret.training.watch import Watcher  # noqa: E402


def _per_checkpoint(watcher):
    out = sorted(watcher.outcomes().values(), key=lambda d: d["epoch"])
    return [(d.get("load_seconds", 0.0), d.get("seconds", 0.0)) for d in out
            if d["status"] == "explained"]


def _fmt(pairs):
    return ", ".join("%.2f+%.2f" % p for p in pairs)


def hook_vs_watcher(ds, work, probes, epochs):
    hook = ExplainHook(probes, **DEMO_HOOK)
    train(ds, os.path.join(work, "hooked"), epochs, hook)
    hook_s = [r.seconds for r in hook.history]
    watcher = Watcher(os.path.join(work, "hooked"), probes, ds.root, once=True,
                      logdir=os.path.join(work, "watch_px2"), **DEMO_HOOK)
    t = time.perf_counter()
    watcher.run_until_done()
    wall = time.perf_counter() - t
    ours = _per_checkpoint(watcher)
    return [["PaddleX 2 MobileNetV3_small, ExplainHook (worker process)", len(hook_s),
             ", ".join("%.2f" % s for s in hook_s), "%.1f" % sum(hook_s), "-"],
            ["the same save_dir, the watcher (this process)", len(ours), _fmt(ours),
             "%.1f" % sum(a + b for a, b in ours), "%.1f" % wall]]


def paddleclas_watch(ds, work, probes, epochs):
    run = os.path.join(work, "pdx3")
    _write_run(run, ds.root, epochs).wait()
    rows = []
    for network, name in ((None, "its network (PaddleClas's ppcls: gradients, class atlas)"),
                          (False, "its exported models (predictions only: no atlas)")):
        watcher = Watcher(run, probes, once=True, network=network,
                          logdir=os.path.join(work, "watch_pdx3_%s" % network), **DEMO_HOOK)
        t = time.perf_counter()
        watcher.run_until_done()
        wall = time.perf_counter() - t
        ours = _per_checkpoint(watcher)
        rows.append(["PaddleX 3 run (PPLCNet_x0_5), the watcher on " + name, len(ours),
                     _fmt(ours), "%.1f" % sum(a + b for a, b in ours), "%.1f" % wall])
    return rows


def _env():
    return quiet_import_noise(dict(os.environ))


def _write_run(out, root, epochs):
    return subprocess.Popen([sys.executable, "-m", "paddlex_interpret.testing.paddleclas_run",
                             out, "--dataset", root, "--epochs", str(epochs)], cwd=ROOT,
                            env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _train_wall(run, root, epochs, probes):
    """Wall time of the training process, and (with ``probes``) the watcher's summary and how
    long it went on after training ended."""
    watcher = None
    if probes:
        watcher = subprocess.Popen(
            [sys.executable, "-m", "paddlex_interpret.cli", "watch", run, "--probes", *probes,
             "--quiet"], cwd=ROOT, env=_env(), stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, text=True)
    t = time.perf_counter()
    assert _write_run(run, root, epochs).wait() == 0
    wall = time.perf_counter() - t
    if watcher is None:
        return wall, None, None
    out, _ = watcher.communicate(timeout=1800)
    return wall, json.loads(out.strip().splitlines()[-1]), time.perf_counter() - t - wall


def training_cost(ds, work, probes, epochs, repeats):
    plain, watched, after, explained = [], [], [], []
    for r in range(repeats):  # alternated, so that a slow spell of the machine hits both
        plain.append(_train_wall(os.path.join(work, "plain%d" % r), ds.root, epochs, None)[0])
        wall, summary, tail = _train_wall(os.path.join(work, "watched%d" % r), ds.root, epochs,
                                          probes)
        watched.append(wall)
        after.append(tail)
        explained.append(sum(v == "explained" for v in summary["checkpoints"].values()))
    runs = lambda xs: ", ".join("%.1f" % x for x in xs)
    return [["PaddleX 3 run (PPLCNet_x0_5, %d epochs) alone" % epochs, runs(plain),
             "%.1f" % min(plain), "-", "-"],
            ["with `paddlex-interpret watch` beside it (defaults, 3 probes)", runs(watched),
             "%.1f" % min(watched), "**%.2fx** (pairs %s)" % (
                 min(watched) / min(plain),
                 ", ".join("%.2f" % (w / p) for w, p in zip(watched, plain))),
             "%s of %d explained; done %s s after training" % (
                 "/".join(str(e) for e in explained), epochs, runs(after))]]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    paddle.set_device("cpu")
    work = tempfile.mkdtemp(prefix="bench_watch_")
    ds = make_shapes_dataset(os.path.join(work, "data"), num_train_per_class=80,
                             num_val_per_class=20, image_size=64, seed=0)
    write_cls_lists(ds.root)
    probes = [p for p, _, _ in ds.val_items()[::20][:3]]
    epochs = 2 if args.quick else 4
    per_ckpt = hook_vs_watcher(ds, work, probes, epochs)
    per_ckpt += paddleclas_watch(ds, work, probes, 3 if args.quick else 6)
    table1 = markdown_table(["what explains", "checkpoints", "s per checkpoint",
                             "sum (s)", "wall (s)"], per_ckpt)
    table2 = markdown_table(["training", "wall per run (s)", "fastest (s)", "ratio",
                             "the watcher"], training_cost(
                                 ds, work, probes, 3 if args.quick else 6,
                                 1 if args.quick else 2))
    body = (
        "Same settings everywhere: the demo hook's (3 probes, LIME N=300, SLIC 40 segments, "
        "fill median, NormLIME fast on 30 eval images, metrics, the class atlas on 60), on the "
        "demo's shapes (3 classes, 64 px, 240 train / 60 val images). Seconds per checkpoint: "
        "the hook's are its reports' (explaining only; the worker loads a checkpoint's weights "
        "in a few hundredths of a second); the watcher's are `load + explain` (loading the "
        "checkpoint, then the same ExplainSession), and `wall` is the whole catch-up from the "
        "start (imports of PaddleX / PaddleClas, directory reads, the first checkpoint's trace "
        "and codebook fit included).\n\n" + table1 +
        "\n\nThe watcher's cost to the training it watches, on this 2-core CPU: the PaddleX 3 "
        "run's training (PaddleClas's writers, one training process) alone and with the "
        "watcher started beside it (its defaults: all cores but one for its predictors, nice "
        "10, the directory read every 2 s, the run's own evaluation set from config.yaml); "
        "runs alternated, the fastest of each compared (the machine is shared: about +-10% "
        "between runs).\n\n" + table2)
    print(body)
    write_section("Watcher cost", body,
                  "python bench/bench_watch.py" + (" --quick" if args.quick else ""))


if __name__ == "__main__":
    main()
