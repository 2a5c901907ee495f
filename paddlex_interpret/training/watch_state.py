"""The watcher's progress, kept so that a watcher started again goes on where the last one stopped:
every checkpoint explained once, and nothing half-written left in its VisualDL log.

One JSON file in the watcher's log directory (``watch_state.json``, written atomically after each
checkpoint) holds: the run and the settings the log was made with (a watcher with other settings
is refused: one log, one set of settings), the VisualDL record file and its length after the last
finished checkpoint, each checkpoint's outcome (``explained``, ``failed`` with the reason,
``skipped``), the NormLIME weights file of each, and the shortcut alarm's memory.

A checkpoint's VisualDL records are appended to the one record file (VisualDL shows one per
directory) and flushed, then its length goes into the state. A watcher stopped in the middle of a
checkpoint (Ctrl-C, a kill) may leave part of that checkpoint's records at the end of the file:
the next start cuts the file back to the length the state holds (:meth:`WatchState.trim_records`),
so the checkpoint is written again whole, once.

Example::

    state = WatchState.open("output/watch", run_dir="output", kind="paddlex3",
                            settings={"num_samples": 300})
    state.trim_records()
    state.finish("epoch_1", 1, "explained", weights_file="...", alarm_state={})
"""
import json
import os
import time
from typing import Any, Dict, Optional

from ..io import atomic_write, remove_stale_temporaries, STALE_SECONDS

__all__ = ["WatchState", "STATE_FILE", "STATE_VERSION"]

STATE_FILE = "watch_state.json"
STATE_VERSION = 1


class WatchState:
    """The progress of one watched run (see the module docstring)."""

    def __init__(self, logdir: str, data: Dict[str, Any]):
        self.logdir = logdir
        self.data = data

    @property
    def path(self) -> str:
        return os.path.join(self.logdir, STATE_FILE)

    @classmethod
    def open(cls, logdir: str, run_dir: str, kind: str,
             settings: Dict[str, Any]) -> "WatchState":
        """The state in ``logdir`` (a new one when there is none). Raises ``ValueError`` when the
        log there was made of another run, or with other settings."""
        logdir = os.path.abspath(logdir)
        path = os.path.join(logdir, STATE_FILE)
        data = None
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
            if data.get("version") != STATE_VERSION:
                raise ValueError("%s was written by another version of the watcher (%r); give "
                                 "another log directory" % (path, data.get("version")))
            if data["run_dir"] != run_dir or data["kind"] != kind:
                raise ValueError("%s holds the watch of %s (%s), not of %s: give another log "
                                 "directory" % (path, data["run_dir"], data["kind"], run_dir))
            if data["settings"] != settings:
                changed = sorted(k for k in set(data["settings"]) | set(settings)
                                 if data["settings"].get(k) != settings.get(k))
                raise ValueError("%s holds a watch made with other settings (%s differ): give "
                                 "another log directory, or the same settings to go on"
                                 % (path, ", ".join(changed)))
        else:
            data = {"version": STATE_VERSION, "run_dir": run_dir, "kind": kind,
                    "settings": settings, "records_file": "vdlrecords.%010d.log" % time.time(),
                    "records_bytes": 0, "checkpoints": {}, "alarm_state": {}}
        return cls(logdir, data)

    @property
    def records_path(self) -> str:
        return os.path.join(self.logdir, self.data["records_file"])

    def trim_records(self) -> int:
        """Cut the record file back to its length after the last finished checkpoint (the
        records of one stopped half-way); returns the bytes removed. Also removes this package's
        temporaries that a killed watcher left in the log directory."""
        if os.path.isdir(self.logdir):
            remove_stale_temporaries(self.logdir, now=time.time() + STALE_SECONDS)
            weights = os.path.join(self.logdir, "normlime")
            if os.path.isdir(weights):
                remove_stale_temporaries(weights, now=time.time() + STALE_SECONDS)
        try:
            size = os.path.getsize(self.records_path)
        except OSError:
            return 0
        keep = int(self.data["records_bytes"])
        if size <= keep:
            return 0
        with open(self.records_path, "r+b") as f:
            f.truncate(keep)
        return size - keep

    def done(self, name: str) -> bool:
        return name in self.data["checkpoints"]

    def outcome(self, name: str) -> Optional[Dict[str, Any]]:
        return self.data["checkpoints"].get(name)

    def counts(self):
        """``(checkpoints seen, checkpoints explained)`` so far (the schedule goes on from them)."""
        done = self.data["checkpoints"].values()
        return (sum(1 for d in done if d["status"] != "skipped"),
                sum(1 for d in done if d["status"] == "explained"))

    def finish(self, name: str, epoch: int, status: str, **fields) -> None:
        """Record a checkpoint's outcome, with the record file's length now, atomically."""
        try:
            self.data["records_bytes"] = os.path.getsize(self.records_path)
        except OSError:
            pass
        if fields.get("alarm_state"):
            self.data["alarm_state"] = fields.pop("alarm_state")
        fields.pop("alarm_state", None)
        self.data["checkpoints"][name] = dict(fields, epoch=int(epoch), status=status)
        self.save()

    def save(self) -> None:
        os.makedirs(self.logdir, exist_ok=True)
        with atomic_write(self.path, "w") as f:
            json.dump(self.data, f, indent=1, sort_keys=True, default=str)
