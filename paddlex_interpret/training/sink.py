"""Where a checkpoint's report goes: a VisualDL record file (rank 0 only).

VisualDL shows one record file per directory (the newest), so the sink appends to the file
another writer of the same run made (:attr:`VisualDLSink.log_files`) instead of starting a new
one: the training process and the hook's worker process write one run together.

Example::

    from paddlex_interpret.training.sink import VisualDLSink
    sink = VisualDLSink("output/vdl_log/explain")
    sink.write(report)
    sink.close()
"""
import contextlib
import logging
import os
import re

import numpy as np

from ..runtime.modes import get_rank

__all__ = ["VisualDLSink", "tag_part"]

logger = logging.getLogger("paddlex_interpret")


def tag_part(name: object, default: str) -> str:
    """``name`` as one part of a VisualDL tag (a probe's or a class's name): every run of
    characters other than letters, digits, ``_``, ``.`` and ``-`` becomes one ``_`` (a ``/``
    would nest the tag), without leading or trailing ``_``; ``default`` when nothing is left.

    >>> tag_part("my probe/1", "probe"), tag_part("T-shirt/top", "0"), tag_part("%%", "3")
    ('my_probe_1', 'T-shirt_top', '3')
    """
    return re.sub(r"[^A-Za-z0-9_.\-]+", "_", str(name)).strip("_") or default


class VisualDLSink:
    """A ``visualdl.LogWriter`` per log directory, made on first use, on rank 0 only.

    Args:
        logdir: the default directory (None: nothing is written unless a call names one).
    """

    def __init__(self, logdir=None):
        self.logdir = logdir
        self._writer = None
        self._writer_dir = None
        #: ``{logdir: record file name}``: where the writer appends instead of a new file
        self.log_files = {}

    def writer(self, logdir=None):
        """The writer for ``logdir`` (default the sink's), or None when there is no directory
        or this is not rank 0."""
        logdir = logdir or self.logdir
        if logdir is None or get_rank() != 0:
            return None
        logdir = os.path.abspath(os.fspath(logdir))
        if self._writer is not None and self._writer_dir != logdir:
            self.close()
        if self._writer is None:
            from visualdl import LogWriter

            os.makedirs(logdir, exist_ok=True)
            self._writer = LogWriter(logdir=logdir, file_name=self.log_files.get(logdir, ""))
            self._writer_dir = logdir
        return self._writer

    @property
    def log_file(self):
        """The path of the record file being written, or None."""
        if self._writer is None:
            return None
        try:
            return os.path.join(self._writer_dir, os.path.basename(self._writer.file_name))
        except Exception:
            return None

    def write(self, report, logdir=None):
        """Log a :class:`~paddlex_interpret.training.report.CheckpointReport`: images, finite
        scalars, texts and errors, step = its epoch."""
        writer = self.writer(logdir)
        if writer is None:
            return
        step = int(report.epoch)
        for tag, img in report.images.items():
            writer.add_image(tag=tag, img=img, step=step)
        for tag, value in report.scalars.items():
            if np.isfinite(value):
                writer.add_scalar(tag=tag, value=float(value), step=step)
        for tag, text in report.texts.items():
            writer.add_text(tag=tag, text_string=text, step=step)
        if report.errors:
            writer.add_text(tag="explain/errors", text_string="\n\n".join(report.errors),
                            step=step)
        writer.flush()

    def write_error(self, message, step, logdir=None):
        """Log one error text right away (best effort)."""
        with contextlib.suppress(Exception):
            writer = self.writer(logdir)
            if writer is not None:
                writer.add_text("explain/errors", message, step=int(step or 0))
                writer.flush()

    def flush(self):
        if self._writer is not None:
            with contextlib.suppress(Exception):
                self._writer.flush()

    def close(self):
        """Flush and close the writer (a new one is made if the sink is used again)."""
        if self._writer is not None:
            with contextlib.suppress(Exception):
                self._writer.close()
        self._writer = None
        self._writer_dir = None
