"""paddlex_interpret.runtime.distributed: a rank's helper processes and PaddleX's arguments."""
from paddlex_interpret.runtime import distributed


def test_a_helper_process_of_a_rank_is_not_a_rank():
    env = {"PADDLE_TRAINER_ID": "1", "PADDLE_TRAINERS_NUM": "2", "PADDLE_MASTER": "h:1",
           "PADDLE_TRAINER_ENDPOINTS": "a,b", "PATH": "/bin", "FLAGS_x": "1"}
    clean = distributed.single_process_env(env)
    assert clean == {"PATH": "/bin", "FLAGS_x": "1"}
    assert env["PADDLE_TRAINER_ID"] == "1"  # a copy: the rank's own environment is unchanged


def test_other_ranks_train_without_visualdl(monkeypatch):
    params = {"num_epochs": 2, "train_dataset": "t", "use_vdl": True, "save_dir": "o"}
    monkeypatch.setattr(distributed, "get_rank", lambda: 0)
    assert distributed.quiet_other_ranks(params, (2, "t"), {"use_vdl": True}) == \
        ((2, "t"), {"use_vdl": True})
    monkeypatch.setattr(distributed, "get_rank", lambda: 1)
    assert distributed.quiet_other_ranks(params, (2, "t"), {}) == ((2, "t"), {"use_vdl": False})
    # given by position: replaced in place, the other positions kept
    assert distributed.quiet_other_ranks(params, (2, "t", True, "o"), {}) == \
        ((2, "t", False, "o"), {})
