"""What the training hook costs: demo training with and without ExplainHook, and how the cost of one
checkpoint scales with probes, LIME samples and the NormLIME eval budget. Writes the
"Training hook cost" section of BENCHMARKS.md.

    .venv/bin/python -m bench.bench_hooks            # ~4 min on 2 cores
    .venv/bin/python -m bench.bench_hooks --quick
"""
import argparse
import os
import tempfile
import time


import numpy as np  # noqa: E402

import paddlex_interpret  # noqa: E402,F401
import paddle  # noqa: E402
import paddlex as pdx  # noqa: E402

from bench.report import markdown_table, write_section  # noqa: E402
from pxi_testing.recipes import make_paddlex_datasets, seed_everything  # noqa: E402
from paddlex_interpret.hooks import ExplainHook  # noqa: E402
from paddlex_interpret.training.report import CheckpointContext  # noqa: E402
from paddlex_interpret.adapters.paddlex import PaddleXClassifier  # noqa: E402
from pxi_testing.synthetic import make_shapes_dataset  # noqa: E402

DEMO_HOOK = dict(num_samples="auto", fill="median", segmenter="slic",
                 segmenter_params={"n_segments": 40}, max_images=30)


def train(ds, save_dir, epochs, hook=None):
    seed_everything(0)
    train_set, eval_set = make_paddlex_datasets(ds)
    model = pdx.cls.MobileNetV3_small(num_classes=ds.num_classes)
    if hook is not None:
        hook.attach(model)
    t = time.perf_counter()
    model.train(num_epochs=epochs, train_dataset=train_set, train_batch_size=16,
                eval_dataset=eval_set, save_interval_epochs=1, log_interval_steps=10 ** 6,
                save_dir=save_dir, pretrain_weights=None, learning_rate=0.05, warmup_steps=0,
                lr_decay_epochs=(max(1, epochs - 1),), lr_decay_gamma=0.1, use_vdl=True)
    wall = time.perf_counter() - t
    if hook is not None:
        hook.detach()
    return model, eval_set, wall


def checkpoint_seconds(model, eval_set, probes, options, epoch=1):
    """Seconds for one explained checkpoint with ``options`` (fresh session, codebook fitted)."""
    hook = ExplainHook(probes, **options)
    clf = PaddleXClassifier(model)
    with tempfile.TemporaryDirectory() as d:
        ctx = lambda e: CheckpointContext(
            epoch=e, classifier=clf, layer=model.net, checkpoint_dir=d, dataset=eval_set,
            logdir=os.path.join(d, "vdl"), label_names=list(model.labels))
        t = time.perf_counter()
        hook.session.on_checkpoint(ctx(1))  # first checkpoint: fits the codebook
        first = time.perf_counter() - t
        t = time.perf_counter()
        hook.session.on_checkpoint(ctx(2))  # a later checkpoint
        later = time.perf_counter() - t
        hook.session.close()
    return first, later


def _breakdown(report):
    """'normlime / atlas / probes / predictor' seconds of one checkpoint report."""
    t = report.timings
    probes = sum(v for k, v in t.items() if k.startswith("probe"))
    b = report.backend or {}
    if b.get("backend") == "inference":
        pred = "%s %.2f+%.2f" % (b.get("export"), b.get("export_seconds", 0.0),
                                 b.get("build_seconds", 0.0))
    else:
        pred = str(b.get("backend"))
    return "%.2f / %.2f / %.2f / %s" % (t.get("normlime", 0.0), t.get("atlas", 0.0), probes,
                                         pred)


def probe_calls(hook):
    """The model calls each probe's LIME spent, per checkpoint (``num_samples_used``)."""
    calls = []
    for report in hook.history:
        calls.extend(int(v) for k, v in sorted(report.scalars.items())
                     if k.endswith("/num_samples_used") and k.count("/") == 2)
    return "/".join(str(c) for c in calls) or "?"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeats", type=int, default=None,
                    help="training runs with and without the hook, alternated (default 2, "
                         "--quick 1); the fastest of each is compared")
    ap.add_argument("--no-inline", action="store_true",
                    help="skip the runs with background=False (the hook in the training process)")
    args = ap.parse_args()
    paddle.set_device("cpu")
    work = tempfile.mkdtemp(prefix="bench_hooks_")
    ds = make_shapes_dataset(os.path.join(work, "data"), num_train_per_class=80,
                             num_val_per_class=20, image_size=64, seed=0)
    epochs = 2 if args.quick else 4
    repeats = args.repeats or (1 if args.quick else 2)
    val = ds.val_items()
    probes = [p for p, _, _ in val[::20][:3]]

    plain, hooked, hooks, inline, inline_hooks = [], [], [], [], []
    for r in range(repeats):  # alternated, so that a slow spell of the machine hits all
        plain.append(train(ds, os.path.join(work, "plain%d" % r), epochs)[2])
        hook = ExplainHook(probes, **DEMO_HOOK)
        model, eval_set, wall = train(ds, os.path.join(work, "hooked%d" % r), epochs, hook)
        hooked.append(wall)
        hooks.append(hook)
        if not args.no_inline:
            hook = ExplainHook(probes, background=False, **DEMO_HOOK)
            inline.append(train(ds, os.path.join(work, "inline%d" % r), epochs, hook)[2])
            inline_hooks.append(hook)
    best = hooks[int(np.argmin(hooked))]
    per_ckpt = [r.seconds for r in best.history]
    blocked = best.blocked_seconds
    import resource

    trainer_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    where = "worker process" if all(r.pid != os.getpid() for r in best.history) else \
        "training process"
    runs = lambda xs: ", ".join("%.1f" % x for x in xs)
    rows = [["without hook", epochs, runs(plain), "%.1f" % min(plain), "-", "-", "-", "-"],
            ["with ExplainHook (demo settings)", epochs, runs(hooked), "%.1f" % min(hooked),
             "**%.2fx** (pairs %s)" % (min(hooked) / min(plain),
                                       ", ".join("%.2f" % (h / p) for h, p in zip(hooked, plain))),
             "%.1f" % blocked,
             ", ".join("%.2f" % s for s in per_ckpt) + " (sum %.1f, in the %s)"
             % (sum(per_ckpt), where),
             "<br>".join("%d: %s" % (r.epoch, _breakdown(r)) for r in best.history)]]
    if inline:
        slow = inline_hooks[int(np.argmin(inline))]
        per = [r.seconds for r in slow.history]
        rows.append(["with ExplainHook(background=False): in the training process", epochs,
                     runs(inline), "%.1f" % min(inline),
                     "%.2fx (pairs %s)" % (min(inline) / min(plain), ", ".join(
                         "%.2f" % (h / p) for h, p in zip(inline, plain))),
                     "%.1f" % slow.blocked_seconds,
                     ", ".join("%.2f" % s for s in per) + " (sum %.1f)" % sum(per),
                     "<br>".join("%d: %s" % (r.epoch, _breakdown(r)) for r in slow.history)])
    table1 = markdown_table(["run", "epochs", "wall per run (s)", "fastest (s)", "ratio",
                             "training held up (s)", "explaining s per checkpoint",
                             "epoch: NormLIME / class atlas / probes / predictor (s)"], rows)

    scale_rows = []
    base = dict(DEMO_HOOK)
    variants = [("defaults of the demo (3 probes, num_samples='auto', 30 eval images)", probes,
                 {})]
    if not args.quick:
        variants += [
            ("1 probe", probes[:1], {}),
            ("6 probes", [p for p, _, _ in val[::10][:6]], {}),
            ("N=300 samples (the former default)", probes, {"num_samples": 300}),
            ("N=1000 samples (the cap of 'auto')", probes, {"num_samples": 1000}),
            ("60 eval images", probes, {"max_images": 60}),
            ("no metrics / no NormLIME", probes, {"metrics": False, "normlime": False}),
            ("no class atlas", probes, {"atlas": False}),
        ]
    for name, pr, opt in variants:
        first, later = checkpoint_seconds(model, eval_set, pr, dict(base, **opt))
        scale_rows.append([name, "%.2f" % first, "%.2f" % later])
    table2 = markdown_table(["hook settings", "first checkpoint (s)", "later checkpoint (s)"],
                            scale_rows)
    backend = PaddleXClassifier(model)
    backend(np.zeros((2, 64, 64, 3), np.uint8))
    body = ("Demo settings: generated coloured shapes (3 classes, 64 px, 240 train / 60 val), "
            "PaddleX MobileNetV3_small from scratch, a checkpoint every epoch, hook with 3 probes, "
            "LIME with num_samples='auto' (rounds until the probe's top 5 are certified, at "
            "most 1000 calls; the probes used %s calls at the checkpoints of the fastest hooked "
            "run), NormLIME fast mode on 30 eval images, metrics on. Same seed for all "
            "runs; %d training run(s) without and with the hook, alternated, in one process; the "
            "ratio compares the fastest of each (this shared 2-core machine drifts by about "
            "+-10%% from run to run). The hook runs with its defaults: each checkpoint is "
            "explained in a worker process from the checkpoint's files while training goes on "
            "(`background=True`); `training held up` is the time `model.train` waited for the "
            "hook (handing over checkpoints, waiting for the previous one, the final join).\n\n"
            % (probe_calls(best), repeats) + table1 +
            "\n\nPer checkpoint (fastest hooked run): the NormLIME weights on the eval images, "
            "the class atlas (an input x gradient map of each eval image, in dygraph, and the "
            "shortcut alarm), the probes (LIME, NormLIME filter, metrics, panels), and the "
            "Paddle Inference "
            "predictor for that checkpoint's weights: `traced` = the network was converted and "
            "saved with `paddle.jit.save` (once per run), `params` = the traced program was "
            "reused and only the new weights were written (export + predictor build seconds, "
            "included in the first column).\n\nCost of one explained checkpoint on the "
            "trained model, measured in this process with all cores (what `background=False` "
            "costs; the worker takes longer on its one core, beside the training; the first "
            "one also fits the concept codebook and segments the eval images, later ones reuse "
            "both):\n\n" + table2 + "\n\nPrediction backend used: "
            "%s. The first checkpoint's extra cost is the codebook fit and the trace of the "
            "network for Paddle Inference; per probe the cost is about N (the calls 'auto' "
            "spends) + 3 x (metric_steps + 1) forward passes, per eval image one." % backend.backend_info.get("backend"))
    body += ("\n\nMemory: the worker process peaked at %.0f MiB resident (its own Paddle, "
             "PaddleX and model; fastest hooked run), next to %.0f MiB for this whole benchmark "
             "process (training and all runs)." % (best.worker_peak_rss_mib or float("nan"),
                                                   trainer_rss))
    print(body)
    write_section("Training hook cost", body,
                  "python -m bench.bench_hooks" + (" --quick" if args.quick else ""))


if __name__ == "__main__":
    main()
