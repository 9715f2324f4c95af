#!/usr/bin/env bash
# The PyTorch side of the benchmark needs an importable torch 2.11.0 (the same libtorch longtail
# links). PyPI's wheel imports only with its CUDA libraries beside it, even on a CPU machine, so
# this installs the full set (several GB) into bench/.venv, apart from the project's slim .venv.
# Idempotent: a second run takes a second.
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
if ! .venv/bin/python -c 'import torch, sys; sys.exit(0 if torch.__version__.startswith("2.11.0") else 1)' 2>/dev/null; then
  echo "bench/setup: installing torch 2.11.0 and numpy into bench/.venv (several GB)…" >&2
  .venv/bin/pip install --quiet "torch==2.11.0" numpy
fi
.venv/bin/python -c 'import torch; print("bench/setup: torch", torch.__version__, "threads", torch.get_num_threads())' >&2
