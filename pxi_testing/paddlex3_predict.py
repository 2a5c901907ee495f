"""PaddleX 3's own predictions on images, as JSON: the reference the comparison test holds our
PaddleX 3 / PaddleClas adapter to.

Runs in PaddleX 3's environment (``.venv-paddlex3``: PaddleX 3 and PaddleX 2.1 are both the
``paddlex`` package), as a script, importing nothing of this package::

    .venv-paddlex3/bin/python pxi_testing/paddlex3_predict.py MODEL_DIR IMG [IMG ...]
        [--model-name NAME] [--topk K] [--run-mode paddle|mkldnn] [--cpu-threads N]

It prints one JSON object: ``{"paddlex_version", "paddle_version", "model_name", "run_mode",
"results": [{"input_path", "class_ids", "scores", "label_names", "raw"}]}``.
``class_ids`` / ``scores`` / ``label_names`` are ``paddlex.create_model(...).predict``'s result
(PaddleX's Topk: the top-k network outputs, rounded to 5 decimals, no softmax of its own);
``raw`` is the whole unrounded output row, from the same predictor's own preprocessing and
engine (its ``process`` without the Topk step). Images go one at a time (with a batch, PaddleX
3.7.2 gives every result the whole batch's ``class_ids``). ``--model-name`` defaults to
``Global.model_name`` of ``inference.yml`` (``create_model`` requires the two to agree). PaddleX's
cache (``PADDLE_PDX_CACHE_HOME``) goes to a temporary directory removed at exit unless set. Logs
go to stderr; a bad argument exits with status 2 and one line.
"""
import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile


def _arguments():
    ap = argparse.ArgumentParser(description="PaddleX 3's predictions as JSON")
    ap.add_argument("model_dir")
    ap.add_argument("images", nargs="+")
    ap.add_argument("--model-name", help="default: Global.model_name of inference.yml")
    ap.add_argument("--topk", type=int, default=0, help="0: every class")
    ap.add_argument("--run-mode", default=None, help="paddle or mkldnn (PaddleX's CPU default)")
    ap.add_argument("--cpu-threads", type=int, default=0, help="0: PaddleX's default")
    return ap.parse_args()


def _fail(message):
    print("paddlex3_predict: %s" % message, file=sys.stderr)
    return 2


def _raw_output(predictor, path):
    """The unrounded output row: PaddleX's ``process`` without its Topk step."""
    import numpy as np

    pp = predictor.preprocessors
    imgs = pp["Resize"](imgs=pp["Read"](imgs=[path]))
    if "Crop" in pp:
        imgs = pp["Crop"](imgs=imgs)
    x = pp["ToBatch"](imgs=pp["ToCHW"](imgs=pp["Normalize"](imgs=imgs)))
    return np.asarray(predictor.runner(x=x)[0])[0]


def _predict(args, name, n_labels):
    import numpy as np
    import paddle
    import paddlex

    engine = {k: v for k, v in (("run_mode", args.run_mode),
                                ("cpu_threads", args.cpu_threads)) if v}
    model = paddlex.create_model(model_name=name, model_dir=args.model_dir, device="cpu",
                                 **({"engine_config": engine} if engine else {}))
    predictor = model._predictor
    results = []
    for path in args.images:
        (res,) = list(model.predict(path, batch_size=1, topk=args.topk or n_labels or None))
        results.append({
            "input_path": path,
            "class_ids": [int(c) for c in np.asarray(res["class_ids"]).reshape(-1)],
            "scores": [float(s) for s in np.asarray(res["scores"]).reshape(-1)],
            "label_names": [str(n) for n in res["label_names"]],
            "raw": [float(v) for v in _raw_output(predictor, path)]})
    runner = getattr(predictor.runner, "_config", {}) or {}
    return {"paddlex_version": paddlex.__version__, "paddle_version": paddle.__version__,
            "model_name": name, "run_mode": runner.get("run_mode"),
            "cpu_threads": runner.get("cpu_threads"), "results": results}


def main():
    args = _arguments()
    config_path = os.path.join(args.model_dir, "inference.yml")
    if not os.path.isfile(config_path):
        return _fail("no inference.yml in %s" % args.model_dir)
    missing = [p for p in args.images if not os.path.isfile(p)]
    if missing:
        return _fail("no such image: %s" % missing[0])
    import yaml

    with open(config_path, encoding="utf-8") as f:
        config = yaml.safe_load(f)
    name = args.model_name or (config.get("Global") or {}).get("model_name")
    if not name:
        return _fail("inference.yml has no Global.model_name; give --model-name")
    labels = ((config.get("PostProcess") or {}).get("Topk") or {}).get("label_list") or []
    cache = None
    if "PADDLE_PDX_CACHE_HOME" not in os.environ:
        cache = os.environ["PADDLE_PDX_CACHE_HOME"] = tempfile.mkdtemp(prefix="paddlex3-cache-")
    try:
        with contextlib.redirect_stdout(sys.stderr):  # PaddleX and Paddle print to stdout
            out = _predict(args, name, len(labels))
    finally:
        if cache is not None:
            shutil.rmtree(cache, ignore_errors=True)
    json.dump(out, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
