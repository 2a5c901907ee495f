"""NormLIME over more than one process: the offline build with 1 vs 2 processes (fast and
aggregate, 200 and 1000 generated images) and the hook's checkpoint cost with 1 vs 2 ranks under
``paddle.distributed.launch``. Writes the section "NormLIME over several processes" of
BENCHMARKS.md.

    .venv/bin/python -m bench.bench_scale            # ~20 min on 2 cores
    .venv/bin/python -m bench.bench_scale --quick    # 200 images only, no launcher runs

One process is the library's default (``backend='auto'``: Paddle Inference, one predictor over
all cores); two processes are ``build_normlime_weights(..., nproc=2)`` (spawn, one thread
each, Paddle Inference), timed from the call to the weights in hand, process start-up included.
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
import paddle  # noqa: E402
import paddlex as pdx  # noqa: E402

from bench.report import markdown_table, write_section  # noqa: E402
from paddlex_interpret.api.weights import build_normlime_weights  # noqa: E402
from paddlex_interpret.core.normlime import MODES  # noqa: E402
from pxi_testing.synthetic import make_shapes_dataset  # noqa: E402

SECTION = "NormLIME over several processes"
EXAMPLE = os.path.join(ROOT, "examples", "train_multicard.py")
AGGREGATE_SAMPLES = 200


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def train_model(ds, save_dir):
    """A MobileNetV3_small trained 3 epochs on the shapes (enough to predict every class, so the
    build does the work of a real model; its accuracy is not what is timed)."""
    T = pdx.transforms
    tf = T.Compose([T.Resize(64), T.Normalize()])
    train = pdx.datasets.ImageNet(ds.root, ds.train_list, ds.labels_file, tf, shuffle=True)
    model = pdx.cls.MobileNetV3_small(num_classes=len(ds.labels))
    model.test_transforms = tf  # saved with the model (PaddleX sets it from an eval dataset)
    model.train(num_epochs=3, train_dataset=train, train_batch_size=16, save_interval_epochs=3,
                log_interval_steps=10 ** 6, save_dir=save_dir, pretrain_weights=None,
                learning_rate=0.05, use_vdl=False)
    return os.path.join(save_dir, "epoch_3")


ONE_CORE = r"""
import json, sys, time
import paddlex_interpret
import paddlex as pdx
from paddlex_interpret.api.weights import build_normlime_weights
model_dir, items_file, kw = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
items = json.load(open(items_file))
model = pdx.load_model(model_dir)
t = time.perf_counter()
build_normlime_weights(model, items, **kw)
print("SECONDS %.3f" % (time.perf_counter() - t))
"""


def one_core(model_dir, items, kw, tmp):
    """Seconds of the same build in one process pinned to one core (``taskset -c 0``), the
    model loaded first: what one rank has when every rank has a device of its own."""
    items_file = os.path.join(tmp, "items.json")
    with open(items_file, "w") as f:
        json.dump(items, f)
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS="1", GLOG_minloglevel="2")
    out = subprocess.run(["taskset", "-c", "0", sys.executable, "-c", ONE_CORE, model_dir,
                          items_file, json.dumps(kw)], env=env, capture_output=True, text=True,
                         check=True)
    return float(out.stdout.split("SECONDS")[-1])


def offline_rows(model_dir, items, sizes, tmp):
    model = pdx.load_model(model_dir)
    rows = []
    for n in sizes:
        for mode in MODES:
            kw = dict(mode=mode, max_images=n, seed=0, n_concepts=16)
            if mode == "aggregate":
                kw["num_samples"] = AGGREGATE_SAMPLES
            t = time.perf_counter()
            one = build_normlime_weights(model, items, **kw)
            t_one = time.perf_counter() - t
            t = time.perf_counter()
            two = build_normlime_weights(model_dir, items, nproc=2, **kw)
            t_two = time.perf_counter() - t
            core = one_core(model_dir, items, kw, tmp) if n <= 200 else None
            ranks = two.info["seconds"]
            diff = float(np.abs(one.weights - two.weights).max())
            log("  %s n=%d: 1 process %.1f s, 2 processes %.1f s, 1 core %s" % (
                mode, n, t_one, t_two, core))
            rows.append([mode, n, "%.1f" % t_one, "%.1f" % t_two, "%.1f" % ranks,
                         "%.1f" % (t_two - ranks), "**%.2fx**" % (t_one / t_two),
                         "-" if core is None else "%.1f" % core,
                         "-" if core is None else "%.2fx" % (core / ranks),
                         "same bits" if diff == 0 else "%.1e" % diff])
    return rows


def limits(rows):
    """What limits the speed-up, from the offline rows: the fixed start-up against the work."""
    startup = [float(r[5]) for r in rows]
    ranked = ", ".join("%s at %d images %.2fx" % (r[0], r[1], float(r[2]) / float(r[4]))
                       for r in rows)
    cores = ", ".join("%s at %d images %s" % (r[0], r[1], r[8]) for r in rows if r[8] != "-")
    return (
        "What limits it here: 2 cores, which one process already keeps busy (its forward "
        "passes run on one inference predictor with all threads), so a second process has no "
        "idle core to use; "
        "and the start-up of the processes (spawning them, importing Paddle and PaddleX, "
        "loading the model, the gloo rendezvous: %.0f-%.0f s, fixed whatever the dataset). "
        "Rank 0's build against one process's (start-up left out): %s. Where each rank has a "
        "core (or a card) of its own, which is what the sharding is for, the ranks' build "
        "against one process on one core: %s." % (min(startup), max(startup), ranked, cores))


def launch(out, nproc, *args):
    cmd = [sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", str(nproc),
           "--log_dir", os.path.join(out, "log"), EXAMPLE, "--out", out] + list(args)
    env = dict(os.environ, PYTHONPATH=ROOT)
    env.pop("CUDA_VISIBLE_DEVICES", None)
    t = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    wall = time.perf_counter() - t
    with open(os.path.join(out, "rank0.json")) as f:
        return wall, json.load(f)


def hook_rows(tmp, epochs=2):
    common = ["--epochs", str(epochs), "--image-size", "64", "--per-class", "48",
              "--val-per-class", "67", "--max-images", "200", "--num-samples", "200"]
    rows = []
    for nproc in (1, 2):
        _, bare = launch(os.path.join(tmp, "bare%d" % nproc), nproc, "--no-explain", *common)
        _, hooked = launch(os.path.join(tmp, "hook%d" % nproc), nproc, *common)
        cost = (hooked["train_seconds"] - bare["train_seconds"]) / epochs
        log("  hook, %d rank(s): %.1f s per checkpoint" % (nproc, cost))
        rows.append([nproc, "%.1f" % bare["train_seconds"], "%.1f" % hooked["train_seconds"],
                     "%.1f" % cost, "%.1f" % (hooked["blocked_seconds"] / epochs)])
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    paddle.set_device("cpu")
    sizes = (200,) if args.quick else (200, 1000)
    with tempfile.TemporaryDirectory(prefix="pxi-scale-") as tmp:
        ds = make_shapes_dataset(os.path.join(tmp, "data"), num_train_per_class=60,
                                 num_val_per_class=334, image_size=64, seed=0)
        model_dir = train_model(ds, os.path.join(tmp, "model"))
        items = [path for path, _, _ in ds.val_items()]
        log("offline builds")
        offline = offline_rows(model_dir, items, sizes, tmp)
        hook = [] if args.quick else (log("hook under the launcher") or hook_rows(tmp))
    body = [
        "The offline build (`build_normlime_weights(..., nproc=2)` / `build-weights --nproc 2`) "
        "against one process, on %d generated 64 px images (MobileNetV3_small; aggregate: "
        "LIME with %d samples per image). *wall* is from the call to the weights in hand; "
        "*in the ranks* is rank 0's build alone (without starting the processes, importing "
        "Paddle and loading the model). *1 process on 1 core* is the same build pinned to one "
        "core (`taskset`), timed after the model is loaded; *ranks vs 1 core* divides it by "
        "*in the ranks*: the parallel speed-up of the sharded build itself, what ranks with a "
        "core or card each get (2.00x would be perfect)." % (
            len(items), AGGREGATE_SAMPLES),
        markdown_table(["mode", "images", "1 process (s)", "2 processes, wall (s)",
                        "in the ranks (s)", "start-up (s)", "speed-up (wall)",
                        "1 process on 1 core (s)", "ranks vs 1 core", "weights vs 1 process"],
                       offline)]
    if hook:
        body += [
            "The hook under `paddle.distributed.launch` (`examples/train_multicard.py`, 2 "
            "epochs, a checkpoint each, 144 training and 201 eval images, NormLIME on all 201 "
            "at every checkpoint, 2 probes): the training wall time of rank 0 without and with "
            "the hook. With 1 rank NormLIME is built by the worker process next to training; "
            "with 2 ranks every rank builds its share right after PaddleX's evaluation "
            "(*blocked*: how long rank 0 waited for that and for handing the checkpoint over).",
            markdown_table(["ranks", "training, no hook (s)", "training, hook (s)",
                            "cost per checkpoint (s)", "blocked per checkpoint (s)"], hook)]
    body.append(limits(offline))
    text = "\n\n".join(body)
    print(text)
    if not args.no_write:
        write_section(SECTION, text, "python -m bench.bench_scale" +
                      (" --quick" if args.quick else ""))


if __name__ == "__main__":
    main()
