#!/usr/bin/env bash
# The test command: set up .venv (first run only) and run the whole suite.
#   bash scripts/run_tests.sh                       # Paddle 2.6.2 (default stack)
#   PADDLE_STACK=paddle3 bash scripts/run_tests.sh  # the same suite on Paddle 3.x, in .venv-paddle3
#                                                   # (and PaddleX 3 in .venv-paddlex3, the reference)
#   bash scripts/run_tests.sh -k lime               # extra arguments go to pytest
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/setup_env.sh"
# PaddleX 3 itself, in its own environment, for the test that compares our adapter with it
# (tests/adapters/test_paddlex3_parity.py; skipped, with the reason, where it is not built).
if [ "${PADDLE_STACK:-paddle26}" = paddle3 ]; then PADDLE_STACK=paddlex3 bash "$root/scripts/setup_env.sh"; fi
case "${PADDLE_STACK:-paddle26}" in
  paddle3) venv="$root/.venv-paddle3" ;;
  paddlegpu) venv="$root/.venv-paddlegpu" ;;
  *) venv="$root/.venv" ;;
esac
cd "$root"
exec "$venv/bin/python" -m pytest -q "$@"
