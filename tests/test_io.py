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
