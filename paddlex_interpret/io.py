"""Atomic file writes: a temporary file in the target directory, then ``os.replace``.

Readers never see a half-written PNG, cache or explanation; an interrupted write leaves the old
file (if any) intact.

Example::

    >>> import os, tempfile
    >>> from paddlex_interpret.io import atomic_write
    >>> d = tempfile.mkdtemp(); p = os.path.join(d, "a.txt")
    >>> with atomic_write(p, "w") as f:
    ...     _ = f.write("hello")
    >>> open(p).read()
    'hello'
"""
import contextlib
import os
import tempfile

__all__ = ["atomic_write", "ensure_writable_dir"]


@contextlib.contextmanager
def atomic_write(path, mode="wb"):
    """Open a temporary file next to ``path``; on success rename it over ``path``."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=os.path.basename(path), dir=directory)
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


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def ensure_writable_dir(path, what="save_dir"):
    """Create ``path`` if needed and check that files can be written there.

    Raises:
        NotADirectoryError: ``path`` exists and is not a directory.
        PermissionError: the directory cannot be created or written to.
    """
    path = os.fspath(path)
    if os.path.exists(path) and not os.path.isdir(path):
        raise NotADirectoryError("%s %r exists and is not a directory" % (what, path))
    try:
        os.makedirs(path, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".probe-", dir=path)
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise PermissionError("%s %r is not writable: %s" % (what, path, exc)) from exc
    return path
