"""paddlex_interpret.runtime.devices: device names checked before anything runs (a GPU that is not
there is a one-line error, not Paddle's hard exit), no CUDA call from a process on the CPU, the
environment of a process started on a device, and batches from the memory a device has left.

Run on every stack; on the GPU build (``PADDLE_STACK=paddlegpu``, no card here) the "no GPU"
errors are the build's real ones (``device_count() == 0``)."""
import logging
import subprocess
import sys

import pytest

import paddlex_interpret  # noqa: F401  (before paddlex)
from helpers import ROOT
from paddlex_interpret.errors import DeviceError, UsageError
from paddlex_interpret.runtime import devices

pytestmark = pytest.mark.device


def no_gpu_reason():
    """What this build says about a GPU here: a CPU build, or a CUDA build that sees no card."""
    import paddle

    if not paddle.is_compiled_with_cuda():
        return "CPU build"
    assert paddle.device.cuda.device_count() == 0  # the machines this runs on have no card
    return "no GPU is visible"


def test_device_names_are_checked_and_normalised():
    assert devices.check_device("cpu") == "cpu"
    assert devices.check_device(" CPU ") == "cpu"
    for bad in ("cuda:0", "gpu0", "gpu:x", "tpu", ""):
        with pytest.raises(DeviceError, match="use 'cpu', 'gpu' or 'gpu:N'"):
            devices.check_device(bad)
    assert issubclass(DeviceError, UsageError) and issubclass(DeviceError, ValueError)


@pytest.mark.parametrize("name", ["gpu", "gpu:0", "gpu:3"])
def test_a_gpu_that_is_not_there_is_an_error_naming_why(name):
    import paddle

    before = paddle.get_device()
    with pytest.raises(DeviceError) as err:
        devices.use_device(name)  # paddle.set_device alone would end this process
    message = str(err.value)
    assert repr(name) in message and no_gpu_reason() in message and "\n" not in message
    assert paddle.get_device() == before == "cpu"
    assert devices.gpu_count() == 0


def test_the_fallback_logs_the_error_and_gives_the_cpu(caplog):
    with caplog.at_level(logging.ERROR, logger="paddlex_interpret"):
        assert devices.device_or_cpu("gpu:1", "explanations: worker_device") == "cpu"
        assert devices.device_or_cpu("cpu", "explanations: worker_device") == "cpu"
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1, errors
    assert "worker_device" in errors[0] and "'gpu:1'" in errors[0] and "CPU" in errors[0]


def test_no_cuda_call_from_a_process_on_the_cpu(monkeypatch):
    """The training-state guard and the cache release make no CUDA call when the current place
    is the CPU, on a CUDA build too (where the guard used to take every card's RNG state and
    empty every card's cache). The CUDA entry points are replaced by ones that record a call:
    no card here could show a context being opened."""
    import paddle

    from paddlex_interpret.runtime.modes import preserve_training_state, release_device_memory

    calls = []
    monkeypatch.setattr(paddle, "get_cuda_rng_state", lambda *a: calls.append("rng") or [])
    monkeypatch.setattr(paddle.device.cuda, "empty_cache", lambda *a: calls.append("cache"))
    assert paddle.get_device() == "cpu" and not devices.on_gpu()
    net = paddle.nn.Linear(3, 2)
    with preserve_training_state(net):
        net(paddle.ones([1, 3]))
    release_device_memory()
    devices.empty_cache()
    assert calls == []
    assert devices.layer_device(net) == "cpu"
    assert devices.layer_device(paddle.nn.ReLU()) is None


def test_a_cpu_child_sees_no_card_and_a_gpu_child_its_own():
    parent = {"CUDA_VISIBLE_DEVICES": "2,3", "FLAGS_selected_gpus": "1", "PATH": "/bin"}
    env, inside = devices.child_env("cpu", parent)
    assert (env["CUDA_VISIBLE_DEVICES"], inside) == ("", "cpu")
    assert "FLAGS_selected_gpus" not in env and env["PATH"] == "/bin"
    env, inside = devices.child_env("gpu:1", parent)
    assert (env["CUDA_VISIBLE_DEVICES"], inside) == ("3", "gpu:0")
    env, inside = devices.child_env("gpu:1", {"PATH": "/bin"})
    assert (env["CUDA_VISIBLE_DEVICES"], inside) == ("1", "gpu:0")
    assert parent["CUDA_VISIBLE_DEVICES"] == "2,3"  # the parent's is left as it was


def test_a_process_started_with_the_cpu_environment_sees_no_card():
    env, _ = devices.child_env("cpu")
    code = subprocess.run(
        [sys.executable, "-W", "ignore", "-c",
         "import os, paddle; print(paddle.device.cuda.device_count(), paddle.get_device(), "
         "repr(os.environ['CUDA_VISIBLE_DEVICES']))"],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert code.returncode == 0, code.stderr[-2000:]
    assert code.stdout.split()[-3:] == ["0", "cpu", "''"]


def test_batch_size_rule():
    small = devices.suggest_batch_size((64, 64, 3), device="cpu")
    big = devices.suggest_batch_size((224, 224, 3), device="cpu")
    assert small == 64 and 1 <= big <= 64
    assert devices.suggest_batch_size((4096, 4096, 3), device="cpu") >= 1
    per_image = 224 * 224 * 3 * (1 + 4 * (1 + devices.ACTIVATION_FACTOR))
    budget = min(devices.MEMORY_FRACTION * devices.available_memory("cpu"),
                 devices.MAX_BATCH_BYTES)
    assert big == max(1, min(64, int(budget // per_image)))


def test_gpu_batches_come_from_what_the_card_has_left():
    """The rule on a card, given the memory it has left (a training run holding most of a
    16 GiB card leaves 1 GiB): never more than MEMORY_FRACTION of it, at most 256 images."""
    per_image = 224 * 224 * 3 * (1 + 4 * (1 + devices.ACTIVATION_FACTOR))
    for left in (0, 10 << 20, 1 << 30, 4 << 30, 64 << 30):
        b = devices.suggest_batch_size((224, 224, 3), device="gpu:0", memory=left)
        assert 1 <= b <= 256
        assert b == 1 or b * per_image <= devices.MEMORY_FRACTION * left
    assert devices.suggest_batch_size((224, 224, 3), device="gpu:0", memory=1 << 30) == 9
    assert devices.suggest_batch_size((32, 32, 3), device="gpu:0", memory=64 << 30) == 256
    assert [devices.predictor_pool_mb("gpu:0", memory=m) for m in (8 << 30, 1 << 30, 100 << 20)] \
        == [512, 256, 64]


def test_free_memory_of_a_card_that_is_not_there_is_nothing():
    """Paddle cannot tell a missing card's memory: the batch is 1, not a guess from a total."""
    assert devices.free_memory("gpu:0") == (0, "unknown")
    assert devices.suggest_batch_size((64, 64, 3), device="gpu:0") == 1
    left, source = devices.free_memory("cpu")
    assert left > 0 and source == "MemAvailable"
