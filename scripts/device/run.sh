#!/usr/bin/env bash
# Runs ON the device machine, from the repository root, with carry/ from scripts/device/prepare.sh:
# unpacks the data, points the CUDA build at that machine's own torch 2.11 libraries, then
#   scripts/device/run.sh bench [REPS]
#       longtail (eager and CUDA graphs) and PyTorch eager on this GPU, interleaved REPS times
#       (default 3): $OUT/bench/{longtail,pytorch}.jsonl and the medians in $OUT/bench/summary.md
#   scripts/device/run.sh train [--graphs] [--stop-after N] CONFIG...
#       one full training per config, all at once (one launch-bound run leaves the GPU mostly
#       idle), run dirs and logs under $OUT/runs/<config stem>. A run cut off by the call's time
#       limit continues anywhere with `longtail train -c CONFIG --resume --out <its run dir>`;
#       to continue it here in a later call, put its run dir at carry/runs/<config stem>.
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${OUT:?OUT must name the folder whose files come back}"
torch_dir=$(python3 -c 'import os, torch; print(os.path.dirname(torch.__file__))')
export LD_LIBRARY_PATH="$torch_dir/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
BIN=carry/longtail
DATA=/tmp/longtail-data/cifar10-lt100
if [ ! -f "$DATA/longtail-pack.json" ]; then
  mkdir -p /tmp/longtail-data
  tar -xJf carry/data.tar.xz -C /tmp/longtail-data
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | sed 's/^/device: /'
WORKERS=$(( $(nproc) / 2 ))

case "${1:-}" in
  bench)
    reps=${2:-3}
    mkdir -p "$OUT/bench"
    for rep in $(seq "$reps"); do
      echo "bench: repetition $rep/$reps" >&2
      $BIN bench --device cuda --cuda-graphs --workers "$WORKERS" --data "$DATA" >> "$OUT/bench/longtail.jsonl"
      python3 bench/torch_bench.py --device cuda --workers "$WORKERS" --data "$DATA" >> "$OUT/bench/pytorch.jsonl"
    done
    python3 bench/summarise.py --longtail "$OUT/bench/longtail.jsonl" --pytorch "$OUT/bench/pytorch.jsonl" \
      --threads "$(python3 -c 'import torch; print(torch.get_num_threads())')" --busy 0 --commit "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
      --device "$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)" | tee "$OUT/bench/summary.md"
    ;;
  train)
    shift
    extra=()
    while [ $# -gt 0 ]; do
      case $1 in
        --graphs) extra+=(--cuda-graphs); shift ;;
        --stop-after) extra+=(--stop-after "$2"); shift 2 ;;
        *) break ;;
      esac
    done
    [ $# -gt 0 ] || { echo "run.sh train: name at least one config" >&2; exit 2; }
    names=$(for cfg in "$@"; do basename "$cfg" .toml; done)
    dup=$(echo "$names" | sort | uniq -d)
    [ -z "$dup" ] || { echo "run.sh train: configs share a run directory name: $dup" >&2; exit 2; }
    mkdir -p "$OUT/runs"
    pids=()
    for cfg in "$@"; do
      name=$(basename "$cfg" .toml)
      resume=()
      [ -f "carry/runs/$name/state.json" ] && { cp -r "carry/runs/$name" "$OUT/runs/"; resume=(--resume); }
      # ${a[@]+"${a[@]}"}: an empty array under `set -u` on bash < 4.4
      $BIN train -c "$cfg" --out "$OUT/runs/$name" --device cuda --plain --data "$DATA" \
        ${resume[@]+"${resume[@]}"} ${extra[@]+"${extra[@]}"} > "$OUT/runs/$name.log" 2>&1 &
      pids+=($!)
    done
    status=0
    for p in "${pids[@]}"; do wait "$p" || status=1; done
    tail -n 3 "$OUT"/runs/*.log
    exit $status
    ;;
  *)
    sed -n 2,11p "$0" >&2
    exit 2
    ;;
esac
