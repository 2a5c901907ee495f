"""Install paddlex_interpret; also drops ``paddlex_interpret-compat.pth`` into site-packages so the
``paddle.fluid`` import alias is active even when a script imports paddlex before us."""
import os

from setuptools import setup
from setuptools.command.build_py import build_py

PTH = "paddlex_interpret-compat.pth"


class BuildPyWithPth(build_py):
    def run(self):
        super().run()
        src = os.path.join(os.path.dirname(os.path.abspath(__file__)), PTH)
        self.copy_file(src, os.path.join(self.build_lib, PTH), preserve_mode=0)

    def get_outputs(self, include_bytecode=1):
        return super().get_outputs(include_bytecode) + [os.path.join(self.build_lib, PTH)]


setup(cmdclass={"build_py": BuildPyWithPth})
