"""Command line: ``paddlex-interpret lime|normlime|glime|gradcam|smoothgrad|integrated-gradients|
occlusion|audit|build-weights|watch ...``.

Arguments are checked before the model is loaded; a user error (a missing image, a bad number, a
directory that is not a saved model, a detector model...) prints one line and exits with status 2
(``--debug`` shows the traceback). The library's INFO lines (predicted class, where files were
saved, the backend chosen) are shown; ``--quiet`` keeps warnings only, ``--verbose`` adds debug.

Examples::

    paddlex-interpret lime --model output/best_model --image val/0001.png --num-samples 1000
    paddlex-interpret lime --model output/best_model --image val/0001.png --labels cat --fill grey
    paddlex-interpret build-weights --model output/best_model --dataset data/ --out nl.npz
    paddlex-interpret build-weights --model output/best_model --dataset data/ --out nl.npz --nproc 4
    paddlex-interpret normlime --model output/best_model --image val/0001.png --dataset data/
    paddlex-interpret glime --model output/best_model --image val/0001.png --prior prior.npz
    paddlex-interpret gradcam --model output/best_model --image val/0001.png
    paddlex-interpret audit --model output/best_model --dataset data/ --save-dir audit
    paddlex-interpret occlusion --model pdx3_output/best_model --image val/0001.png
    paddlex-interpret watch pdx3_output --probes val/0001.png val/0002.png --dataset dataset/
"""
import argparse
import json
import logging
import os
import sys

from .cli_args import (ALARM_EXIT, DEVICE_HELP, FILLS, GRADIENT_COMMANDS, HelpFormatter,
                       audit_args, dataset_args, explain_args, gradient_args, occlusion_args,
                       positive, progress_args, verbosity_args, watch_args)
from .errors import UnsupportedModelError, UsageError, user_error

__all__ = ["main", "build_parser"]

logger = logging.getLogger("paddlex_interpret")

class _Parser(argparse.ArgumentParser):
    """A parser whose usage errors are one line (and status 2), as every user error here."""

    def error(self, message):
        self.exit(2, "%s: error: %s (see --help)\n" % (self.prog, message))


def build_parser():
    from . import __version__

    fmt = HelpFormatter
    parser = _Parser(prog="paddlex-interpret", formatter_class=fmt,
                     description="Explain PaddleX image classifiers.")
    parser.add_argument("--version", action="version", version="%(prog)s " + __version__)
    verbosity_args(parser, default=False)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("lime", help="LIME explanation of one image", formatter_class=fmt)
    explain_args(p)
    p = sub.add_parser("normlime", help="NormLIME explanation of one image",
                       formatter_class=fmt)
    explain_args(p, with_dataset=True)
    p.add_argument("--weights-file", default=None,
                   help="NormLIME weights file (relative to --save-dir; built when absent)")
    p = sub.add_parser("glime", help="GLIME: LIME with a NormLIME prior", formatter_class=fmt)
    explain_args(p)
    p.add_argument("--prior", required=True, help="a NormLIME weights file (the prior)")
    p.add_argument("--beta", default="10",
                   help="the prior's strength (a number >= 0, or 'auto': chosen per image)")
    for name, what in GRADIENT_COMMANDS.items():
        p = sub.add_parser(name, help="%s of one image (dygraph, gradients)" % what,
                           formatter_class=fmt)
        gradient_args(p, name)
    p = sub.add_parser("occlusion", help="occlusion sensitivity of one image (predictions "
                       "only: exported models too)", formatter_class=fmt)
    occlusion_args(p)
    p = sub.add_parser("watch", help="explain a training run's checkpoints as they appear, "
                       "beside training", formatter_class=fmt)
    watch_args(p)
    p = sub.add_parser("audit", help="shortcut audit: regions of the images the model reads as "
                       "a class, tested by intervention", formatter_class=fmt)
    audit_args(p)
    p = sub.add_parser("build-weights", help="build (or --inspect) a NormLIME weights file",
                       formatter_class=fmt)
    p.add_argument("--model", help="a saved PaddleX model directory (to build)")
    p.add_argument("--out", required=True, help="weights file to write, or to inspect")
    p.add_argument("--seed", type=int, default=0, help="selection and codebook seed")
    p.add_argument("--device", default=None, help=DEVICE_HELP)
    p.add_argument("--inspect", action="store_true", help="print the top concepts of --out")
    p.add_argument("--nproc", type=positive, default=1,
                   help="processes sharing the images (paddle.distributed.spawn; one card each "
                        "on GPUs); the weights are those of one process")
    progress_args(p)
    verbosity_args(p, default=argparse.SUPPRESS)
    dataset_args(p, required=False)
    return parser


# ------------------------------------------------------------------------------- checks
def _check_model_dir(path):
    """The model directory ``--model`` names (see ``adapters.model_dir``), or a UsageError
    saying what is missing there."""
    from .adapters.model_dir import find_model_dir

    try:
        return find_model_dir(path)
    except (OSError, UnsupportedModelError) as exc:
        raise UsageError("--model: %s" % exc) from None


def _fill(text):
    if text in FILLS:
        return text
    parts = text.split(",")
    try:
        colour = [int(p) for p in parts]
    except ValueError:
        colour = None
    if colour is None or len(colour) not in (1, 3) or not all(0 <= c <= 255 for c in colour):
        raise UsageError("--fill %r: choose one of %s or a colour 'R,G,B' (0-255)"
                         % (text, ", ".join(FILLS)))
    return colour


def _labels(values):
    if values is None:
        return None
    return [int(v) if v.lstrip("-").isdigit() else v for v in values]


def _check(args):
    """Everything that can be checked before the model is loaded."""
    if getattr(args, "image", None) is not None:
        if os.path.isdir(args.image):
            raise UsageError("--image %r is a directory, not an image file" % args.image)
        if not os.path.exists(args.image):
            raise UsageError("--image %r does not exist" % args.image)
    if getattr(args, "model", None):
        args.model = _check_model_dir(args.model)
    if getattr(args, "fill", None) is not None:
        args.fill = _fill(args.fill)
    if getattr(args, "labels", None) is not None:
        args.labels = _labels(args.labels)
    if getattr(args, "dataset", None) and not os.path.isdir(args.dataset):
        raise UsageError("--dataset %r is not a directory" % args.dataset)
    for probe in getattr(args, "probes", None) or ():
        if not os.path.isfile(probe):
            raise UsageError("--probes: %r is not an image file" % probe)
    if getattr(args, "prior", None) is not None and not os.path.isfile(args.prior):
        raise UsageError("--prior %r does not exist" % args.prior)
    if getattr(args, "beta", None) is not None:
        if args.beta != "auto":
            try:
                args.beta = float(args.beta)
            except ValueError:
                raise UsageError("--beta %r: a number >= 0 or 'auto'" % args.beta) from None
            if args.beta < 0:
                raise UsageError("--beta must be >= 0, got %s" % args.beta)
    if args.command == "build-weights":
        if args.inspect:
            if not os.path.isfile(args.out):
                raise UsageError("--out %r does not exist (nothing to inspect)" % args.out)
        elif not args.model or not args.dataset:
            raise UsageError("build-weights needs --model and --dataset (or --inspect)")
    if args.command == "audit" and args.save_dir is not None:
        from .io import check_writable_dir

        check_writable_dir(args.save_dir, "--save-dir")
    if getattr(args, "progress", False) is None:
        args.progress = sys.stderr.isatty()


# ------------------------------------------------------------------------------- running
def _quiet_imports():
    """Silence what is not the user's business in a command-line run (Paddle's C++ INFO lines,
    the deprecation warnings its dependencies print on import), here and in the processes this
    one starts (build-weights --nproc)."""
    from .compat import quiet_import_noise

    quiet_import_noise()


def _load(args, with_net=True):
    _quiet_imports()
    import paddlex_interpret  # noqa: F401  (shims before paddlex)
    from .adapters.paddleclas import PaddleClasClassifier, is_paddleclas_dir
    from .runtime.devices import use_device

    if args.device:  # checked first: Paddle ends the process on a GPU that is not there
        use_device(args.device)
    if is_paddleclas_dir(args.model):  # PaddleX 3 / PaddleClas: not a paddlex 2 model
        return PaddleClasClassifier(args.model)
    import paddlex

    return paddlex.load_model(args.model, with_net=with_net)


def _dataset(args, model):
    """The dataset of ``--dataset``: a ``paddlex.datasets.ImageNet`` for a PaddleX 2 model and
    its lists, else ``(image, label)`` pairs of the directory's lists (PaddleX 3 / PaddleClas or
    PaddleX 2 layout), else the folder of images."""
    from .api.datasets import dataset_from_dir

    root = args.dataset
    file_list = os.path.join(root, args.file_list)
    transforms = getattr(model, "test_transforms", None)
    if os.path.exists(file_list) and transforms is not None:
        import paddlex

        return paddlex.datasets.ImageNet(data_dir=root, file_list=file_list,
                                         label_list=os.path.join(root, args.label_list),
                                         transforms=transforms, shuffle=False)
    if os.path.exists(file_list):
        return dataset_from_dir(root, args.file_list, args.label_list)[0]
    return dataset_from_dir(root)[0]


def _summary(exp):
    label = int(exp.labels[0])
    return {"png": getattr(exp, "png_path", None), "npz": getattr(exp, "npz_path", None),
            "predicted": exp.label_name(exp.predicted_label),
            "probability": round(exp.predicted_probability, 4),
            "explained": [exp.label_name(l) for l in exp.labels],
            "fill": exp.settings.get("fill_chosen", exp.settings.get("fill")),
            "top_superpixels": _top_with_error_bars(exp, label),
            "certified_top": exp.certified_top(5, label),
            "num_samples_used": exp.settings.get("num_samples_used")}


def _top_with_error_bars(exp, label, k=5):
    """``[[superpixel, weight, standard error], ...]`` of the ``k`` largest ``|weight|``."""
    se = exp.se_for(label)
    return [[s, round(w, 5)] + ([round(float(se[s]), 5)] if se is not None else [])
            for s, w in exp.ranked(label)[:k]]


def _explain_kwargs(args):
    return dict(seed=args.seed, top_k=args.top_k, labels=args.labels, fill=args.fill,
                segmenter=args.segmenter, kernel_width=args.kernel_width,
                progress=args.progress, sampler=args.sampler)


def _gradients(args, model):
    from .api import saliency

    extra = {"gradcam": lambda: dict(target_layer=args.target_layer),
             "smoothgrad": lambda: dict(n_samples=args.n_samples, noise=args.noise),
             "integrated-gradients": lambda: dict(steps=args.steps)}[args.command]()
    fn = getattr(saliency, args.command.replace("-", "_"))
    return fn(args.image, model, args.save_dir, labels=args.labels, top_k=args.top_k,
              segmenter=args.segmenter, seed=args.seed, **extra)


def _occlusion(args, model):
    from .api.occlusion import occlusion

    return occlusion(args.image, model, args.save_dir, labels=args.labels, top_k=args.top_k,
                     cell=args.cell, window=args.window, fill=args.fill,
                     segmenter=args.segmenter, seed=args.seed, batch_size=args.batch_size)


def _watch(args):
    """The watcher in this process (stdout stays for the JSON summary: VisualDL prints there)."""
    import contextlib
    import signal

    _quiet_imports()
    import paddlex_interpret  # noqa: F401  (shims before paddlex)
    from .training.watch import Watcher

    if args.nice:
        with contextlib.suppress(OSError):
            os.nice(args.nice)

    def stop(signum, frame):  # a polite kill stops as Ctrl-C does: nothing left half-written
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    watcher = Watcher(args.run_dir, args.probes, args.dataset, probe_labels=args.probe_labels,
                      logdir=args.logdir, until_epoch=args.until_epoch,
                      idle_timeout=args.idle_timeout, once=args.once, poll_seconds=args.poll,
                      network={"auto": None, "on": True, "off": False}[args.network],
                      device=args.device, num_threads=args.threads,
                      num_samples=args.num_samples, max_images=args.max_images,
                      atlas_max_images=args.atlas_max_images, seed=args.seed, freq=args.freq,
                      normlime=args.normlime, metrics=args.metrics, atlas=args.atlas)
    with contextlib.redirect_stdout(sys.stderr):
        reason = watcher.run_until_done()
    print(json.dumps({"run_dir": watcher.run_dir,
                      "logdir": watcher.state.logdir if watcher.state else None,
                      "stopped": reason,
                      "checkpoints": {k: v["status"] for k, v in sorted(
                          watcher.outcomes().items(), key=lambda kv: kv[1]["epoch"])}}))
    return 0


def _audit(args):
    """The audit of a saved model or an exported inference model (then on its own predictor:
    the test needs predictions only)."""
    from .adapters.deployed import is_deployed_model
    from .api.audit import audit

    deployed = is_deployed_model(args.model)
    model = _load(args, with_net=not deployed)
    result = audit(args.model if deployed else model, _dataset(args, model),
                   max_images=args.max_images, seed=args.seed, flip=args.flip,
                   save_dir=args.save_dir)
    print(json.dumps(result.to_dict()))
    return ALARM_EXIT if args.fail_on_alarm and result.verdict == "alarm" else 0


def _run(args):
    from .api import paddlex13

    if args.command == "watch":
        return _watch(args)
    if args.command == "build-weights" and args.inspect:
        from .core.normlime.weights import GlobalWeights

        gw = GlobalWeights.load(args.out)
        out = {name: [int(c) for c in gw.top_concepts(i, 5)]
               for i, name in enumerate(gw.class_names)}
        print(json.dumps({"mode": gw.mode, "settings": gw.settings, "top_concepts": out},
                         indent=1))
        return 0
    if args.command == "audit":
        return _audit(args)
    model = _load(args)
    if args.command == "lime":
        exp = paddlex13.lime(args.image, model, args.num_samples, args.batch_size,
                             args.save_dir, **_explain_kwargs(args))
    elif args.command == "normlime":
        exp = paddlex13.normlime(args.image, model, _dataset(args, model), args.num_samples,
                                 args.batch_size, args.save_dir, args.weights_file,
                                 mode=args.mode, max_images=args.max_images,
                                 **_explain_kwargs(args))
    elif args.command in GRADIENT_COMMANDS:
        exp = _gradients(args, model)
    elif args.command == "occlusion":
        exp = _occlusion(args, model)
    elif args.command == "glime":
        exp = paddlex13.glime(args.image, model, args.prior, beta=args.beta,
                              num_samples=args.num_samples, batch_size=args.batch_size,
                              save_dir=args.save_dir, **_explain_kwargs(args))
    else:
        from .api.weights import build_normlime_weights

        gw = build_normlime_weights(args.model if args.nproc > 1 else model,
                                    _dataset(args, model), save_path=args.out,
                                    mode=args.mode, max_images=args.max_images, seed=args.seed,
                                    progress=args.progress, nproc=args.nproc)
        print(json.dumps({"weights_file": args.out, "mode": gw.mode,
                          "classes": list(gw.class_names)}))
        return 0
    print(json.dumps(_summary(exp)))
    return 0


def main(argv=None):
    args = build_parser().parse_args(argv)
    level = logging.WARNING if args.quiet else (logging.DEBUG if args.verbose else logging.INFO)
    logging.basicConfig(level=level, format="%(levelname)s %(message)s")
    logger.setLevel(level)
    try:
        _check(args)
        return _run(args)
    except KeyboardInterrupt:
        print("paddlex-interpret: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.debug or not user_error(exc):
            raise
        print("paddlex-interpret: error: %s" % exc, file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
