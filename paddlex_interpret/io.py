"""Files written so that nothing is lost: atomic writes, directories checked before work starts
and made only when something is written, and no temporary left behind for ever.

* :func:`atomic_write` writes into a temporary file beside the target, then renames it over the
  target: readers never see a half-written PNG, cache or explanation, and an interrupted write
  leaves the old file intact. Its temporaries are named ``.tmp-pxi-<pid>-...``; the next write
  into a directory removes those of processes that are gone, once they are
  :data:`STALE_SECONDS` old (a crash or ``kill -9`` mid-write leaves one).
* :func:`check_writable_dir` says, before any work, whether files could be written under a
  directory, without making it; :func:`ensure_writable_dir` makes it when something is written.

Example::

    >>> import os, tempfile
    >>> from paddlex_interpret.io import atomic_write
    >>> d = tempfile.mkdtemp(); p = os.path.join(d, "a.txt")
    >>> with atomic_write(p, "w") as f:
    ...     _ = f.write("hello")
    >>> open(p).read()
    'hello'
"""
from __future__ import annotations

import contextlib
import os
import re
import tempfile
import time
from typing import IO, Any, Iterator

__all__ = ["atomic_write", "check_writable_dir", "ensure_writable_dir", "remove_stale_temporaries",
           "STALE_SECONDS"]

#: A temporary of a dead process is removed once it is this old.
STALE_SECONDS = 300
_PREFIX = ".tmp-pxi-"
_OURS = re.compile(r"^\.tmp-pxi-(\d+)-")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists (another user's) or cannot tell: keep its file
    return True


def remove_stale_temporaries(directory: str, now: float | None = None) -> list[str]:
    """Remove this package's temporaries in ``directory`` whose process is gone and that are at
    least :data:`STALE_SECONDS` old; returns the names removed."""
    now = time.time() if now is None else now
    removed: list[str] = []
    try:
        names = os.listdir(directory)
    except OSError:
        return removed
    for name in names:
        m = _OURS.match(name)
        if m is None or int(m.group(1)) == os.getpid() or _alive(int(m.group(1))):
            continue
        path = os.path.join(directory, name)
        with contextlib.suppress(OSError):
            if now - os.stat(path).st_mtime >= STALE_SECONDS:
                os.unlink(path)
                removed.append(name)
    return removed


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary file next to ``path``; on success rename it over ``path``."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    remove_stale_temporaries(directory)
    fd, tmp = tempfile.mkstemp(prefix="%s%d-" % (_PREFIX, os.getpid()),
                               suffix=os.path.basename(path), dir=directory)
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        # mkstemp creates 0600 files: give the result the mode a plain open() would have.
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def check_writable_dir(path: str, what: str = "save_dir") -> str:
    """Raise unless files could be written under ``path``; makes nothing.

    Raises:
        NotADirectoryError: ``path``, or a directory above it, exists and is not a directory.
        PermissionError: the nearest existing directory above it cannot be written to.
    """
    path = os.path.abspath(os.fspath(path))
    probe = path
    while not os.path.exists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    if not os.path.isdir(probe):
        raise NotADirectoryError("%s %r: %r is not a directory" % (what, path, probe))
    if not os.access(probe, os.W_OK | os.X_OK):
        raise PermissionError("%s %r is not writable (%r cannot be written to)"
                              % (what, path, probe))
    return path


def ensure_writable_dir(path: str, what: str = "save_dir") -> str:
    """Create ``path`` if needed (after :func:`check_writable_dir`) and return it.

    Raises:
        NotADirectoryError: ``path`` or a directory above it is a file.
        PermissionError: the directory cannot be created or written to.
    """
    check_writable_dir(path, what)
    path = os.fspath(path)
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as exc:
        raise PermissionError("%s %r is not writable: %s" % (what, path, exc)) from exc
    return path
