#!/usr/bin/env bash
# Unpack what tools/device_run.sh brought back into results/ (the packs hold <plan>/<task>/... paths):
#   tools/device_unpack.sh FOLDER_WITH_PACKS
# A stage folder in a pack replaces the one here (the packs hold whole stage folders of finished jobs).
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=${1:?usage: tools/device_unpack.sh FOLDER_WITH_PACKS}
ROOT=${LOTTERY_RESULTS:-results}
for pack in "$SRC"/results_*.tar.gz; do
  [ -e "$pack" ] || { echo "no results_*.tar.gz in $SRC" >&2; exit 1; }
  # every stage folder in the pack is replaced whole
  tar -tzf "$pack" | awk -F/ 'NF>=5 && $4!="" {print $1"/"$2"/"$3"/"$4}' | sort -u | while read -r stage; do
    rm -rf "${ROOT:?}/$stage"
  done
  tar -C "$ROOT" -xzf "$pack"
  echo "unpacked $pack"
done
