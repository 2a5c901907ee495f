"""paddlex_interpret.io: atomic writes."""
import os
import stat

import pytest

from paddlex_interpret.io import atomic_write


def test_atomic_write_gives_normal_permissions_and_keeps_old_file_on_error(tmp_path):
    path = tmp_path / "f.bin"
    with atomic_write(path) as f:
        f.write(b"old")
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o666 & ~mask
    with pytest.raises(RuntimeError):
        with atomic_write(path) as f:
            f.write(b"new, half")
            raise RuntimeError("interrupted")
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["f.bin"]


def test_stale_temporaries_of_dead_processes_are_removed_by_the_next_write(tmp_path):
    import subprocess
    import sys
    import time

    from paddlex_interpret.io import STALE_SECONDS

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    old = time.time() - STALE_SECONDS - 60
    stale = tmp_path / (".tmp-pxi-%s-abcweights.npz" % dead)          # a crash mid-write
    recent = tmp_path / (".tmp-pxi-%s-defweights.npz" % dead)         # too recent to judge
    alive = tmp_path / (".tmp-pxi-%d-ghiweights.npz" % os.getppid())  # a live writer's
    foreign = tmp_path / ".tmp-someone-else"                            # not ours
    for p in (stale, recent, alive, foreign):
        p.write_bytes(b"half")
    for p in (stale, alive, foreign):
        os.utime(p, (old, old))
    with atomic_write(tmp_path / "weights.npz") as f:
        f.write(b"whole")
    left = sorted(os.listdir(tmp_path))
    assert stale.name not in left
    assert {recent.name, alive.name, foreign.name, "weights.npz"} == set(left)


def test_writable_dir_checks_make_nothing_and_name_the_problem(tmp_path):
    from paddlex_interpret.io import check_writable_dir, ensure_writable_dir

    target = tmp_path / "a" / "b"
    assert check_writable_dir(target) == str(target)
    assert not (tmp_path / "a").exists()  # checked, not made
    a_file = tmp_path / "file"
    a_file.write_text("x")
    for bad in (a_file, a_file / "below"):
        with pytest.raises(NotADirectoryError, match="not a directory"):
            check_writable_dir(bad)
    assert ensure_writable_dir(target) == str(target) and target.is_dir()
