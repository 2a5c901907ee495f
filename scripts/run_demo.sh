#!/usr/bin/env bash
# The main job: set up .venv (first run only), generate a dataset, train a PaddleX classifier with
# the explanation hook attached, and write explanations + a VisualDL log under demo_output/.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/setup_env.sh"
case "${PADDLE_STACK:-paddle26}" in
  paddle3) venv="$root/.venv-paddle3" ;;
  paddlegpu) venv="$root/.venv-paddlegpu" ;;
  *) venv="$root/.venv" ;;
esac
cd "$root"
exec "$venv/bin/python" examples/train_with_explanations.py "$@"
