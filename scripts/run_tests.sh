#!/usr/bin/env bash
# The test command: set up .venv (first run only) and run the whole suite.
#   bash scripts/run_tests.sh                       # Paddle 2.6.2 (default stack)
#   PADDLE_STACK=paddle3 bash scripts/run_tests.sh  # the same suite on Paddle 3.x, in .venv-paddle3
#   bash scripts/run_tests.sh -k lime               # extra arguments go to pytest
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/setup_env.sh"
case "${PADDLE_STACK:-paddle26}" in
  paddle3) venv="$root/.venv-paddle3" ;;
  paddlegpu) venv="$root/.venv-paddlegpu" ;;
  *) venv="$root/.venv" ;;
esac
cd "$root"
exec "$venv/bin/python" -m pytest -q "$@"
