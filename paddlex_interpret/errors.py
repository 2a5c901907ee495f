"""Errors raised by paddlex_interpret, each naming the problem.

All subclass a built-in exception (``ValueError``/``TypeError``) so generic handlers still work;
:func:`user_error` tells a mistake in what the caller gave (the command line prints one line for
those) from a failure of the program (a traceback).
"""
from __future__ import annotations

__all__ = ["ImageReadError", "UnsupportedModelError", "NormLimeCacheError", "DatasetError",
           "UsageError", "DeviceError", "user_error"]


class ImageReadError(ValueError):
    """An image file exists but cannot be decoded, or an array is not an image."""


class UnsupportedModelError(TypeError):
    """The model is not a PaddleX classifier this package can explain (detector, no transforms...)."""


class NormLimeCacheError(ValueError):
    """A NormLIME weights file is corrupt or was built for something else."""


class DatasetError(ValueError):
    """A dataset given for NormLIME is empty or does not match the model."""


class UsageError(ValueError):
    """A command-line argument that cannot be used (named in the message)."""


class DeviceError(UsageError):
    """A device that is not a Paddle device name, or a GPU this process cannot use (a CPU build
    of Paddle, no card visible, an index past the visible cards)."""


def user_error(exc: BaseException) -> bool:
    """Whether ``exc`` is about the caller's input (a bad path, number, image, model, dataset or
    weights file), as opposed to a failure of the program."""
    return isinstance(exc, (ValueError, UnsupportedModelError, FileNotFoundError,
                            IsADirectoryError, NotADirectoryError, PermissionError))
