#!/usr/bin/env bash
# Carry an unfinished run to the next machine through the repository: copy what `train --resume`
# needs (config, meta, state, metrics, the checkpoint state.json names, best weights, kept weights,
# with their checksums)
# from RUN_DIR into in-progress/<relative path>/, to be committed. On the next machine,
# `scripts/carry-run.sh --restore` copies every carried run back under its original parent folder
# (recorded in in-progress/<run>/origin) unless a run is already there. Delete the carried copy
# (git rm -r) once the run is finished and published.
#   scripts/carry-run.sh /work/runs/report/model-15     # → in-progress/report/model-15/
#   scripts/carry-run.sh --restore                      # → /work/runs/report/model-15/ (if absent)
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = "--restore" ]; then
  [ -d in-progress ] || { echo "carry: nothing carried (no in-progress/)"; exit 0; }
  find in-progress -name origin -type f | while read -r origin; do
    src=$(dirname "$origin"); dest=$(cat "$origin")
    if [ -e "$dest/state.json" ]; then
      echo "carry: $dest already holds a run; left alone (compare its state.json with $src/state.json)"
    else
      mkdir -p "$dest"; cp -r "$src/." "$dest/"; rm -f "$dest/origin"
      echo "carry: restored $dest at epoch $(sed -n 's/.*"epochs_done": *\([0-9]*\).*/\1/p' "$dest/state.json")"
    fi
  done
  exit 0
fi

run=${1:?usage: scripts/carry-run.sh RUN_DIR | --restore}
run=$(cd "$run" && pwd)
[ -f "$run/state.json" ] || { echo "carry: $run has no state.json (no checkpoint yet)" >&2; exit 1; }
[ ! -f "$run/summary.json" ] || { echo "carry: $run is finished: publish it instead" >&2; exit 1; }
ckpt=$(sed -n 's/.*"checkpoint": *"\([^"]*\)".*/\1/p' "$run/state.json")
dest="in-progress/$(basename "$(dirname "$run")")/$(basename "$run")"
rm -rf "$dest"; mkdir -p "$dest"
for f in config.toml meta.json state.json metrics.jsonl "$ckpt" "$ckpt.sha256" best.ot best.ot.sha256; do
  [ -f "$run/$f" ] && cp "$run/$f" "$dest/"
done
[ -d "$run/weights" ] && cp -r "$run/weights" "$dest/"
# A training that checkpoints while we copy may have rotated the named checkpoint away.
cmp -s "$run/state.json" "$dest/state.json" && [ -f "$dest/$ckpt" ] ||
  { rm -rf "$dest"; echo "carry: $run checkpointed while being copied; stop it first or try again" >&2; exit 1; }
echo "$run" > "$dest/origin"
echo "carry: $dest ($(du -sh "$dest" | cut -f1)), epoch $(sed -n 's/.*"epochs_done": *\([0-9]*\).*/\1/p' "$run/state.json")"
