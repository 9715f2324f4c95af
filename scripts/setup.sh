#!/usr/bin/env bash
# Install what longtail needs to build and run, idempotently (a second run takes a second):
#   - libtorch 2.11 from the PyPI `torch==2.11.0` wheel, into .venv/. CPU-only by default: with
#     --no-deps pip skips ~3.5 GB of CUDA wheels; libtorch_cpu.so needs only libcudart and
#     libcupti from the CUDA stack, which we add explicitly (~1.25 GB in all).
#     LONGTAIL_GPU=1 installs the full CUDA wheel set instead.
#   - the `.libtorch` link that .cargo/config.toml hands to the build as LIBTORCH, so nobody has
#     to export anything; build.rs then bakes an rpath to its lib/ into the binary.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
command -v cargo >/dev/null || { echo "setup: cargo not found; install Rust (rustup) first" >&2; exit 1; }
command -v "$PYTHON" >/dev/null || { echo "setup: $PYTHON not found; it is needed only to fetch the libtorch wheel" >&2; exit 1; }

if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
site=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')

have_torch() { [ -f "$site/torch/lib/libtorch_cpu.so" ] && grep -q "__version__ = '2.11.0" "$site/torch/version.py" 2>/dev/null; }
if [ "${LONGTAIL_GPU:-0}" = 1 ]; then
  if ! .venv/bin/python -c 'import torch, sys; sys.exit(0 if torch.__version__.startswith("2.11.0") and torch.version.cuda else 1)' 2>/dev/null; then
    echo "setup: installing torch 2.11.0 with CUDA libraries (several GB)…"
    .venv/bin/pip install --quiet "torch==2.11.0"
  fi
  # Headers the CUDA graph shim (csrc/cuda_graph.cpp) needs beyond those the wheels ship.
  if [ ! -f "$site/nvidia/cu13/include/crt/host_config.h" ]; then
    .venv/bin/pip install --quiet --no-deps "nvidia-cuda-crt==13.0.88"
  fi
elif ! have_torch; then
  echo "setup: installing libtorch 2.11.0 (CPU use, ~1.25 GB)…"
  .venv/bin/pip install --quiet --no-deps "torch==2.11.0" "nvidia-cuda-runtime==13.0.96" "nvidia-cuda-cupti==13.0.85"
fi
have_torch || { echo "setup: libtorch is still missing under $site/torch" >&2; exit 1; }
ln -sfn "$site/torch" .libtorch
echo "setup: libtorch $(sed -n "s/^__version__ = '\(.*\)'/\1/p" .libtorch/version.py) at $(readlink .libtorch)"
