#!/usr/bin/env bash
# The ρ = 50 / 10 rows of the report's table, trained in the order of their issue, resumably:
#   nohup scripts/table-queue.sh > /work/runs/table-queue.log 2>&1 &
# It restores runs carried through the repository (scripts/carry-run.sh), runs from a binary
# copied out of target/ (so builds cannot touch it), trains model-15 alone at 2 threads (it ends
# inside a working session), then the other rows in two lanes of one training at one thread each (1.12× the
# images per second of one run at two threads on 2 cores; README, Speed). Every row keeps its
# weights from epoch 161 on, for `select`. Published or finished rows are skipped; stopped ones
# resume. To stop it at the end of a session: `pkill -TERM -f 'longtail-.* reproduce'` (each
# training checkpoints at its next step and exits 75; binaries before 08f7f6e lose the epoch in
# progress), wait for the trainings to exit, then scripts/carry-run.sh each unfinished run.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-/work/runs/report}
BIN=${BIN:-$(dirname "$RUNS")/bin}
DATA=${DATA:-$(cd .. && pwd)/shared/data/cifar-10-batches-bin}
mkdir -p "$RUNS" "$BIN"
scripts/carry-run.sh --restore
[ -x target/release/longtail ] || make build
bin=$BIN/longtail-$(git rev-parse --short HEAD)
[ -x "$bin" ] || cp target/release/longtail "$bin"
common=(reproduce report --runs "$RUNS" --data "$DATA" --keep-weights-from 161)
# A row already published in results/ is done: a fresh machine has no run folder for it, and
# training it again would cost hours for a number we have.
unpublished() {
  local row out=()
  for row in "$@"; do [ -f "results/$row.json" ] || out+=("$row"); done
  (IFS=,; echo "${out[*]}")
}
first=$(unpublished model-15)
[ -z "$first" ] || "$bin" "${common[@]}" --jobs 1 --threads 2 --only "$first"
# Two lanes of one training at one thread each. Lane B carries the runs of the stage-two issue
# (configs/beyond/table.toml, its own run folder) right behind model-13, the fourth row of the
# table issue, as that issue asks; every row of the table keeps its place in one lane.
# A lane stops at the first call that exits non-zero: 75 is SIGTERM, which ends the session.
lane() { local rows; rows=$(unpublished "$@"); [ -z "$rows" ] || "$bin" "${common[@]}" --jobs 1 --threads 1 --only "$rows"; }
beyond=(reproduce report --manifest configs/beyond/table.toml --runs "$(dirname "$RUNS")/beyond" \
  --data "$DATA" --keep-weights-from 161 --jobs 1 --threads 1)
lane model-16 model-12 reslt-official-r50 reslt-official-r10 reslt-a0.95-aa-ls-r50 reslt-a0.95-aa-ls-r10 &
{ lane model-13 && "$bin" "${beyond[@]}" && lane elf-margin-t99-wmean-xw03-r50 elf-margin-t99-wmean-xw03-r10; } &
wait
