"""Errors raised by paddlex_interpret, each naming the problem.

All subclass a built-in exception (``ValueError``/``TypeError``) so generic handlers still work.
"""

__all__ = ["ImageReadError", "UnsupportedModelError", "NormLimeCacheError", "DatasetError"]


class ImageReadError(ValueError):
    """An image file exists but cannot be decoded, or an array is not an image."""


class UnsupportedModelError(TypeError):
    """The model is not a PaddleX classifier this package can explain (detector, no transforms...)."""


class NormLimeCacheError(ValueError):
    """A NormLIME weights file is corrupt or was built for something else."""


class DatasetError(ValueError):
    """A dataset given for NormLIME is empty or does not match the model."""
