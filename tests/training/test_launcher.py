"""The hook under Paddle's own launcher: ``python -m paddle.distributed.launch --nproc_per_node 2``
runs ``examples/train_multicard.py`` (a tiny PaddleX classifier, data parallel over two CPU
processes, gloo), as multi-card PaddleX users run their training."""
import glob
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from paddlex_interpret.core.normlime.weights import GlobalWeights

from helpers import read_run, steps

pytestmark = pytest.mark.slow  # two processes under the launcher, each training

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLE = os.path.join(ROOT, "examples", "train_multicard.py")

#: a training script that is the example with a weights builder failing at the first checkpoint
FAILING_SCRIPT = r'''
import sys
sys.path.insert(0, %(examples)r)
import train_multicard as example
from paddlex_interpret.hooks import ExplainHook


def failing_builder(context):
    if context.epoch == 1:
        raise RuntimeError("builder broke at epoch 1")
    return None


def make_hook(args, probes):
    return ExplainHook(probes, num_samples=args.num_samples, max_images=args.max_images,
                       seed=args.seed, background=False, metrics=False,
                       weights_builder=failing_builder)


example.main(hook_factory=make_hook)
'''


def launch(tmp_path, script, *args, timeout=420):
    """Run ``script`` on two CPU ranks with the launcher; ``(ranks' summaries, logs)``."""
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=ROOT)
    env.pop("CUDA_VISIBLE_DEVICES", None)  # an empty value leaves the launcher no device list
    cmd = [sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", "2",
           "--log_dir", str(tmp_path / "log"), script, "--out", str(out)] + list(args)
    proc = subprocess.run(cmd, cwd=str(tmp_path), env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, timeout=timeout)
    logs = {os.path.basename(p): open(p, errors="replace").read()
            for p in glob.glob(str(tmp_path / "log" / "workerlog.*"))}
    assert proc.returncode == 0, (proc.stdout.decode("utf8", "replace")[-2000:]
                                  + "\n".join(v[-3000:] for v in logs.values()))
    ranks = [json.loads((out / ("rank%d.json" % r)).read_text()) for r in (0, 1)]
    return out, ranks, logs


def record_files(run_dir):
    return [f for f in os.listdir(run_dir) if "vdlrecords" in f]


#: the example with rank 1's BatchNorm statistics moved far from rank 0's after every evaluation.
#: PaddleX has no SyncBatchNorm, so the ranks' statistics differ by themselves (by up to 2.7 in a
#: 2-rank run); this makes the difference large enough to change rank 1's predictions, so a share
#: built on rank 1's own network instead of the saved one cannot give the one-process bits.
SKEWED_SCRIPT = r'''
import sys
sys.path.insert(0, %(examples)r)
import paddle
import paddle.distributed as dist
import paddlex as pdx
import train_multicard as example

make_model = pdx.cls.MobileNetV3_small


def skewed_model(*args, **kwargs):
    model = make_model(*args, **kwargs)
    evaluate = model.evaluate

    def skewed_evaluate(*a, **k):
        result = evaluate(*a, **k)
        if dist.get_rank() == 1:
            for layer in model.net.sublayers():
                if isinstance(layer, paddle.nn.layer.norm._BatchNormBase):
                    layer._mean.set_value(layer._mean.numpy() + 3.0)
        return result

    model.evaluate = skewed_evaluate  # the hook wraps this one: the skew comes before its build
    return model


pdx.cls.MobileNetV3_small = skewed_model
example.main()
'''


def launch_skewed(tmp_path, *args):
    script = tmp_path / "skewed.py"
    script.write_text(SKEWED_SCRIPT % {"examples": os.path.dirname(EXAMPLE)})
    return launch(tmp_path, str(script), *args)


def test_the_hook_under_the_launcher(tmp_path):
    out, ranks, _ = launch_skewed(tmp_path, "--epochs", "2")
    # both ranks trained to the same weights; only rank 0 explained, in its worker process
    assert [r["world"] for r in ranks] == [2, 2]
    assert ranks[0]["weights"] == ranks[1]["weights"]
    assert ranks[0]["epochs"] == [1, 2] and ranks[0]["errors"] == 0
    assert ranks[1]["epochs"] == []
    # PaddleX's multi-card evaluation ran (its all_reduce, fixed in compat) and gave a number
    assert 0.0 <= ranks[0]["accuracy"] <= 1.0
    train = out / "train"
    for epoch in (1, 2):
        assert os.path.isfile(str(train / ("epoch_%d" % epoch) / "normlime_weights.npz"))
    assert not os.path.exists(str(train / "best_model" / "normlime_weights.npz"))
    # one record file of PaddleX's (rank 1 trains with use_vdl=False) and one of ours
    assert len(record_files(str(train / "vdl_log"))) == 1
    assert len(record_files(str(train / "vdl_log" / "explain"))) == 1
    curves = read_run(str(train / "vdl_log"))
    assert any("Eval" in tag for tag in curves.get_tags().get("scalar", []))
    explain = read_run(str(train / "vdl_log" / "explain"))
    assert steps(explain, "image", "explain/probe_0/lime") == [1, 2]
    # every rank built its share of each checkpoint's weights on the model rank 0 saved (rank
    # 1's own network reads other statistics): the bits of one process on that checkpoint
    for epoch in (1, 2):
        assert_one_process_bits(out, train / ("epoch_%d" % epoch), "fast", expect_images=12)


def test_aggregate_weights_under_the_launcher_are_the_saved_checkpoint_s(tmp_path):
    out, ranks, _ = launch_skewed(tmp_path, "--epochs", "1", "--normlime-mode", "aggregate",
                                  "--max-images", "6", "--num-samples", "60")
    assert ranks[0]["epochs"] == [1] and ranks[0]["errors"] == 0
    assert_one_process_bits(out, out / "train" / "epoch_1", "aggregate", expect_images=6,
                            max_images=6, num_samples=60)


def assert_one_process_bits(out, checkpoint, mode, expect_images, **options):
    shared = GlobalWeights.load(str(checkpoint / "normlime_weights.npz"))
    assert shared.info["ranks"] == 2
    one = one_process_weights(out, checkpoint, normlime_mode=mode, **options)
    assert shared.info["n_images"] == one.info["n_images"] == expect_images
    assert shared.codebook.fingerprint() == one.codebook.fingerprint()
    assert np.array_equal(shared.weights, one.weights), np.abs(shared.weights - one.weights).max()


def one_process_weights(out, checkpoint, **options):
    """The checkpoint's NormLIME weights built here, in one process, as the hook's session
    would (the example's options, the default builder, Paddle Inference)."""
    import paddlex as pdx

    from paddlex_interpret.adapters.paddlex import PaddleXClassifier
    from paddlex_interpret.training.builders import NormLimeBuilder
    from paddlex_interpret.training.options import ExplainOptions
    from paddlex_interpret.training.report import CheckpointContext

    model = pdx.load_model(str(checkpoint))
    data = out / "data"
    T = pdx.transforms
    val = pdx.datasets.ImageNet(str(data), str(data / "val_list.txt"), str(data / "labels.txt"),
                                T.Compose([T.Resize(32), T.Normalize()]))
    clf = PaddleXClassifier(model, backend="inference", num_threads=1)
    settings = dict(dict(num_samples=100, max_images=12, seed=0), **options)
    builder = NormLimeBuilder(ExplainOptions(**settings))
    epoch = int(os.path.basename(str(checkpoint)).split("_")[1])
    return builder(CheckpointContext(epoch=epoch, classifier=clf, dataset=val,
                                     label_names=clf.label_names))


def test_a_failure_inside_the_hook_on_rank_zero_does_not_hang_the_others(tmp_path):
    script = tmp_path / "failing.py"
    script.write_text(FAILING_SCRIPT % {"examples": os.path.dirname(EXAMPLE)})
    out, ranks, logs = launch(tmp_path, str(script), "--epochs", "2")
    assert ranks[0]["weights"] == ranks[1]["weights"]  # both finished training, in step
    assert ranks[0]["epochs"] == [1, 2] and ranks[1]["epochs"] == []
    assert ranks[0]["errors"] == 1
    text = "\n".join(logs.values())
    assert text.count("builder broke at epoch 1") >= 1
    # said once: in rank 0's log (with its traceback), not by rank 1
    assert "builder broke" not in logs.get("workerlog.1", "")
    explain = read_run(str(out / "train" / "vdl_log" / "explain"))
    assert steps(explain, "image", "explain/probe_0/lime") == [1, 2]


#: the example, with rank 1 failing in its share of the NormLIME build at the first checkpoint
RANK_FAILING_SCRIPT = r'''
import sys
sys.path.insert(0, %(examples)r)
import paddle.distributed as dist
import train_multicard as example
from paddlex_interpret.core.normlime import concepts

original = concepts.superpixel_descriptors
calls = []


def failing(*args, **kwargs):
    calls.append(1)
    if dist.get_rank() == 1 and len(calls) == 1:
        raise RuntimeError("rank 1 broke its share")
    return original(*args, **kwargs)


concepts.superpixel_descriptors = failing
example.main()
'''


def test_a_rank_failing_in_the_shared_build_stops_no_one(tmp_path):
    script = tmp_path / "rank_failing.py"
    script.write_text(RANK_FAILING_SCRIPT % {"examples": os.path.dirname(EXAMPLE)})
    out, ranks, logs = launch(tmp_path, str(script), "--epochs", "2")
    assert ranks[0]["weights"] == ranks[1]["weights"]
    assert ranks[0]["epochs"] == [1, 2] and ranks[0]["errors"] == 1
    train = out / "train"
    # epoch 1: no weights (said in VisualDL, with the rank and its error); epoch 2 built again
    assert not (train / "epoch_1" / "normlime_weights.npz").exists()
    assert GlobalWeights.load(str(train / "epoch_2" / "normlime_weights.npz")).info["ranks"] == 2
    explain = read_run(str(train / "vdl_log" / "explain"))
    errors = [r.text.encoded_text_string for r in explain.get_data("text", "explain/errors")]
    assert len(errors) == 1 and "rank 1: RuntimeError: rank 1 broke its share" in errors[0]
