"""What the watcher costs: seconds per checkpoint of the watcher against the hook on the same model
and settings, and the wall time of training with and without the watcher beside it (CPU).
Writes the "Watcher cost" section of BENCHMARKS.md.

    .venv-paddle3/bin/python -m bench.bench_watch            # ~15 min on 2 cores
    .venv-paddle3/bin/python -m bench.bench_watch --quick

1. PaddleX 2: the demo's MobileNetV3_small (4 epochs, a checkpoint each), trained alone, with
   ExplainHook (its worker process), and with the watcher started beside it in a process of its
   own (the demo hook's settings, the watcher's defaults: all cores but one, nice 10), runs
   alternated.
2. PaddleX 3: a run written by PaddleClas's functions (PPLCNet_x0_5, 6 epochs, its own process)
   alone and with the watcher beside it, alternated; then the watcher catching up on a finished
   run with the checkpoints' network and with their exported models.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

import paddlex_interpret  # noqa: E402,F401

from bench.report import markdown_table, write_section  # noqa: E402
from paddlex_interpret.compat import quiet_import_noise  # noqa: E402

#: the demo hook's settings (bench_hooks.py), for the hook and the watcher alike
SETTINGS = dict(num_samples=300, fill="median", segmenter="slic",
                segmenter_params={"n_segments": 40}, max_images=30)


def _env():
    return quiet_import_noise(dict(os.environ))


def start_watcher(run, probes, logdir, **extra):
    """The watcher in a process of its own (``--watcher`` mode of this script)."""
    spec = json.dumps({"run": run, "probes": probes, "logdir": logdir, "extra": extra})
    return subprocess.Popen([sys.executable, "-m", "bench.bench_watch", "--watcher", spec],
                            cwd=ROOT, env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)


def _watcher_main(spec):
    from paddlex_interpret.training.watch import Watcher

    spec = json.loads(spec)
    os.nice(10)  # the CLI's default
    watcher = Watcher(spec["run"], spec["probes"], logdir=spec["logdir"], poll_seconds=2.0,
                      **dict(SETTINGS, **spec["extra"]))
    watcher.run_until_done()
    print(json.dumps(watcher.outcomes()))


def _outcomes(proc, ended):
    out, _ = proc.communicate(timeout=3600)
    done = json.loads(out.strip().splitlines()[-1])
    rows = sorted(done.values(), key=lambda d: d["epoch"])
    return ([(d.get("load_seconds", 0.0), d.get("seconds", 0.0)) for d in rows
             if d["status"] == "explained"], time.perf_counter() - ended)


def paddlex2(ds, work, probes, epochs, repeats):
    """Walls of the demo training alone / with the hook / with the watcher, alternated."""
    from bench.bench_hooks import train
    from paddlex_interpret.hooks import ExplainHook

    walls = {"alone": [], "hook": [], "watcher": []}
    per = {"hook": None, "watcher": None}
    tails = []
    for r in range(repeats):
        walls["alone"].append(train(ds, os.path.join(work, "px2_alone%d" % r), epochs)[2])
        hook = ExplainHook(probes, **SETTINGS)
        walls["hook"].append(train(ds, os.path.join(work, "px2_hook%d" % r), epochs, hook)[2])
        per["hook"] = [(0.0, rep.seconds) for rep in hook.history]
        run = os.path.join(work, "px2_watch%d" % r)
        proc = start_watcher(run, probes, os.path.join(run, "vdl_log", "watch"),
                             dataset=ds.root, until_epoch=epochs)
        walls["watcher"].append(train(ds, run, epochs)[2])
        per["watcher"], tail = _outcomes(proc, time.perf_counter())
        tails.append(tail)
    return walls, per, tails


def _write_run(out, root, epochs):
    return subprocess.Popen([sys.executable, "-m", "pxi_testing.paddleclas_run",
                             out, "--dataset", root, "--epochs", str(epochs)], cwd=ROOT,
                            env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def paddlex3(ds, work, probes, epochs, repeats):
    """Walls of a PaddleX 3 run's training alone / with the watcher, alternated."""
    walls = {"alone": [], "watcher": []}
    per, tails = None, []
    for r in range(repeats):
        for mode in ("alone", "watcher"):
            run = os.path.join(work, "px3_%s%d" % (mode, r))
            proc = start_watcher(run, probes, os.path.join(run, "watch")) \
                if mode == "watcher" else None
            t = time.perf_counter()
            assert _write_run(run, ds.root, epochs).wait() == 0
            walls[mode].append(time.perf_counter() - t)
            if proc is not None:
                per, tail = _outcomes(proc, time.perf_counter())
                tails.append(tail)
    return walls, per, tails


def catch_up(work, probes):
    """The watcher on a finished PaddleX 3 run: the network against the exported models."""
    from paddlex_interpret.training.watch import Watcher

    run = os.path.join(work, "px3_alone0")
    out = {}
    for network in (None, False):
        watcher = Watcher(run, probes, once=True, network=network,
                          logdir=os.path.join(work, "catch_up_%s" % network), **SETTINGS)
        t = time.perf_counter()
        watcher.run_until_done()
        rows = sorted(watcher.outcomes().values(), key=lambda d: d["epoch"])
        out[network] = ([(d["load_seconds"], d["seconds"]) for d in rows],
                        time.perf_counter() - t)
    return out


def _pairs(a, b):
    ratios = [y / x for x, y in zip(a, b)]
    return "**%.2fx** median of %d pairs (%s)" % (float(np.median(ratios)), len(ratios),
                                                 ", ".join("%.2f" % q for q in ratios))


def _secs(pairs):
    return ", ".join("%.2f" % b if not a else "%.2f+%.2f" % (a, b) for a, b in pairs)


def tables(px2, px3, caught, epochs2, epochs3):
    runs = lambda xs: ", ".join("%.1f" % x for x in xs)
    walls, per, tails = px2
    t1 = markdown_table(["PaddleX 2 training (%d epochs)" % epochs2, "wall per run (s)",
                         "against alone", "explaining s per checkpoint",
                         "went on after training (s)"], [
        ["alone", runs(walls["alone"]), "-", "-", "-"],
        ["with ExplainHook (worker process)", runs(walls["hook"]),
         _pairs(walls["alone"], walls["hook"]), _secs(per["hook"]), "0 (train waits)"],
        ["with the watcher beside it", runs(walls["watcher"]),
         _pairs(walls["alone"], walls["watcher"]), _secs(per["watcher"]), runs(tails)]])
    walls, per3, tails3 = px3
    t2 = markdown_table(["PaddleX 3 training (%d epochs)" % epochs3, "wall per run (s)",
                         "against alone", "explaining s per checkpoint",
                         "went on after training (s)"], [
        ["alone", runs(walls["alone"]), "-", "-", "-"],
        ["with the watcher beside it", runs(walls["watcher"]),
         _pairs(walls["alone"], walls["watcher"]), _secs(per3), runs(tails3)]])
    t3 = markdown_table(["the watcher on a finished PaddleX 3 run", "load + explain s per "
                         "checkpoint", "sum (s)", "wall (s)"], [
        [name, _secs(caught[k][0]), "%.1f" % sum(a + b for a, b in caught[k][0]),
         "%.1f" % caught[k][1]]
        for k, name in ((None, "its network (PaddleClas's ppcls: gradients, class atlas)"),
                        (False, "its exported models (predictions only: no class atlas)"))])
    return t1, t2, t3


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeats", type=int, default=None, help="alternated runs (default 3)")
    ap.add_argument("--watcher", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.watcher:
        return _watcher_main(args.watcher)
    import paddle

    from pxi_testing.paddleclas_run import write_cls_lists
    from pxi_testing.synthetic import make_shapes_dataset

    paddle.set_device("cpu")
    work = tempfile.mkdtemp(prefix="bench_watch_")
    ds = make_shapes_dataset(os.path.join(work, "data"), num_train_per_class=80,
                             num_val_per_class=20, image_size=64, seed=0)
    write_cls_lists(ds.root)
    probes = [p for p, _, _ in ds.val_items()[::20][:3]]
    repeats = args.repeats or (1 if args.quick else 3)
    e2, e3 = (2, 3) if args.quick else (4, 6)
    load = [os.getloadavg()[1]]
    try:
        px2 = paddlex2(ds, work, probes, e2, repeats)
        px3 = paddlex3(ds, work, probes, e3, repeats)
        caught = catch_up(work, probes)
    finally:
        import shutil

        shutil.rmtree(work, ignore_errors=True)  # runs of about 1 GB
    load.append(os.getloadavg()[1])
    t1, t2, t3 = tables(px2, px3, caught, e2, e3)
    body = (
        "The demo hook's settings for the hook and the watcher alike (3 probes, LIME N=300, SLIC "
        "40 segments, fill median, NormLIME fast on 30 eval images, metrics, the class atlas on "
        "60), on the demo's shapes (3 classes, 64 px, 240 train / 60 val images), CPU. The "
        "watcher runs in a process of its own with its defaults (all cores but one for its "
        "predictors, nice 10, the directory read every 2 s), started before training. Runs "
        "alternated (alone, hook, watcher), %d of each; the ratio is the median over the "
        "alternated pairs. Seconds per checkpoint: the hook's are its reports' (explaining; "
        "its worker loads the new weights in hundredths of a second); the watcher's `load + "
        "explain`. The machine is shared with other work: the 5-minute load average was "
        "%.1f at the start and %.1f at the end (2 cores), so single runs move by 20%% and "
        "more.\n\n" % (repeats, load[0], load[1]) + t1 +
        "\n\nPaddleX 3: the run's training (PaddleClas's writers, PPLCNet_x0_5, one process) "
        "alone and with the watcher beside it (the run's own evaluation set from "
        "config.yaml). The watcher's first checkpoint includes its imports of Paddle and "
        "PaddleClas (or PaddleX) and the network's build, which overlap the first epoch.\n\n"
        + t2 +
        "\n\nCatching up on a finished run (this process, all cores), first checkpoint with "
        "PaddleClas's import, the trace and the codebook fit:\n\n" + t3)
    print(body)
    write_section("Watcher cost", body,
                  "python -m bench.bench_watch" + (" --quick" if args.quick else ""))


if __name__ == "__main__":
    main()
