#!/usr/bin/env bash
# longtail vs PyTorch 2.11 eager on this machine, in one run: the same ResNet-32, batch, threads
# and data, three measurements (training step, training with the real data pipeline, inference),
# repeated and interleaved (longtail, PyTorch, longtail, …) so both see the same machine state.
# Prints the medians and the ratio longtail / PyTorch and appends them to bench/RESULTS.md.
#
#   bench/run.sh [--reps 3] [--threads N] [--data DIR] [--no-record]
set -euo pipefail
cd "$(dirname "$0")/.."
REPS=3
THREADS=$(nproc)
DATA=${LONGTAIL_DATA:-../shared/data/cifar-10-batches-bin}
RECORD=1
while [ $# -gt 0 ]; do
  case $1 in
    --reps) REPS=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --data) DATA=$2; shift 2 ;;
    --no-record) RECORD=0; shift ;;
    *) echo "bench/run.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ -f "$DATA/data_batch_1.bin" ] || { echo "bench/run.sh: CIFAR-10 not found at $DATA (use --data)" >&2; exit 2; }
bench/setup.sh
cargo build --release --quiet
load=$(cut -d' ' -f1 /proc/loadavg)
if awk "BEGIN{exit !($load > 0.5)}"; then
  echo "bench/run.sh: warning: load average is $load; another process is using the CPU and the numbers will be noisy" >&2
fi
out=$(mktemp -d)
for rep in $(seq "$REPS"); do
  echo "bench/run.sh: repetition $rep/$REPS" >&2
  target/release/longtail bench --threads "$THREADS" --data "$DATA" >> "$out/longtail.jsonl"
  bench/.venv/bin/python bench/torch_bench.py --threads "$THREADS" --data "$DATA" >> "$out/pytorch.jsonl"
done
args=(--longtail "$out/longtail.jsonl" --pytorch "$out/pytorch.jsonl" --threads "$THREADS" --load "$load"
      --commit "$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src || echo '+dirty')")
if [ "$RECORD" = 1 ]; then args+=(--record bench/RESULTS.md); fi
python3 bench/summarise.py "${args[@]}"
