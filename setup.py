"""Install paddlex_interpret; also drops ``paddlex_interpret-compat.pth`` into site-packages so the
``paddle.fluid`` import alias is active even when a script imports paddlex before us.

The compiled kernels (``paddlex_interpret/core/_kernels.c``: quickshift and LIME's input
composition, plain C loaded with ctypes) are optional: without a C compiler the build skips them
and the same numbers come from numpy (quickshift ~3x slower)."""
import os

from setuptools import Extension, setup
from setuptools.command.build_py import build_py

PTH = "paddlex_interpret-compat.pth"


class BuildPyWithPth(build_py):
    def run(self):
        super().run()
        src = os.path.join(os.path.dirname(os.path.abspath(__file__)), PTH)
        self.copy_file(src, os.path.join(self.build_lib, PTH), preserve_mode=0)

    def get_outputs(self, include_bytecode=1):
        return super().get_outputs(include_bytecode) + [os.path.join(self.build_lib, PTH)]


# -ffp-contract=off: the colour distances must round exactly as scikit-image's (the linking
# compares them, with ties); -ffinite-math-only / -fno-signed-zeros only let the clamp vectorise.
KERNELS = Extension(
    "paddlex_interpret.core._kernels",
    sources=["paddlex_interpret/core/_kernels.c"],
    extra_compile_args=["-O3", "-ffp-contract=off", "-ffinite-math-only", "-fno-signed-zeros"],
    optional=True,
)

setup(cmdclass={"build_py": BuildPyWithPth}, ext_modules=[KERNELS])
