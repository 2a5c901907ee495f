"""Quickshift with PaddleX 1.3's settings: scikit-image against ours (numpy alone and with the
compiled kernels), on 1 thread and on all cores, same labels checked on every image.

Images: the speed bench's synthetic image at 224x224 (what ``bench_speed.py`` explains), and three
photos that scikit-image ships (``skimage.data``: astronaut, coffee, chelsea), resized to 224x224
as a PaddleX classifier would see them and at their own size. Best of ``--repeats`` interleaved
runs each. Writes the section "Quickshift: scikit-image vs ours" of BENCHMARKS.md.

    .venv/bin/python -m bench.bench_quickshift        # ~1-2 min on 2 cores
"""
import argparse
import os
import sys
import time


import cv2  # noqa: E402
import numpy as np  # noqa: E402

from bench.report import markdown_table, write_section  # noqa: E402
from paddlex_interpret.core import quickshift as qs  # noqa: E402
from paddlex_interpret.core.segmentation import SEGMENTER_DEFAULTS  # noqa: E402

PARAMS = SEGMENTER_DEFAULTS["quickshift"]


def images():
    import skimage.data

    from bench.bench_lime import make_image

    out = [("synthetic (bench_speed)", cv2.resize(make_image(), (224, 224)))]
    for name in ("astronaut", "coffee", "chelsea"):
        photo = getattr(skimage.data, name)()
        out.append((name + " 224x224", cv2.resize(photo, (224, 224),
                                                   interpolation=cv2.INTER_AREA)))
        out.append(("%s %dx%d" % ((name,) + photo.shape[:2]), photo))
    return out


def timed(fn, repeats):
    best, result = float("inf"), None
    for _ in range(repeats):
        t = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t)
    return best, result


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    t0 = time.time()
    compiled = qs.kernels_available()
    kernels = qs._KERNELS["fns"]
    cores = os.cpu_count() or 1
    rows = []
    for name, image in images():
        ref_t, ref = timed(lambda: qs.skimage_quickshift(image, seed=0, **PARAMS), args.repeats)
        row = [name, ref.max() + 1, "%.3f" % ref_t]
        for use_kernels in (False, True):
            qs._KERNELS["fns"] = kernels if use_kernels else None
            for threads in (1, cores):
                if use_kernels and not compiled:
                    row.append("-")
                    continue
                t, labels = timed(lambda: qs.quickshift(image, rng=0, num_threads=threads,
                                                        **PARAMS), args.repeats)
                if not np.array_equal(labels, ref):
                    raise AssertionError("labels differ from scikit-image's on %s" % name)
                row.append("%.3f (%.1fx)" % (t, ref_t / t))
        qs._KERNELS["fns"] = kernels
        rows.append(row)
        print(row, flush=True)
    header = ["image", "superpixels", "scikit-image (s)", "ours, numpy, 1 thread (s)",
              "ours, numpy, %d threads (s)" % cores, "ours, compiled, 1 thread (s)",
              "ours, compiled, %d threads (s)" % cores]
    body = markdown_table(header, rows) + (
        "\n\nPaddleX 1.3's settings %s; best of %d runs each; the labels equal scikit-image's "
        "on every image (checked in the run; the speed-up over scikit-image in brackets). "
        "'compiled': `paddlex_interpret/core/_kernels.c`, built by `pip install` "
        "where a C compiler exists (%s here); 'numpy': the fallback without it "
        "(`PADDLEX_INTERPRET_QUICKSHIFT_KERNELS=0` forces it). Total %.0f s."
        % (PARAMS, args.repeats, "built" if compiled else "NOT built", time.time() - t0))
    print(body)
    if not args.no_write:
        cmd = "python -m bench.bench_quickshift" + (" " + " ".join(sys.argv[1:])
                                                     if sys.argv[1:] else "")
        write_section("Quickshift: scikit-image vs ours", body, cmd)


if __name__ == "__main__":
    main()
