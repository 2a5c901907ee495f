#!/usr/bin/env bash
# Create the benchmark-only environment with the peer tools (NOT dependencies of the project):
#   InterpretDL 0.8.0 (LIMECVInterpreter, GLIMECVInterpreter) and lime 0.2.0.1,
# on the same PaddlePaddle (2.6.2 CPU) and Python as the project's .venv.
#
#   bash bench/setup_peers.sh            # -> bench/.peers-venv (gitignored)
#   PEERS_VENV=/tmp/peers bash bench/setup_peers.sh
#
# What had to be worked around (see BENCHMARKS.md, "Peers"):
# * interpretdl 0.8.0 pins `scikit-learn<=0.24`, which has no wheel for Python 3.11 and whose source
#   build fails (setup.py needs pkg_resources/numpy.distutils). It is installed with --no-deps; its
#   real run-time needs (numpy, requests, scikit-image, scikit-learn, tqdm, pillow, opencv,
#   matplotlib, IPython) are installed explicitly, with the current scikit-learn 1.5 and
#   opencv-python-headless instead of opencv-python (same cv2 module, no GUI libraries).
# * interpretdl 0.8.0 does `from IPython.core.display import display, HTML`, removed in IPython 9:
#   ipython<9.
# * numpy is pinned < 2 (PaddlePaddle 2.6.2 is built against NumPy 1.x), hence scipy 1.13,
#   scikit-image 0.24, scikit-learn 1.5 (the newest releases that still support numpy 1.26).
# * lime 0.2.0.1 is an sdist (setup.py): it is built with --no-build-isolation.
# * At run time (bench/peers_runner.py, nothing is patched on disk): InterpretDL's LIME calls
#   `Ridge(alpha=0, normalize=True)` (`normalize` was removed in scikit-learn 1.2; dropped, which
#   does not change a least-squares fit with alpha=0), and its GLIME module imports `paddle.fluid`
#   (aliased to `paddle.base`).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${PEERS_VENV:-$root/bench/.peers-venv}"
python="${PYTHON:-python3}"
stamp="$venv/.peers-stamp"
want="interpretdl==0.8.0 lime==0.2.0.1 paddle262 v1"
if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "$venv"
  exit 0
fi
echo "[peers] preparing $venv" >&2
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
pip() { "$venv/bin/python" -m pip --disable-pip-version-check -q "$@"; }
pip install --upgrade pip setuptools wheel
pip install "paddlepaddle==2.6.2" "numpy<2" "scipy==1.13.*" "scikit-image==0.24.*" \
    "scikit-learn==1.5.*" "opencv-python-headless==4.10.*" "protobuf==3.20.*" matplotlib tqdm \
    pillow "ipython<9" requests
pip install --no-build-isolation "lime==0.2.0.1"
pip install --no-deps "interpretdl==0.8.0"
"$venv/bin/python" - <<'PY'
import paddle, numpy, sklearn, skimage
import interpretdl, lime
from lime import lime_image
print("[peers] paddle", paddle.__version__, "interpretdl", interpretdl.__version__,
      "lime", getattr(lime, "__version__", "0.2.0.1"), "numpy", numpy.__version__,
      "sklearn", sklearn.__version__, "skimage", skimage.__version__)
PY
echo "$want" > "$stamp"
echo "$venv"
