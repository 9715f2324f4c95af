#!/usr/bin/env bash
# Prepare what a GPU session carries to the device machine, which has its own torch 2.11 but no
# crates.io and no ../shared (see README, "GPU"). Writes the git-ignored folder carry/:
#   carry/longtail       longtail built with LONGTAIL_CUDA=1 (CUDA backend linked, CUDA graphs)
#   carry/data.tar.xz    `longtail data pack --rho 100`: the ρ=100 training subset + the test set
# Then:  run(command="scripts/device/run.sh bench", carry=["carry"])   (and see run.sh).
#
#   scripts/device/prepare.sh [--data DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
DATA=${LONGTAIL_DATA:-../shared/data/cifar-10-batches-bin}
case "${1:-}" in
  "") ;;
  --data) DATA=${2:?--data needs a folder} ;;
  *) echo "prepare: unknown argument $1 (usage: prepare.sh [--data DIR])" >&2; exit 2 ;;
esac
[ -f "$DATA/data_batch_1.bin" ] || { echo "prepare: CIFAR-10 not found at $DATA (use --data)" >&2; exit 2; }

# Linking the CUDA backend needs the CUDA libraries that libtorch_cuda.so depends on: the full
# torch wheel of bench/.venv (the project's own .venv holds the CPU subset only).
bench/setup.sh
torch=$(bench/.venv/bin/python -c 'import os, torch; print(os.path.dirname(torch.__file__))')
# The CUDA graph shim includes libtorch's CUDA headers, which include the CUDA runtime's; their
# crt/ part comes in a wheel of its own.
if [ ! -f "$torch/../nvidia/cu13/include/crt/host_config.h" ]; then
  bench/.venv/bin/pip install --quiet --no-deps "nvidia-cuda-crt==13.0.88"
fi
LIBTORCH=$torch LONGTAIL_CUDA=1 CARGO_TARGET_DIR=target/cuda cargo build --release --quiet
mkdir -p carry
cp target/cuda/release/longtail carry/longtail

# The archive is rebuilt when it was made from another data folder.
source_stamp="rho=100 seed=0 from $(cd "$DATA" && pwd)"
if [ ! -f carry/data.tar.xz ] || [ "$(cat carry/data.source 2>/dev/null)" != "$source_stamp" ]; then
  cargo build --release --quiet
  rm -rf carry/cifar10-lt100
  target/release/longtail data pack --rho 100 --data "$DATA" --out carry/cifar10-lt100
  XZ_OPT=-T0 tar -cJf carry/data.tar.xz -C carry cifar10-lt100
  rm -rf carry/cifar10-lt100
  echo "$source_stamp" > carry/data.source
fi
du -ch carry/* | sed 's/^/prepare: /'
total=$(du -cm carry/* | tail -1 | cut -f1)
[ "$total" -lt 64 ] || { echo "prepare: carry/ is ${total} MiB, over the 64 MiB a device call takes" >&2; exit 1; }
