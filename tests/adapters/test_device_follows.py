"""The device a classifier is given is where everything of it runs: dygraph, the gradient methods
and Paddle Inference for a live network (by default where its parameters are), the predictor of an
exported model (by default the current Paddle device). A GPU that is not there is an error when
the classifier is made, before anything is loaded or run.

Run on every stack; on the GPU build (``PADDLE_STACK=paddlegpu``, no card here) the errors are the
build's real "no GPU", and the exported model's GPU flag is checked on its real config."""
import numpy as np
import pytest

import paddlex_interpret  # noqa: F401  (before paddlex)
from paddlex_interpret.adapters.deployed import DeployedClassifier, predictor_config
from paddlex_interpret.adapters.gradients import GradientRunner
from paddlex_interpret.adapters.layer import LayerClassifier
from paddlex_interpret.adapters.paddlex import PaddleXClassifier
from paddlex_interpret.errors import DeviceError
from paddlex_interpret.runtime.devices import parameters_elsewhere
from paddlex_interpret.runtime.policy import ModelRunner

pytestmark = pytest.mark.device


@pytest.fixture(scope="module")
def checkpoint(trained_classifier):
    """The session classifier as saved (a fresh copy: nothing here touches the shared one)."""
    import paddlex as pdx

    return pdx.load_model(trained_classifier.best_model_dir)


@pytest.fixture(scope="module")
def images(trained_classifier):
    return [p for p, _, _ in trained_classifier.dataset.val_items()]


@pytest.fixture(scope="module")
def exported(checkpoint, tmp_path_factory):
    d = tmp_path_factory.mktemp("exported")
    checkpoint._export_inference_model(str(d))
    return str(d / "inference_model")


def cuda_build():
    import paddle

    return paddle.is_compiled_with_cuda()


@pytest.mark.parametrize("device", ["gpu", "gpu:0"])
def test_a_missing_gpu_is_an_error_when_the_classifier_is_made(checkpoint, exported, device):
    import paddle

    net = paddle.nn.Sequential(paddle.nn.Flatten(), paddle.nn.Linear(12, 2))
    for make in (lambda: PaddleXClassifier(checkpoint, device=device),
                 lambda: LayerClassifier(net, device=device),
                 lambda: ModelRunner(net, device=device),
                 lambda: DeployedClassifier(exported, device=device)):
        with pytest.raises(DeviceError, match="no GPU is visible" if cuda_build()
                           else "CPU build"):
            make()


def test_a_live_network_runs_where_its_parameters_are(checkpoint, images):
    """Default device: the network's (the CPU here); dygraph, the engine and the gradients all
    run there and agree."""
    clf = PaddleXClassifier(checkpoint, backend="dygraph")
    assert clf.runner.device == "cpu" and clf.runner.elsewhere is None
    image = clf.view(images[0])
    dygraph = clf(image[None])
    engine = PaddleXClassifier(checkpoint, backend="inference", device="cpu")
    np.testing.assert_allclose(engine(image[None]), dygraph, atol=1e-4)
    assert engine.backend_info["device"] == "cpu" and engine.backend_info["onednn"]
    grads = GradientRunner(clf)
    assert grads.device == "cpu"
    assert grads.input_gradients(grads.inputs(image[None]), 0).shape == (1, 3, 64, 64)


def test_a_device_other_than_the_parameters_is_said():
    message = parameters_elsewhere("cpu", "gpu:0")
    assert "'cpu'" in message and "gpu:0" in message and "layer.to('cpu')" in message
    assert parameters_elsewhere("cpu", "cpu") is None and parameters_elsewhere("cpu", None) is None


def test_an_exported_model_runs_on_the_device_asked(exported, images, checkpoint):
    clf = DeployedClassifier(exported)  # the current device: the CPU here
    assert clf.backend_info["device"] == "cpu" and clf.backend_info["onednn"]
    on_cpu = DeployedClassifier(exported, device="cpu")
    image = on_cpu.view(images[1])
    np.testing.assert_allclose(on_cpu(image[None]), clf(image[None]), atol=1e-6)
    np.testing.assert_allclose(on_cpu(image[None]),
                               PaddleXClassifier(checkpoint, backend="dygraph")(image[None]),
                               atol=1e-4)
    import paddlex as pdx

    with pytest.raises(ValueError, match="runs where it was built"):
        DeployedClassifier(pdx.deploy.Predictor(exported), device="cpu")


@pytest.mark.skipif(not cuda_build(), reason="the GPU flag of a config needs the CUDA build")
def test_an_exported_model_asked_for_a_card_gets_a_gpu_config(exported):
    """The predictor config a GPU user gets (the predictor itself needs the card): the card
    asked, a small initial pool (Paddle cannot tell this card's free memory here), no oneDNN
    threads set."""
    from paddlex_interpret.adapters.deployed import program_files

    config, opts = predictor_config(*program_files(exported), "gpu:1")
    assert config.use_gpu() and config.gpu_device_id() == 1
    assert config.memory_pool_init_size_mb() == opts["pool_mb"] == 64
    assert opts == {"device": "gpu:1", "gpu": 1, "pool_mb": 64}
    config, opts = predictor_config(*program_files(exported), "cpu", num_threads=2)
    assert not config.use_gpu() and config.mkldnn_enabled()
    assert opts == {"device": "cpu", "threads": 2, "onednn": True}
