"""The optional compiled kernels (``_kernels.c``), loaded with ctypes.

``pip install`` builds ``paddlex_interpret/core/_kernels.c`` (plain C, no Python headers) where a C
compiler exists; without one the package installs anyway and every caller computes the same
numbers with numpy. The library holds quickshift's density and linking
(:mod:`~paddlex_interpret.core.quickshift`) and the composition of LIME's perturbed inputs
(:func:`~paddlex_interpret.core.perturbation.compose_normalised`). ctypes releases the GIL for
the length of each call.

``PADDLEX_INTERPRET_KERNELS=0`` in the environment turns the library off (numpy everywhere);
``PADDLEX_INTERPRET_QUICKSHIFT_KERNELS=0`` turns it off for quickshift only.

A library built from another version of ``_kernels.c`` (its ``pxi_abi_version()`` differs from
:data:`ABI`) is refused with a ``RuntimeWarning`` rather than called with other arguments.

Example::

    >>> from paddlex_interpret.core import native
    >>> native.kernels() is None or "compose" in native.kernels()
    True
"""
from __future__ import annotations

import ctypes
import glob
import importlib.machinery
import logging
import os
import warnings
from typing import Any, Sequence

__all__ = ["ABI", "kernels", "available", "load"]

#: The calling convention this package expects of the library (``pxi_abi_version()``).
ABI = 4

_STATE: dict[str, Any] = {}


def _signatures() -> dict[str, tuple[str, list[Any], Any]]:
    vp, i32, i64, f64 = ctypes.c_void_p, ctypes.c_int32, ctypes.c_int64, ctypes.c_double
    return {
        "density": ("pxi_qs_density", [vp, i32, i64, vp, vp, i32, f64, vp, vp, i64, i64, i64],
                    ctypes.c_int),
        "link": ("pxi_qs_link", [vp, i32, i64, vp, vp, vp, vp, i32, i64, i64, vp, vp],
                 ctypes.c_int),
        "exp": ("pxi_qs_exp", [vp, i64, vp], None),
        "compose": ("pxi_compose", [vp, vp, i32, i64, vp, vp, i32, i32, vp, vp, vp],
                    ctypes.c_int),
    }


def library_paths() -> list[str]:
    """The built library files next to this module (normally one)."""
    here = os.path.dirname(os.path.abspath(__file__))
    return [p for suffix in importlib.machinery.EXTENSION_SUFFIXES
            for p in sorted(glob.glob(os.path.join(here, "_kernels" + suffix)))]


def load(paths: Sequence[str] | None = None) -> dict[str, Any] | None:
    """``{name: ctypes function}`` (``density``, ``link``, ``exp``, ``compose``) from the first
    usable library of ``paths`` (default :func:`library_paths`, the built one), or None when it
    is not built, fails to load, is a stale build, or ``PADDLEX_INTERPRET_KERNELS=0``. Not
    cached: see :func:`kernels`."""
    if os.environ.get("PADDLEX_INTERPRET_KERNELS", "1") == "0":
        return None
    for path in library_paths() if paths is None else paths:
        try:
            lib = ctypes.CDLL(path)
            abi = lib.pxi_abi_version
        except (OSError, AttributeError):
            continue
        abi.restype = ctypes.c_int
        if abi() != ABI:
            message = ("%s is a stale build (ABI %d, expected %d): numpy runs instead until it "
                       "is rebuilt (pip install .)" % (path, abi(), ABI))
            # the logger too: import paddlex switches Python warnings off
            logging.getLogger("paddlex_interpret").warning("%s", message)
            warnings.warn(message, RuntimeWarning)
            continue
        fns = {}
        try:
            for name, (symbol, argtypes, restype) in _signatures().items():
                fn = getattr(lib, symbol)
                fn.argtypes, fn.restype = argtypes, restype
                fns[name] = fn
        except AttributeError:
            continue
        return fns
    return None


def kernels() -> dict[str, Any] | None:
    """The loaded kernels (:func:`load`, once per process), or None."""
    if "fns" not in _STATE:
        _STATE["fns"] = load()
    return _STATE["fns"]


def available() -> bool:
    """Whether the compiled kernels are in use."""
    return kernels() is not None
