#!/usr/bin/env bash
# The GPU check (tools/gpu_check.py): on a machine with an NVIDIA GPU, `tools/gpu_check.sh`;
# anywhere, `tools/gpu_check.sh --dry-run` (every step on the CPU, the project's .venv).
# PYTHON=... picks the interpreter that runs the check and creates the GPU environment.
set -euo pipefail
cd "$(dirname "$0")/.."
py="${PYTHON:-}"
if [[ -z "$py" ]]; then
    py=python3
    [[ " $* " == *" --dry-run "* && -x .venv/bin/python ]] && py=.venv/bin/python
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
exec "$py" tools/gpu_check.py "$@"
