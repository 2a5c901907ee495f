"""The PaddleX 1.3 facade (paddlex_interpret.api.paddlex13): ``paddlex.interpret`` *is* this
package's API, whichever of ``paddlex`` and ``paddlex_interpret`` is imported first."""
import subprocess
import sys

import pytest

import paddlex_interpret
from helpers import ROOT


def test_paddlex_interpret_is_our_api(pdx):
    assert pdx.interpret.lime is paddlex_interpret.lime
    assert pdx.interpret.normlime is paddlex_interpret.normlime


@pytest.mark.parametrize("order", ["paddlex_first", "plugin_first"])
def test_import_order_in_a_fresh_interpreter(order):
    first, second = ("paddlex", "paddlex_interpret") if order == "paddlex_first" else \
        ("paddlex_interpret", "paddlex")
    code = ("import %s, %s, paddlex, paddlex_interpret, paddlex.interpret as pi; "
            "assert paddlex.interpret.lime is paddlex_interpret.lime is pi.lime; "
            "import paddle; print('ok', paddle.__version__)" % (first, second))
    out = subprocess.run([sys.executable, "-W", "ignore", "-c", code], capture_output=True,
                         text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "ok" in out.stdout
