"""What a watcher reads of a run directory: which checkpoints are complete (PaddleX 3 /
PaddleClas: ``epoch_N/epoch_N.info.json``, written last; PaddleX 2: ``.success``, written last)
and when training has ended. The files are laid out as the trainers write them (names and
order: pxi_testing/paddleclas_run.py for PaddleClas's, PaddleX 2.1's BaseModel.save_model)."""
import json
import os

from paddlex_interpret.training.run_dir import PaddleClasRun, PaddleX2Run, detect_run


def _touch(path, text=""):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def _paddleclas_checkpoint(root, name, info=True, epoch=1):
    d = os.path.join(root, name)
    for f in (name + ".pdparams", name + ".pdopt", name + ".pdstates",
              "inference/inference.json", "inference/inference.pdiparams",
              "inference/inference.yml"):
        _touch(os.path.join(d, f), "x")
    if info:
        _touch(os.path.join(d, name + ".info.json"), json.dumps({"metric": 0.5, "epoch": epoch}))


def test_a_paddleclas_checkpoint_is_complete_once_its_info_is_written(tmp_path):
    root = str(tmp_path)
    assert detect_run(root) is None and detect_run(str(tmp_path / "absent")) is None
    _touch(os.path.join(root, "epoch_1", "epoch_1.pdparams"), "x")
    assert detect_run(root) is None  # only weights so far: either trainer
    _paddleclas_checkpoint(root, "epoch_1", info=False)
    run = detect_run(root)
    assert isinstance(run, PaddleClasRun) and [c.complete for c in run.checkpoints()] == [False]
    _paddleclas_checkpoint(root, "epoch_1")
    _paddleclas_checkpoint(root, "epoch_10", epoch=10)
    cks = run.checkpoints()
    assert [(c.name, c.complete) for c in cks] == [("epoch_1", True), ("epoch_10", True)]
    assert "inference/inference.json" in cks[0].files and cks[0].signature() is not None
    os.remove(os.path.join(root, "epoch_1", "inference", "inference.yml"))
    assert cks[0].signature() is None


def test_a_paddleclas_run_ends_at_its_last_epoch_or_done_flag(tmp_path):
    root = str(tmp_path)
    _paddleclas_checkpoint(root, "epoch_1")
    _touch(os.path.join(root, "config.yaml"), "Global:\n  epochs: 2\n")
    run = detect_run(root)
    assert run.last_epoch() == 2 and run.ended() is None
    _touch(os.path.join(root, "latest", "latest.info.json"), '{"metric": 1, "epoch": 1}')
    assert run.ended() is None
    _touch(os.path.join(root, "latest", "latest.info.json"), '{"metric": 1, "epoch": 2}')
    assert "epoch 2" in run.ended()
    os.remove(os.path.join(root, "latest", "latest.info.json"))
    _touch(os.path.join(root, "train_results.json"), '{"done_flag": true}')
    assert "done_flag" in run.ended()
    assert run.default_logdir() == os.path.join(root, "watch")


def test_a_paddlex2_checkpoint_is_complete_with_success(tmp_path):
    root = str(tmp_path)
    d = os.path.join(root, "epoch_2")
    for f in ("model.pdparams", "model.pdopt", "model.yml"):
        _touch(os.path.join(d, f), "x")
    run = detect_run(root)
    assert isinstance(run, PaddleX2Run) and not run.checkpoints()[0].complete
    _touch(os.path.join(d, ".success"))
    assert run.checkpoints()[0].complete and run.checkpoints()[0].epoch == 2
    assert run.ended() is None and run.last_epoch() is None
    assert run.default_logdir() == os.path.join(root, "vdl_log", "watch")
