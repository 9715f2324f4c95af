#!/usr/bin/env bash
# The real CIFAR-10 for the tests that need it (`make test`), in one of three ways:
#   - it is already at $1 (LONGTAIL_DATA, or ../shared/data/cifar-10-batches-bin): nothing to do;
#   - $1 is the repository's own data/cifar-10-batches-bin: download the official archive there
#     (`longtail data download`, MD5-checked, extracted atomically);
#   - otherwise, or when the download fails: one line saying what to do. The tests on the
#     synthetic fixture run either way; those on the real release skip outside CI, fail inside.
set -uo pipefail
cd "$(dirname "$0")/.."
DATA=${1:?usage: scripts/data.sh CIFAR10_DIR}
[ -f "$DATA/data_batch_1.bin" ] && exit 0
if [ "$(realpath -m "$DATA")" = "$(realpath -m data/cifar-10-batches-bin)" ]; then
  echo "data: CIFAR-10 is not in data/; downloading the official release (163 MB, MD5-checked)…" >&2
  cargo build --release --quiet && target/release/longtail data download --dir data && exit 0
fi
echo "data: CIFAR-10 is not at $DATA: download it with \`longtail data download --dir data\` (or set LONGTAIL_DATA to a cifar-10-batches-bin folder); the tests that need the real images are skipped" >&2
exit 0
