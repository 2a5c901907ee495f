"""Runs the peer LIME tools in their own environment (bench/.peers-venv, see setup_peers.sh).

Not part of paddlex_interpret and never imports it: bench_speed.py / bench_quality.py write the
model (``paddle.jit.save`` of the very network our side explains: same program, same weights), the
image (uint8 HWC RGB, the image the model sees), the superpixels and the label to a work
directory, and run

    bench/.peers-venv/bin/python bench/peers_runner.py JOB.json OUT.json

JOB.json: ``{"model": prefix, "tasks": [{"tool": "interpretdl_lime" | "interpretdl_glime" |
"interpretdl_lime_inference" | "lime" | "lime_inference", "image": npy, "segments": npy | null, "label": int, "num_samples": N,
"batch_size": B, "seed": s, "prior": npy | null, "reg_force": float}]}``.
OUT.json: per task the wall time of the explanation call, the weights per superpixel (for the
label), the segments used (when the tool computed them) and the process's peak RSS.

How each peer is called (their documented entry points, defaults unless said):

* InterpretDL 0.8 ``LIMECVInterpreter(model, device='cpu', random_seed=seed).interpret(image,
  interpret_class=label, num_samples=N, batch_size=B, visual=False)`` on the model loaded with
  ``paddle.jit.load``; its preprocessing is ImageNet mean/std, the same as PaddleX's ``Normalize``.
  Given superpixels are set on ``interpreter.lime_base.segments`` (its own hook for reuse), and
  ``hide_color=0`` (black, PaddleX 1.3's fill; InterpretDL's ``interpret`` does not expose it)
  is bound on ``lime_base.interpret_instance``.
* InterpretDL 0.8's LIME fits ``Ridge(alpha=0, normalize=True)``; scikit-learn >= 1.2 has no
  ``normalize``: dropped (with ``alpha=0`` it does not change the least-squares solution).
* InterpretDL 0.8's GLIME module imports ``paddle.fluid`` (gone in Paddle 2.6): aliased to
  ``paddle.base`` before the import.
* InterpretDL 0.8 ``GLIMECVInterpreter``: ``interpret(..., prior_method='ridge',
  prior_reg_force=reg_force)``. Its own prior needs ``get_cluster_label``, which downloads
  InterpretDL's pre-trained KMeans + ResNet50 feature extractor (no network here), so the prior
  vector given in the job (our offline NormLIME concept prior for this image) is returned by
  ``cluster_global_weights_to_local_prior`` instead.
* lime 0.2.0.1 ``lime_image.LimeImageExplainer(kernel_width=0.25, random_state=seed)
  .explain_instance(image, classifier_fn, labels=(label,), top_labels=None, hide_color=0,
  num_samples=N, batch_size=B, segmentation_fn=<given superpixels>, random_seed=seed)`` with a
  batched classifier function: ImageNet normalisation, one ``model(x)`` per batch, softmax.
"""
import functools
import json
import os
import resource
import sys
import time

import numpy as np


def load_model(prefix):
    import paddle

    paddle.set_device("cpu")
    model = paddle.jit.load(prefix)
    model.eval()
    return model


MEAN = np.array([0.485, 0.456, 0.406], np.float32).reshape(1, 3, 1, 1)
STD = np.array([0.229, 0.224, 0.225], np.float32).reshape(1, 3, 1, 1)


def lime_classifier_fn(model):
    import paddle

    def fn(images):
        x = (np.asarray(images, np.float32).transpose(0, 3, 1, 2) / 255.0 - MEAN) / STD
        with paddle.no_grad():
            out = model(paddle.to_tensor(x))
        if isinstance(out, (list, tuple)):
            out = out[0]
        return paddle.nn.functional.softmax(out, axis=-1).numpy()

    return fn


def _fluid_alias():
    """InterpretDL 0.8's ``common/paddle_utils.py`` (imported by its GLIME/NormLIME modules) does
    ``import paddle.fluid as fluid``; Paddle 2.6 renamed ``paddle.fluid`` to ``paddle.base``."""
    import paddle
    import paddle.base

    sys.modules.setdefault("paddle.fluid", paddle.base)


def _ridge_shim():
    """InterpretDL 0.8's LIME fits ``Ridge(alpha=0, fit_intercept=True, normalize=True)``;
    scikit-learn 1.2 removed ``normalize``. With ``alpha=0`` (weighted least squares) scaling the
    columns does not change the solution, so the argument is dropped; any other use fails loudly."""
    from interpretdl.interpreter import _lime_base
    from sklearn.linear_model import Ridge

    if getattr(_lime_base.Ridge, "_pxi_shim", False):
        return

    def ridge(*args, normalize=False, **kwargs):
        alpha = kwargs.get("alpha", args[0] if args else 1.0)
        if normalize and alpha != 0:
            raise NotImplementedError("Ridge(normalize=True) with alpha != 0 is not emulated")
        return Ridge(*args, **kwargs)

    ridge._pxi_shim = True
    _lime_base.Ridge = ridge


def run_interpretdl(model, task, image, segments, glime=False):
    _fluid_alias()
    _ridge_shim()
    from interpretdl.interpreter import glime as glime_module
    import interpretdl as it

    seed = int(task["seed"])
    np.random.seed(seed)
    if glime:
        interp = it.GLIMECVInterpreter(model, device="cpu")
        interp.lime_base.random_state = np.random.RandomState(seed)
        prior = np.load(task["prior"]).astype(np.float64)
        interp.set_global_weights({int(task["label"]): {}})  # not used: the prior is injected
        glime_module.cluster_global_weights_to_local_prior = lambda *a, **k: prior
    else:
        interp = it.LIMECVInterpreter(model, device="cpu", random_seed=seed)
    if segments is not None:
        interp.lime_base.segments = segments
    interp.lime_base.interpret_instance = functools.partial(interp.lime_base.interpret_instance,
                                                            hide_color=0)
    kwargs = dict(interpret_class=int(task["label"]), num_samples=int(task["num_samples"]),
                  batch_size=int(task["batch_size"]), visual=False)
    if glime:
        kwargs.update(prior_method="ridge", prior_reg_force=float(task.get("reg_force", 1.0)))
    t = time.perf_counter()
    weights = interp.interpret(image, **kwargs)
    wall = time.perf_counter() - t
    segs = interp.lime_base.segments
    pairs = weights[int(task["label"])]
    return wall, pairs, segs


class InferenceModel:
    """The exported model through Paddle Inference + oneDNN, called like the ``paddle.nn.Layer``
    InterpretDL expects (a tensor in, a tensor of logits out): the ``*_inference`` rows, where
    the peer's explanation is the same but the forward passes are as fast as ours."""

    def __init__(self, prefix):
        import paddle.inference as pi

        program = prefix + (".pdmodel" if os.path.exists(prefix + ".pdmodel") else ".json")
        config = pi.Config(program, prefix + ".pdiparams")
        config.disable_gpu()
        config.enable_mkldnn()
        config.set_cpu_math_library_num_threads(os.cpu_count() or 1)
        config.switch_ir_optim(True)
        config.disable_glog_info()
        self.predictor = pi.create_predictor(config)
        self.inp = self.predictor.get_input_handle(self.predictor.get_input_names()[0])
        self.out = self.predictor.get_output_handle(self.predictor.get_output_names()[0])

    def eval(self):
        return self

    def forward(self, x):
        return self(x)

    def __call__(self, x):
        import paddle

        x = np.ascontiguousarray(x.numpy() if hasattr(x, "numpy") else x, dtype=np.float32)
        self.inp.reshape(list(x.shape))
        self.inp.copy_from_cpu(x)
        self.predictor.run()
        return paddle.to_tensor(self.out.copy_to_cpu())


def inference_classifier_fn(prefix):
    """lime's classifier function over :class:`InferenceModel` (ImageNet normalisation, softmax)
    for the ``lime_inference`` rows: how much of lime's time is its own loop once the model is
    fast."""
    model = InferenceModel(prefix)

    def fn(images):
        x = (np.asarray(images, np.float32).transpose(0, 3, 1, 2) / 255.0 - MEAN) / STD
        z = model(x).numpy()
        z = np.exp(z - z.max(axis=1, keepdims=True))
        return z / z.sum(axis=1, keepdims=True)

    return fn


def run_lime(model, task, image, segments, fn=None):
    from lime import lime_image

    seed = int(task["seed"])
    explainer = lime_image.LimeImageExplainer(kernel_width=0.25, random_state=seed)
    kwargs = dict(labels=(int(task["label"]),), top_labels=None, hide_color=0,
                  num_samples=int(task["num_samples"]), batch_size=int(task["batch_size"]),
                  random_seed=seed)
    if segments is not None:
        kwargs["segmentation_fn"] = lambda img: segments
    fn = fn or lime_classifier_fn(model)
    t = time.perf_counter()
    exp = explainer.explain_instance(image, fn, **kwargs)
    wall = time.perf_counter() - t
    return wall, exp.local_exp[int(task["label"])], exp.segments


def peak_rss_mib():
    """VmHWM of this process (ru_maxrss would include the parent's RSS at fork time)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main():
    job = json.load(open(sys.argv[1]))
    model = load_model(job["model"])
    results = []
    for task in job["tasks"]:
        image = np.load(task["image"])
        segments = np.load(task["segments"]) if task.get("segments") else None
        tool = task["tool"]
        if tool == "interpretdl_lime":
            wall, pairs, segs = run_interpretdl(model, task, image, segments)
        elif tool == "interpretdl_lime_inference":
            fast = InferenceModel(job["model"])
            wall, pairs, segs = run_interpretdl(fast, task, image, segments)
        elif tool == "interpretdl_glime":
            wall, pairs, segs = run_interpretdl(model, task, image, segments, glime=True)
        elif tool == "lime":
            wall, pairs, segs = run_lime(model, task, image, segments)
        elif tool == "lime_inference":
            fn = inference_classifier_fn(job["model"])
            fn(image[None].repeat(int(task["batch_size"]), 0))  # warm-up, as ours is warm
            wall, pairs, segs = run_lime(model, task, image, segments, fn=fn)
        else:
            raise ValueError("unknown tool %r" % tool)
        n = int(np.max(segs)) + 1
        w = np.zeros(n)
        for seg, val in pairs:
            w[int(seg)] = float(val)
        out = dict(task, wall=wall, weights=w.tolist(), n_segments=n, rss_mib=peak_rss_mib())
        if segments is None:
            seg_path = task["image"] + ".%s.segments.npy" % tool
            np.save(seg_path, np.asarray(segs))
            out["segments_out"] = seg_path
        results.append(out)
        print(json.dumps({k: out[k] for k in ("tool", "num_samples", "wall")}), flush=True)
    import interpretdl
    import lime
    import paddle
    import sklearn

    versions = {"interpretdl": interpretdl.__version__, "paddle": paddle.__version__,
                "lime": getattr(lime, "__version__", "0.2.0.1"), "numpy": np.__version__,
                "sklearn": sklearn.__version__, "python": sys.version.split()[0],
                "omp_num_threads": os.environ.get("OMP_NUM_THREADS")}
    with open(sys.argv[2], "w") as f:
        json.dump({"results": results, "versions": versions}, f)


if __name__ == "__main__":
    main()
