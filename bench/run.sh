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
# How busy the CPU is right before we start, from /proc/stat over 2 s (the load average lags by
# a minute and would blame a process that has already stopped).
cpu_ticks() { awk '/^cpu /{idle=$5+$6; total=0; for(i=2;i<=NF;i++) total+=$i; print idle, total}' /proc/stat; }
read -r idle0 total0 < <(cpu_ticks); sleep 2; read -r idle1 total1 < <(cpu_ticks)
busy=$(awk -v i="$((idle1-idle0))" -v t="$((total1-total0))" 'BEGIN{printf "%.0f", (t > 0 ? 100 * (1 - i / t) : 0)}')
if [ "$busy" -gt 10 ]; then
  echo "bench/run.sh: warning: the CPU was ${busy}% busy before the start; another process is using it and the numbers will be noisy" >&2
fi
out=$(mktemp -d)
for rep in $(seq "$REPS"); do
  echo "bench/run.sh: repetition $rep/$REPS" >&2
  target/release/longtail bench --threads "$THREADS" --data "$DATA" >> "$out/longtail.jsonl"
  bench/.venv/bin/python bench/torch_bench.py --threads "$THREADS" --data "$DATA" >> "$out/pytorch.jsonl"
done
args=(--longtail "$out/longtail.jsonl" --pytorch "$out/pytorch.jsonl" --threads "$THREADS" --busy "$busy"
      --commit "$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src || echo '+dirty')")
if [ "$RECORD" = 1 ]; then args+=(--record bench/RESULTS.md); fi
python3 bench/summarise.py "${args[@]}"
