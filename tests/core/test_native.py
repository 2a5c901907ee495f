"""The optional compiled kernels (``core/_kernels.c`` loaded by ``core/native.py``): built where a
C compiler exists, refused when stale, switched off by the environment, and, built the portable
way (what other compilers and CPUs get: no CPU-specific clones, no fma), giving the same labels
and inputs as the tested build."""
import importlib.machinery
import os
import shutil
import subprocess
import sysconfig

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from paddlex_interpret.core import native
from paddlex_interpret.core import quickshift as qs
from paddlex_interpret.core.perturbation import compose_normalised, sample_masks


def _compiler():
    cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
    return shutil.which(cc)


def _check_exp(fn):
    x = -np.random.default_rng(0).random(100000) * 720
    x[:4] = [0.0, -1e-300, -700.0, -1e200]
    out = np.empty_like(x)
    fn(x.ctypes.data, len(x), out.ctypes.data)
    ref = np.exp(np.maximum(x, -700.0))
    assert out[0] == 1.0 and out[3] == ref[2] > 0
    np.testing.assert_allclose(out, ref, rtol=2 * np.finfo(np.float64).eps, atol=0)


def test_kernels_are_built_where_a_c_compiler_exists():
    """`pip install` builds the optional kernels when it can; a silent build failure would leave
    every user on the slower numpy path."""
    if not _compiler():
        pytest.skip("no C compiler here")
    assert native.available()
    assert sorted(native.kernels()) == ["compose", "density", "exp", "link"]


def test_kernel_exp_matches_numpy_to_two_ulp():
    if not native.available():
        pytest.skip("the compiled kernels are not built")
    _check_exp(native.kernels()["exp"])


def test_environment_variables_turn_the_kernels_off(monkeypatch):
    monkeypatch.delitem(qs._KERNELS, "fns", raising=False)  # forget the loaded kernels (restored)
    monkeypatch.setenv("PADDLEX_INTERPRET_QUICKSHIFT_KERNELS", "0")
    assert qs.kernels_available() is False
    monkeypatch.delenv("PADDLEX_INTERPRET_QUICKSHIFT_KERNELS")
    monkeypatch.setenv("PADDLEX_INTERPRET_KERNELS", "0")
    assert native.load() is None


def test_a_stale_kernel_build_is_not_called(monkeypatch, caplog):
    """A library built from another version of the C file (other signatures) must be refused, not
    called with the wrong arguments, and the user told through the package logger."""
    if not native.available():
        pytest.skip("the compiled kernels are not built")
    monkeypatch.setattr(native, "ABI", -1)
    with pytest.warns(RuntimeWarning, match="stale build"), \
            caplog.at_level("WARNING", logger="paddlex_interpret"):
        assert native.load() is None
    assert "stale build" in caplog.text


def test_the_portable_build_gives_the_same_labels_and_inputs(tmp_path, monkeypatch):
    """The C file built with -DPXI_PORTABLE (the code paths without target clones and fma, which
    this machine's GCC 12 build never runs) must give scikit-image's labels, the exp within 2 ulp
    and the same composed inputs as numpy."""
    cc = _compiler()
    if not cc:
        pytest.skip("no C compiler here")
    src = os.path.join(os.path.dirname(native.__file__), "_kernels.c")
    lib = str(tmp_path / ("_kernels" + importlib.machinery.EXTENSION_SUFFIXES[0]))
    subprocess.run([cc, "-O2", "-shared", "-fPIC", "-ffp-contract=off", "-DPXI_PORTABLE", src,
                    "-o", lib], check=True, capture_output=True)
    fns = native.load([lib])
    assert fns is not None
    _check_exp(fns["exp"])

    monkeypatch.setitem(qs._KERNELS, "fns", fns)
    rng = np.random.default_rng(5)
    smooth = (gaussian_filter(rng.random((60, 70, 3)), (3, 3, 0)) * 765).clip(0, 255)
    for image in (smooth.astype(np.uint8), rng.integers(0, 256, (40, 36, 3)).astype(np.uint8)):
        params = dict(kernel_size=5, max_dist=10, ratio=1.0, sigma=1)
        np.testing.assert_array_equal(qs.quickshift(image, rng=0, **params),
                                      qs.skimage_quickshift(image, seed=0, **params))

    monkeypatch.setitem(native._STATE, "fns", fns)
    seg = (np.arange(30 * 40).reshape(30, 40) // 7 % 45).astype(np.int32)
    img, fill = rng.normal(size=(2, 3, 30, 40)).astype(np.float32)
    masks = sample_masks(70, 45, rng)  # 32 + 32 + 6 images
    np.testing.assert_array_equal(compose_normalised(img, fill, seg, masks, method="kernel"),
                                  compose_normalised(img, fill, seg, masks, method="numpy"))
