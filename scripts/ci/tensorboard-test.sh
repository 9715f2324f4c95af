#!/usr/bin/env bash
# A real training's TensorBoard event files, read back by TensorBoard's own reader (the
# `tensorboard` package in a throw-away venv, target/tensorboard-venv): a short ELF run on the
# real CIFAR-10, stopped by SIGTERM in its second epoch and resumed, so its steps span two files.
#   scripts/ci/tensorboard-test.sh [LONGTAIL_BINARY]
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${1:-target/release/longtail}
data=${LONGTAIL_DATA:?set LONGTAIL_DATA to the CIFAR-10 binary folder}
venv=target/tensorboard-venv
if ! "$venv/bin/python" -c 'import tensorboard' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check tensorboard
fi
run=$(mktemp -d)/tb-run
trap 'rm -rf "$(dirname "$run")"' EXIT
# 20 images a class: 4 steps an epoch at batch 50, 3 epochs, evaluated on 500 test images.
set_args=(--set data.max_per_class=20 --set train.batch_size=50 --set train.epochs=3
  --set eval.every=1 --set eval.max_test_images=500)
LONGTAIL_TEST_SIGNAL_AFTER_STEPS=3 "$bin" train --config configs/elf-margin-t99-wmean-xw03-r100.toml \
  --out "$run" --plain --data "$data" "${set_args[@]}" && { echo "the signal did not stop the run" >&2; exit 1; } || [ $? -eq 75 ]
"$bin" train --config configs/elf-margin-t99-wmean-xw03-r100.toml --out "$run" --plain --resume --data "$data" "${set_args[@]}" > /dev/null
files=$(ls "$run/tensorboard" | wc -l)
[ "$files" -eq 2 ] || { echo "expected 2 event files (one per invocation), found $files" >&2; exit 1; }
"$venv/bin/python" scripts/ci/tensorboard_check.py "$run" 4
