"""Command line: ``paddlex-interpret lime|normlime|build-weights ...``.

Examples::

    paddlex-interpret lime --model output/best_model --image val/0001.png --num-samples 1000
    paddlex-interpret build-weights --model output/best_model --dataset data/ --file-list val_list.txt \\
        --label-list labels.txt --out normlime_weights.npz
    paddlex-interpret normlime --model output/best_model --image val/0001.png \\
        --dataset data/ --file-list val_list.txt --label-list labels.txt
"""
import argparse
import json
import logging
import sys

__all__ = ["main", "build_parser"]


def _common(p):
    p.add_argument("--model", required=True, help="a saved PaddleX model directory")
    p.add_argument("--num-samples", type=int, default=3000)
    p.add_argument("--batch-size", type=int, default=50)
    p.add_argument("--save-dir", default="./")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--top-k", type=int, default=1)
    p.add_argument("--device", default=None, help="paddle device, e.g. cpu or gpu:0")


def _dataset_args(p, required):
    p.add_argument("--dataset", required=required, help="dataset root (PaddleX ImageNet format)")
    p.add_argument("--file-list", default="val_list.txt", help="relative to --dataset")
    p.add_argument("--label-list", default="labels.txt", help="relative to --dataset")
    p.add_argument("--mode", choices=("fast", "aggregate"), default="fast")
    p.add_argument("--max-images", type=int, default=None)


def build_parser():
    parser = argparse.ArgumentParser(prog="paddlex-interpret",
                                     description="Explain PaddleX image classifiers.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("lime", help="LIME explanation of one image")
    _common(p)
    p.add_argument("--image", required=True)
    p = sub.add_parser("normlime", help="NormLIME explanation of one image")
    _common(p)
    p.add_argument("--image", required=True)
    p.add_argument("--weights-file", default=None, help="NormLIME weights cache")
    _dataset_args(p, required=True)
    p = sub.add_parser("build-weights", help="build (or inspect) a NormLIME weights file")
    p.add_argument("--model", help="a saved PaddleX model directory (to build)")
    p.add_argument("--out", required=True, help="weights file to write, or to inspect")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None)
    p.add_argument("--inspect", action="store_true", help="print the top concepts of --out")
    _dataset_args(p, required=False)
    return parser


def _load(args):
    import paddlex_interpret  # noqa: F401  (shims before paddlex)
    import paddle
    import paddlex

    if args.device:
        paddle.set_device(args.device)
    return paddlex.load_model(args.model)


def _dataset(args, model):
    import os

    import paddlex

    root = args.dataset
    return paddlex.datasets.ImageNet(data_dir=root, file_list=os.path.join(root, args.file_list),
                                     label_list=os.path.join(root, args.label_list),
                                     transforms=model.test_transforms, shuffle=False)


def _summary(exp):
    label = int(exp.labels[0])
    return {"png": getattr(exp, "png_path", None), "npz": getattr(exp, "npz_path", None),
            "predicted": exp.label_name(exp.predicted_label),
            "probability": round(exp.predicted_probability, 4),
            "top_superpixels": [[s, round(w, 5)] for s, w in exp.ranked(label)[:5]]}


def main(argv=None):
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    from .api import paddlex13 as paddlex_api

    if args.command == "build-weights" and args.inspect:
        from .core.normlime import GlobalWeights

        gw = GlobalWeights.load(args.out)
        out = {name: [int(c) for c in gw.top_concepts(i, 5)]
               for i, name in enumerate(gw.class_names)}
        print(json.dumps({"mode": gw.mode, "top_concepts": out}, indent=1))
        return 0
    model = _load(args)
    if args.command == "lime":
        exp = paddlex_api.lime(args.image, model, args.num_samples, args.batch_size,
                               args.save_dir, seed=args.seed, top_k=args.top_k)
    elif args.command == "normlime":
        exp = paddlex_api.normlime(args.image, model, _dataset(args, model), args.num_samples,
                                   args.batch_size, args.save_dir, args.weights_file,
                                   seed=args.seed, top_k=args.top_k)
    else:
        if not args.dataset:
            print("build-weights needs --dataset (or --inspect)", file=sys.stderr)
            return 2
        from .api.weights import build_normlime_weights

        gw = build_normlime_weights(model, _dataset(args, model), save_path=args.out,
                                    mode=args.mode, max_images=args.max_images, seed=args.seed,
                                    progress=True)
        print(json.dumps({"weights_file": args.out, "mode": gw.mode,
                          "classes": list(gw.class_names)}))
        return 0
    print(json.dumps(_summary(exp)))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
