"""LIME wall time against the forward-pass floor, and peak memory against num_samples.

For PaddleX MobileNetV3_small and ResNet50 (random init, 224x224, CPU) and N = 500, 1000:
LIME wall time (segmentation + perturbation + preprocessing + forward + fit), the time of N forward
passes alone at the best batch size measured in the same run (the floor), their ratio, and peak RSS
of a fresh process explaining with N = 500 vs 3000. Writes the "LIME overhead" section of
BENCHMARKS.md.

    .venv/bin/python -m bench.bench_lime                 # full run (~10 min on 2 cores)
    .venv/bin/python -m bench.bench_lime --quick         # MobileNetV3_small only, smaller N
"""
import argparse
import json
import os
import subprocess
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", str(os.cpu_count() or 1))

import numpy as np  # noqa: E402

import paddlex_interpret  # noqa: E402,F401
import paddle  # noqa: E402
import paddlex as pdx  # noqa: E402

from bench.report import markdown_table, write_section  # noqa: E402
from paddlex_interpret.core.lime import LimeExplainer  # noqa: E402
from paddlex_interpret.adapters.paddlex import PaddleXClassifier  # noqa: E402


def make_model(name):
    paddle.seed(0)
    model = getattr(pdx.cls, name)(num_classes=1000)
    T = pdx.transforms
    model.test_transforms = T.Compose([T.ResizeByShort(256), T.CenterCrop(224), T.Normalize()])
    model.labels = ["class_%d" % i for i in range(1000)]
    return model


def make_image(size=256, seed=0):
    """A photo-like test image: smooth colour gradients, a few discs, noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    img = np.stack([120 + 80 * np.sin(3 * xx + c) * np.cos(2 * yy - c) for c in (0, 1, 2)], -1)
    for _ in range(6):
        cy, cx, r = rng.random(3) * [size, size, size / 5] + [0, 0, 10]
        disc = (yy * size - cy) ** 2 + (xx * size - cx) ** 2 < r ** 2
        img[disc] = rng.integers(0, 255, 3)
    img += rng.normal(0, 8, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def forward_throughput(net, n, batch_size, shape=(3, 224, 224)):
    x = paddle.to_tensor(np.random.default_rng(0).normal(size=(batch_size,) + shape)
                         .astype(np.float32))
    net.eval()
    with paddle.no_grad():
        net(x)  # warm-up
        t = time.perf_counter()
        done = 0
        while done < n:
            b = min(batch_size, n - done)
            net(x[:b]).numpy()
            done += b
    return time.perf_counter() - t


def run_model(name, sizes, batch_sizes, probe_images):
    model = make_model(name)
    # This section measures the dygraph path against the dygraph floor; the Paddle Inference
    # backend (the default, backend='auto') is measured by bench/bench_speed.py.
    clf = PaddleXClassifier(model, backend="dygraph")
    image = clf.view(make_image())
    # Best batch size for the bare forward pass.
    speed = {bs: probe_images / forward_throughput(model.net, probe_images, bs)
             for bs in batch_sizes}
    best_bs = max(speed, key=speed.get)
    rows = []
    for n in sizes:
        floor = forward_throughput(model.net, n, best_bs)
        explainer = LimeExplainer(clf, num_samples=n, batch_size=best_bs, seed=0)
        t = time.perf_counter()
        exp = explainer.explain(image)
        wall = time.perf_counter() - t
        timings = explainer.last_timings
        t = time.perf_counter()
        pre = 0.0
        for start in range(0, n, best_bs):
            clf.preprocess(np.repeat(image[None], min(best_bs, n - start), axis=0))
        pre = time.perf_counter() - t
        rows.append({"model": name, "N": n, "batch": best_bs, "lime_s": wall, "floor_s": floor,
                     "ratio": wall / floor, "segment_s": timings["segment"],
                     "fit_s": timings["fit"], "preprocess_s": pre,
                     "n_segments": exp.n_segments, "img_per_s": n / floor})
        print(json.dumps(rows[-1]), flush=True)
    return rows, speed


def rss_child(name, n):
    """Run one explanation in a fresh process; return its peak RSS in MiB (VmHWM: ru_maxrss would
    include this parent's RSS at fork time on Linux)."""
    code = ("import bench.bench_lime as b; "
            "from paddlex_interpret.core.lime import LimeExplainer; "
            "from paddlex_interpret.adapters.paddlex import PaddleXClassifier; "
            "m=b.make_model(%r); c=PaddleXClassifier(m, backend='dygraph'); "
            "LimeExplainer(c, num_samples=%d, batch_size=50, seed=0).explain(c.view(b.make_image())); "
            "print([l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1])"
            % (name, n))
    # from the root, as the bench runs: ``-c`` reads modules from the current directory first
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, "-W", "ignore", "-c", code], capture_output=True,
                         text=True, check=True, cwd=root)
    return int(out.stdout.strip().splitlines()[-1]) / 1024.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    paddle.set_device("cpu")
    if args.quick:
        plan = [("MobileNetV3_small", [200, 400])]
        rss_sizes = (200, 800)
    else:
        plan = [("MobileNetV3_small", [500, 1000]), ("ResNet50", [500, 1000])]
        rss_sizes = (500, 3000)
    rows = []
    speeds = {}
    for name, sizes in plan:
        r, speeds[name] = run_model(name, sizes, batch_sizes=(10, 25, 50), probe_images=100)
        rows += r
    rss = {n: rss_child("MobileNetV3_small", n) for n in rss_sizes}
    table = markdown_table(
        ["model", "N", "batch", "LIME wall (s)", "forward floor (s)", "ratio", "floor img/s",
         "segmentation (s)", "preprocess (s)", "fit (s)", "superpixels"],
        [[r["model"], r["N"], r["batch"], "%.2f" % r["lime_s"], "%.2f" % r["floor_s"],
          "**%.3f**" % r["ratio"], "%.1f" % r["img_per_s"], "%.2f" % r["segment_s"],
          "%.2f" % r["preprocess_s"], "%.3f" % r["fit_s"], r["n_segments"]] for r in rows])
    speed_lines = "\n".join("- %s forward img/s by batch size: %s" % (
        name, ", ".join("%d: %.1f" % (bs, v) for bs, v in sp.items())) for name, sp in speeds.items())
    lo, hi = rss_sizes
    body = (table + "\n\n" + speed_lines + "\n\n"
            + "Peak RSS of a fresh process explaining one image with MobileNetV3_small: "
              "N=%d: %.0f MiB, N=%d: %.0f MiB (ratio %.3f).\n\n" % (lo, rss[lo], hi, rss[hi],
                                                                   rss[hi] / rss[lo])
            + "Dygraph on CPU (backend='dygraph'; the default Paddle Inference backend is in the "
              "section 'Speed vs the floor and the peers') with OMP_NUM_THREADS=%s. The floor is N "
              "forward passes of the bare network on ready tensors at the best batch size; LIME adds segmentation (quickshift, "
              "once per image), composing the perturbed images (one vectorised np.where per "
              "batch), PaddleX's Normalize on each batch and the ridge fit; the columns break that "
              "overhead down." % os.environ.get("OMP_NUM_THREADS"))
    print(body)
    write_section("LIME overhead in dygraph", body, "python -m bench.bench_lime" +
                  (" --quick" if args.quick else ""))


if __name__ == "__main__":
    main()
