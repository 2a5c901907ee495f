"""A PaddleX 3 / PaddleClas exported classifier (``inference.yml`` + program + weights), written
by hand with ``paddle.jit.save``: the preprocessing of its ``inference.yml`` as PaddleX 3 runs it,
its class names, probabilities whatever the program ends in, clear errors for what PaddleX 3's
classifier does not run, and the prediction-only methods on it (the gradient ones say why not).
PaddleX 3's own predictions are compared in test_paddlex3_parity.py."""
import json
import os
import shutil

import numpy as np
import pytest

from helpers import CLAS_OPS, make_clas_dir
from paddlex_interpret.adapters.paddleclas import PaddleClasClassifier, program_files
from paddlex_interpret.adapters.program import paddle_version
from paddlex_interpret.errors import UnsupportedModelError

PHOTO = os.path.join(os.path.dirname(__import__("skimage").__file__), "data", "chelsea.png")
PADDLE3 = int(paddle_version().split(".")[0]) >= 3


@pytest.fixture(scope="module")
def clas_dir(tmp_path_factory):
    return make_clas_dir(tmp_path_factory.mktemp("clas") / "inference")


def test_the_view_and_inputs_are_paddlex3s_arithmetic(clas_dir):
    """chelsea.png is 451 x 300: resize_short 256 gives 385 x 256 (Python's round), the centre
    crop starts at (80, 16); normalisation is x * (scale / std) + (-mean / std) in float32."""
    import cv2

    clf = PaddleClasClassifier(clas_dir[0])
    rgb = cv2.imread(PHOTO, cv2.IMREAD_COLOR)[:, :, ::-1]
    assert rgb.shape[:2] == (300, 451)
    expect_view = cv2.resize(np.ascontiguousarray(rgb), (385, 256),
                             interpolation=cv2.INTER_LINEAR)[16:240, 80:304]
    view = clf.view(PHOTO)
    assert np.array_equal(view, expect_view)
    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    expect = np.empty((3, 224, 224), np.float32)
    for c in range(3):
        x = view[..., c].astype(np.float32)
        x *= 0.00392156862745098 / std[c]
        x += -mean[c] / std[c]
        expect[c] = x
    assert np.array_equal(clf.preprocess(view[None])[0], expect)


def test_resize_short_rounds_half_to_even(tmp_path):
    ops = [{"ResizeImage": {"resize_short": 256}}] + CLAS_OPS[2:]
    clf = PaddleClasClassifier(make_clas_dir(tmp_path / "m", ops=ops, side=256)[0])
    assert clf.view(np.zeros((512, 513, 3), np.uint8)).shape == (256, 256, 3)  # round(256.5)
    assert clf.view(np.zeros((512, 515, 3), np.uint8)).shape == (256, 258, 3)  # round(257.5)


def test_names_probabilities_and_the_checkpoint_directory(tmp_path):
    path, net = make_clas_dir(tmp_path / "best_model" / "inference")
    clf = PaddleClasClassifier(str(tmp_path / "best_model"))  # the checkpoint: its inference/
    assert clf.model_dir == path and clf.label_names == ["cat", "coffee", "rocket"]
    assert clf.head == "softmax"
    import paddle

    view = clf.view(PHOTO)
    logits = net(paddle.to_tensor(clf.preprocess(view[None]))).numpy()
    expect = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    probs = clf.predict(view[None])
    assert np.abs(probs - expect).max() < 1e-5 and probs.argmax() == expect.argmax()


def test_a_program_without_softmax_gives_probabilities_too(tmp_path):
    with_sm = PaddleClasClassifier(make_clas_dir(tmp_path / "sm")[0])
    logits = PaddleClasClassifier(make_clas_dir(tmp_path / "logits", softmax=False)[0])
    assert logits.head != "softmax"
    views = np.stack([with_sm.view(PHOTO), with_sm.view(np.full((90, 60, 3), 200, np.uint8))])
    a, b = with_sm.predict(views), logits.predict(views)
    assert np.allclose(b.sum(axis=1), 1.0) and np.abs(a - b).max() < 1e-5


@pytest.mark.parametrize("ops,named", [
    ([{"ResizeImage": {"resize_short": 256}}, {"RandCropImage": {"size": 224}}] + CLAS_OPS[2:],
     "'RandCropImage'"),
    (CLAS_OPS[:2] + CLAS_OPS[3:], "NormalizeImage"),
    ([{"ResizeImage": {"resize_short": 256, "keep_ratio": True}}] + CLAS_OPS[1:], "keep_ratio"),
    ([{"ResizeImage": {"resize_short": 256, "backend": "cv2", "interpolation": "bilinear"}}]
     + CLAS_OPS[1:], "'bilinear'"),
    (CLAS_OPS[:2] + [{"NormalizeImage": {"order": "chw"}}, CLAS_OPS[3]], "order"),
])
def test_what_paddlex3_does_not_run_is_named(tmp_path, ops, named):
    path, _ = make_clas_dir(tmp_path / "m", ops=ops)
    with pytest.raises(UnsupportedModelError, match=named.replace("(", r"\(")):
        PaddleClasClassifier(path)


def test_a_gpu_that_this_paddle_cannot_use_is_an_error(clas_dir):
    import paddle

    if paddle.is_compiled_with_cuda():
        pytest.skip("a GPU build of Paddle")
    with pytest.raises(ValueError, match="no GPU support"):
        PaddleClasClassifier(clas_dir[0], device="gpu:0")


def test_a_multi_label_model_or_a_feature_extractor_is_refused(tmp_path):
    ml, _ = make_clas_dir(tmp_path / "ml", post={"MultiLabelThreshOutput": {"threshold": 0.5}})
    with pytest.raises(UnsupportedModelError, match="multi-label"):
        PaddleClasClassifier(ml)
    rec, _ = make_clas_dir(tmp_path / "rec", post={"NormalizeFeatures": None})
    with pytest.raises(UnsupportedModelError, match="feature extractor"):
        PaddleClasClassifier(rec)


def test_a_paddle3_program_is_refused_on_paddle2_before_paddle_reads_it(tmp_path):
    """On Paddle 2.x an inference.json program crashes the process: refused first, by name. A
    file that is no program at all shows that nothing read it."""
    d = tmp_path / "m"
    make_clas_dir(d)
    for name in ("inference.pdmodel", "inference.json"):
        if (d / name).exists():
            os.remove(d / name)
    (d / "inference.json").write_text("not a program")
    if PADDLE3:
        pytest.skip("Paddle %s reads inference.json programs" % paddle_version())
    with pytest.raises(UnsupportedModelError, match=r"inference\.json is a Paddle 3 .*"
                                                    r"PaddlePaddle >= 3\.0"):
        PaddleClasClassifier(str(d))


def test_prediction_methods_work_and_gradient_methods_say_why_not(clas_dir, tmp_path):
    import paddlex_interpret as pxi

    exp = pxi.lime(PHOTO, clas_dir[0], num_samples=40, save_dir=str(tmp_path), seed=0)
    assert exp.image.shape == (224, 224, 3) and os.path.isfile(exp.png_path)
    again = pxi.lime(PHOTO, clas_dir[0], num_samples=40, save_dir=str(tmp_path), seed=0)
    assert np.array_equal(exp.weights, again.weights)
    occ = pxi.occlusion(PHOTO, clas_dir[0], cell=28)
    assert occ.maps.shape == (1, 224, 224) and occ.settings["method"] == "occlusion"
    with pytest.raises(UnsupportedModelError, match="predictions only"):
        pxi.gradcam(PHOTO, clas_dir[0])


def test_the_command_line_takes_the_directory(clas_dir, tmp_path, capsys, monkeypatch):
    from paddlex_interpret.cli import main

    # the command quiets import noise in the environment of the processes it starts: keep
    # this process's as it was for the tests that follow
    for name in ("PYTHONWARNINGS", "GLOG_minloglevel"):
        monkeypatch.setenv(name, os.environ.get(name, ""))

    assert main(["lime", "--model", clas_dir[0], "--image", PHOTO, "--num-samples", "30",
                 "--save-dir", str(tmp_path), "--quiet"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["predicted"] in ("cat", "coffee", "rocket")
    assert main(["gradcam", "--model", clas_dir[0], "--image", PHOTO, "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "predictions only" in err[0]


def test_a_directory_that_is_not_a_model_says_what_is_missing(tmp_path):
    d = tmp_path / "inference"
    make_clas_dir(d)
    os.remove(program_files(str(d))[1])
    with pytest.raises(UnsupportedModelError, match="inference.pdiparams"):
        PaddleClasClassifier(str(d))
    shutil.rmtree(d)
    with pytest.raises(FileNotFoundError):
        __import__("paddlex_interpret").lime(PHOTO, str(d))
