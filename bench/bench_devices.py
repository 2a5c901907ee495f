"""The GPU build (paddlepaddle-gpu 2.6.2) on a machine without a card, against the CPU build: what a
GPU user's environment costs on the CPU (import time, the demo's training with the hook, the
worker's and the training process's peak memory), where the hook's worker ran (read inside it),
and whether one saved checkpoint gets the same LIME bits on both builds. Writes the
"The GPU build on the CPU" section of BENCHMARKS.md.

    .venv/bin/python -m bench.bench_devices      # needs .venv and .venv-paddlegpu; ~2 min

Each build runs in a fresh process of its own environment (``--child``); the first one's
checkpoint is explained by both.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILDS = (("paddlepaddle 2.6.2 (CPU build)", ".venv"),
          ("paddlepaddle-gpu 2.6.2 (CUDA 11.8 build)", ".venv-paddlegpu"))


def child(out_dir, checkpoint):
    """One build: import, train with the hook, explain ``checkpoint`` (or this run's last)."""
    t = time.perf_counter()
    import resource

    import numpy as np

    import paddlex_interpret  # noqa: F401
    import paddle
    import paddlex as pdx

    imported = time.perf_counter() - t
    from pxi_testing.recipes import make_paddlex_datasets, seed_everything
    from paddlex_interpret.hooks import ExplainHook
    from pxi_testing.synthetic import make_shapes_dataset

    ds = make_shapes_dataset(os.path.join(out_dir, "data"), num_train_per_class=80,
                             num_val_per_class=20, image_size=64, seed=0)
    seed_everything(0)
    train_set, eval_set = make_paddlex_datasets(ds)
    model = pdx.cls.MobileNetV3_small(num_classes=ds.num_classes)
    probes = [p for p, _, _ in ds.val_items()[::20][:3]]
    hook = ExplainHook(probes, num_samples=300, segmenter="slic",
                       segmenter_params={"n_segments": 40}, max_images=30)
    t = time.perf_counter()
    with hook.attach(model):
        model.train(num_epochs=3, train_dataset=train_set, train_batch_size=16,
                    eval_dataset=eval_set, save_interval_epochs=1, log_interval_steps=10 ** 6,
                    save_dir=os.path.join(out_dir, "train"), pretrain_weights=None,
                    learning_rate=0.05, warmup_steps=0, use_vdl=True)
    trained = time.perf_counter() - t
    checkpoint = checkpoint or os.path.join(out_dir, "train", "epoch_3")
    exp = pdx.interpret.lime(ds.val_items()[5][0], pdx.load_model(checkpoint), num_samples=300,
                             batch_size=50, save_dir=os.path.join(out_dir, "lime"), seed=0,
                             backend="inference", save_png=False)
    np.save(os.path.join(out_dir, "weights.npy"), np.concatenate(
        [exp.weights.ravel(), exp.probabilities.ravel()]))
    return {"paddle": paddle.__version__, "cuda": paddle.is_compiled_with_cuda(),
            "import_s": imported, "train_s": trained, "held_up_s": hook.blocked_seconds,
            "worker": hook.worker_device_info, "worker_rss": hook.worker_peak_rss_mib,
            "trainer_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
            "checkpoint": checkpoint, "weights": os.path.join(out_dir, "weights.npy")}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--child", nargs=2, metavar=("OUT_DIR", "CHECKPOINT"))
    args = ap.parse_args()
    if args.child:
        result = child(args.child[0], args.child[1] if args.child[1] != "-" else None)
        print("RESULT " + json.dumps(result))
        return
    import numpy as np

    rows, results, checkpoint = [], [], "-"
    with tempfile.TemporaryDirectory() as tmp:
        for name, venv in BUILDS:
            python = os.path.join(ROOT, venv, "bin", "python")
            out = os.path.join(tmp, venv.strip("."))
            os.makedirs(out)
            run = subprocess.run([python, "-W", "ignore", "-m", "bench.bench_devices", "--child",
                                  out, checkpoint],
                                 cwd=ROOT, capture_output=True, text=True)
            line = [l for l in run.stdout.splitlines() if l.startswith("RESULT ")]
            if run.returncode or not line:
                sys.exit("%s failed:\n%s" % (name, run.stderr[-3000:]))
            r = json.loads(line[-1][len("RESULT "):])
            checkpoint = r["checkpoint"]
            r["same_bits"] = bool(np.array_equal(np.load(r["weights"]),
                                                 np.load(results[0]["weights"]))) \
                if results else "-"
            results.append(r)
            w = r["worker"] or {}
            rows.append([name, "%.1f" % r["import_s"], "%.1f" % r["train_s"],
                         "%.1f" % r["held_up_s"],
                         "%s, %s card(s), CUDA_VISIBLE_DEVICES=%r" % (
                             w.get("device"), w.get("gpus"), w.get("CUDA_VISIBLE_DEVICES")),
                         "%.0f" % (r["worker_rss"] or float("nan")), "%.0f" % r["trainer_rss"],
                         {True: "yes", False: "no"}.get(r["same_bits"], "-")])
    import paddlex_interpret  # noqa: F401  (the versions of this environment in the header)
    import paddle  # noqa: F401
    import paddlex  # noqa: F401

    from bench.report import markdown_table, write_section

    table = markdown_table(["build", "import paddle + paddlex (s)",
                            "train 3 epochs with the hook (s)", "training held up (s)",
                            "the worker, read inside it", "worker peak RSS (MiB)",
                            "training process peak RSS (MiB)",
                            "LIME of one checkpoint: the CPU build's bits"], rows)
    body = ("No card on this machine: both builds run on the CPU. Each build in a fresh "
            "process of its own environment, one after the other: import, the demo's training "
            "(3 classes, 64 px, 240 train / 60 val images, MobileNetV3_small from scratch, 3 "
            "epochs, a checkpoint each) with ExplainHook's defaults (the worker on "
            "`worker_device='cpu'`; 3 probes, LIME N=300, NormLIME on 30 images), then LIME "
            "(N=300, seed 0, Paddle Inference) of one held-out image on the first build's last "
            "checkpoint, its weights and probabilities compared with `np.array_equal`. Times are of one run on a "
            "shared 2-core machine (about +-20%).\n\n" + table)
    print(body)
    write_section("The GPU build on the CPU", body, "python -m bench.bench_devices")


if __name__ == "__main__":
    main()
