"""Composing LIME's perturbed model inputs: the compiled kernel, OpenCV and numpy, and the memory
copy that bounds them, on one thread, bits checked equal.

What LIME does for every batch before the forward pass: a ``(B, 3, H, W)`` float32 batch where
each pixel comes from the normalised image or the normalised fill, by its superpixel's bit in the
mask row (:func:`paddlex_interpret.core.perturbation.compose_normalised`). Inputs: the speed
bench's image at 224x224 (its PaddleX 1.3 quickshift superpixels) and at 448x448, batches of 50
random masks, black fill. Best of ``--repeats`` interleaved runs of ``--batches`` batches each.
Also times the weights fingerprint LIME takes once per explanation (MobileNetV3_small), the way it
is now (tensors read in place) against copying every tensor to numpy first. Writes the section
"Composing the perturbed inputs" of BENCHMARKS.md.

    .venv/bin/python -m bench.bench_compose        # ~30 s
"""
import argparse
import os
import sys
import time
import zlib

os.environ.setdefault("OMP_NUM_THREADS", "1")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from bench.report import markdown_table, write_section  # noqa: E402
from paddlex_interpret.core import native  # noqa: E402
from paddlex_interpret.core.fill import make_fill  # noqa: E402
from paddlex_interpret.core.perturbation import (COMPOSE_METHODS,  # noqa: E402
                                                 compose_normalised, perturb, sample_masks)
from paddlex_interpret.core.segmentation import make_segmenter  # noqa: E402

cv2.setNumThreads(1)


def best_of(fn, repeats):
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def copy_fingerprint(layer):
    """The former fingerprint, kept for comparison: state_dict, a numpy copy of every tensor."""
    crc, adler = 0, 1
    for name, tensor in layer.state_dict().items():
        arr = np.ascontiguousarray(tensor.numpy())
        head = ("%s|%s|%s;" % (name, arr.shape, arr.dtype)).encode()
        view = memoryview(arr).cast("B") if arr.size else b""
        crc = zlib.crc32(view, zlib.crc32(head, crc))
        adler = zlib.adler32(view, zlib.adler32(head, adler))
    return crc, adler


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--batches", type=int, default=10)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    t0 = time.time()
    from bench.bench_lime import make_image

    mean = np.array([0.485, 0.456, 0.406], np.float32)
    std = np.array([0.229, 0.224, 0.225], np.float32)
    rows = []
    methods = [m for m in COMPOSE_METHODS
               if m != "auto" and (m != "kernel" or native.available())]
    for size in (224, 448):
        image = cv2.resize(make_image(), (size, size))
        seg = make_segmenter("quickshift")(image)
        d = int(seg.max()) + 1
        fill = make_fill(image, seg, "black")
        planes = [((x.astype(np.float32) / 255 - mean) / std).transpose(2, 0, 1).copy()
                  for x in (image, fill)]
        masks = sample_masks(50, d, np.random.default_rng(0))
        out = np.empty((50, 3, size, size), np.float32)
        expect = ((perturb(image, fill, seg, masks).astype(np.float32) / 255 - mean) / std
                  ).transpose(0, 3, 1, 2)
        for m in methods:
            np.testing.assert_array_equal(
                compose_normalised(planes[0], planes[1], seg, masks, method=m), expect)
        copy_src = np.broadcast_to(planes[0], out.shape)
        jobs = {m: (lambda m=m: [compose_normalised(planes[0], planes[1], seg, masks, out=out,
                                                    method=m) for _ in range(args.batches)])
                for m in methods}
        jobs["copy"] = lambda: [np.copyto(out, copy_src) for _ in range(args.batches)]
        times = {k: float("inf") for k in jobs}
        for r in range(args.repeats):
            for k in (list(jobs) if r % 2 == 0 else list(jobs)[::-1]):
                times[k] = min(times[k], best_of(jobs[k], 1))
        per_image = {k: v / (args.batches * 50) * 1e6 for k, v in times.items()}
        rows.append(["%dx%d, %d superpixels" % (size, size, d)]
                    + ["%.0f" % per_image[m] if m in per_image else "-"
                       for m in ("kernel", "cv2", "numpy", "copy")]
                    + ["%.1fx" % (per_image["cv2"] / per_image["kernel"])
                       if "kernel" in per_image else "-"])
        print(rows[-1], flush=True)
    table = markdown_table(["image", "compiled kernel (us/image)", "OpenCV (us/image)",
                            "numpy (us/image)", "plain copy of the image (us/image)",
                            "kernel vs OpenCV"], rows)

    import paddlex_interpret  # noqa: F401
    from bench.bench_lime import make_model
    from paddlex_interpret.runtime.fingerprint import parameter_fingerprint

    net = make_model("MobileNetV3_small").net
    fp = {"in place": lambda: parameter_fingerprint(net), "copies": lambda: copy_fingerprint(net)}
    for f in fp.values():
        f()
    fp_ms = {k: float("inf") for k in fp}
    for r in range(args.repeats):
        for k in (list(fp) if r % 2 == 0 else list(fp)[::-1]):
            fp_ms[k] = min(fp_ms[k], best_of(fp[k], 3) * 1e3)
    print(fp_ms, flush=True)
    body = (table + "\n\nOne thread (OMP_NUM_THREADS=1, cv2.setNumThreads(1)); batches of 50 "
            "masks, black fill; best of %d interleaved runs of %d batches; every method's "
            "output equal, bit for bit, to PaddleX's Normalize of the perturbed uint8 images "
            "(checked in the run). 'plain copy' is np.copyto of the normalised image into the "
            "batch: no selection at all, the memory traffic alone. The kernel: 32 images per "
            "pass over the label map (one lookup per pixel per 32 images), then one "
            "vectorised select per output plane, written front to back; it runs without the "
            "GIL."
            "\n\nThe weights fingerprint LIME takes once per explanation (MobileNetV3_small, "
            "214 tensors, 11.8 MB, CRC-32 + Adler-32): %.1f ms with the tensors read in place "
            "(named parameters and buffers, ctypes views of data_ptr()), %.1f ms with "
            "state_dict and a numpy copy of each tensor (before). Total %.0f s."
            % (args.repeats, args.batches, fp_ms["in place"], fp_ms["copies"],
               time.time() - t0))
    print(body)
    if not args.no_write:
        cmd = "python -m bench.bench_compose" + ("" if sys.argv[1:] == [] else " " +
                                                 " ".join(sys.argv[1:]))
        write_section("Composing the perturbed inputs", body, cmd)


if __name__ == "__main__":
    main()
