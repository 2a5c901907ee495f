"""The watcher's rules that need no model: when it stops without a checkpoint to explain, what
it refuses, and how its progress file cuts back a record file left half-written (real files,
no Paddle)."""
import json
import os
import subprocess
import time

import pytest

from paddlex_interpret.training.watch import Watcher
from paddlex_interpret.training.watch_state import STATE_FILE, WatchState


def test_it_stops_after_the_idle_time_even_before_a_run_appears(tmp_path):
    w = Watcher(str(tmp_path / "not_yet"), ["probe.png"], idle_timeout=0.3, poll_seconds=0.05)
    t = time.monotonic()
    assert w.run_until_done() == "no new checkpoint for 0 s"
    assert time.monotonic() - t >= 0.3 and w.outcomes() == {}
    once = Watcher(str(tmp_path / "not_yet"), ["probe.png"], once=True)
    assert once.run_until_done().startswith("nothing to watch")


def test_a_checkpoint_that_never_completes_waits_until_the_idle_time(tmp_path):
    ck = tmp_path / "epoch_1"
    ck.mkdir()
    for f in ("model.pdparams", "model.yml"):  # PaddleX 2 without its .success
        (ck / f).write_text("x")
    w = Watcher(str(tmp_path), ["probe.png"], idle_timeout=0.3, poll_seconds=0.05,
                logdir=str(tmp_path / "log"))
    assert w.run_until_done().startswith("no new checkpoint")
    assert w.outcomes() == {} and w.run.kind == "paddlex2"


def test_what_it_refuses(tmp_path):
    with pytest.raises(ValueError, match="max_overhead"):
        Watcher(str(tmp_path), ["p.png"], max_overhead=0.2)
    with pytest.raises(TypeError, match="unknown explanation option"):
        Watcher(str(tmp_path), ["p.png"], num_sample=10)
    state = WatchState.open(str(tmp_path), "/run", "paddlex3", {"options": {"a": 1}})
    state.save()
    with pytest.raises(ValueError, match="other settings"):
        WatchState.open(str(tmp_path), "/run", "paddlex3", {"options": {"a": 2}})
    with pytest.raises(ValueError, match="not of /other"):
        WatchState.open(str(tmp_path), "/other", "paddlex3", {"options": {"a": 1}})


def test_the_records_of_a_stopped_checkpoint_are_cut_off(tmp_path):
    state = WatchState.open(str(tmp_path), "/run", "paddlex3", {})
    records = tmp_path / state.data["records_file"]
    records.write_bytes(b"first checkpoint")
    state.finish("epoch_1", 1, "explained", alarm_state={"streak": {"2": 1}})
    with open(records, "ab") as f:
        f.write(b"half of the second")
    gone = subprocess.Popen(["true"])
    gone.wait()  # a process that has ended: its temporary is an orphan
    stale = tmp_path / (".tmp-pxi-%d-state.json" % gone.pid)
    stale.write_text("{")
    again = WatchState.open(str(tmp_path), "/run", "paddlex3", {})
    assert again.trim_records() == len(b"half of the second")
    assert records.read_bytes() == b"first checkpoint" and not stale.exists()
    data = json.loads((tmp_path / STATE_FILE).read_text())
    assert data["checkpoints"]["epoch_1"]["status"] == "explained"
    assert data["alarm_state"] == {"streak": {"2": 1}} and again.counts() == (1, 1)
    assert again.trim_records() == 0 and os.path.getsize(records) == data["records_bytes"]
