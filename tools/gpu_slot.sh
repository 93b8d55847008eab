#!/usr/bin/env bash
# Run a command on one free GPU of this machine:   tools/gpu_slot.sh [--jobs-per-gpu N] COMMAND [ARGS...]
#
# --jobs-per-gpu N (default 1): N jobs may share one GPU at once (a small model leaves a GPU idle between its
# kernel launches; profiles/gpu sets N through the jobs_per_gpu resource of every experiment rule).
#
# Snakemake counts GPUs (profiles/multigpu: `resources: gpu=N`; GPU rules declare `resources: gpu=1`) but does
# not say which GPU a job should use. This wrapper picks one: it takes an exclusive lock file per GPU index
# (flock, non-blocking) on the first free one, exports CUDA_VISIBLE_DEVICES=<index>, and replaces itself with
# the command, which keeps the lock open until it exits (also when it is killed: the kernel drops the lock).
#
#   LOTTERY_GPUS           which GPUs may be used, e.g. "0,2" (default: CUDA_VISIBLE_DEVICES if set, else
#                          every GPU that `nvidia-smi -L` lists)
#   LOTTERY_GPU_LOCK_DIR   where the lock files live (default: $TMPDIR or /tmp, per user); all workflows on
#                          the machine that share it share the GPUs fairly
#
# No GPU at all (a CPU machine), or a SLURM job (SLURM already gave it its GPU): the command runs unchanged.
set -euo pipefail

per_gpu=1
if [ "${1:-}" = "--jobs-per-gpu" ]; then
  per_gpu="${2:-}"
  shift 2 || true
  case "$per_gpu" in
    ''|*[!0-9]*|0) echo "gpu_slot: --jobs-per-gpu must be a whole number >= 1 (got '$per_gpu')" >&2; exit 2;;
  esac
fi
if [ $# -eq 0 ]; then
  echo "usage: $0 [--jobs-per-gpu N] COMMAND [ARGS...]" >&2
  exit 2
fi

if [ -n "${SLURM_JOB_ID:-}" ]; then
  exec "$@"
fi

gpus="${LOTTERY_GPUS:-${CUDA_VISIBLE_DEVICES:-}}"
if [ -z "$gpus" ] && command -v nvidia-smi >/dev/null 2>&1; then
  count="$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)"
  if [ "${count:-0}" -gt 0 ]; then
    gpus="$(seq -s, 0 $((count - 1)))"
  fi
fi
if [ -z "$gpus" ]; then
  exec "$@"  # no GPU here: run on the CPU
fi

lock_dir="${LOTTERY_GPU_LOCK_DIR:-${TMPDIR:-/tmp}/lotterybook-gpu-locks-$(id -u)}"
mkdir -p "$lock_dir"
waited=0
while :; do
  # Fill the GPUs in turn (slot 0 of every GPU, then slot 1, ...), so jobs spread over the GPUs first.
  for slot in $(seq 0 $((per_gpu - 1))); do
    for gpu in ${gpus//,/ }; do
      exec 9>"$lock_dir/gpu-$gpu.slot-$slot.lock"
      if flock -n 9; then
        export CUDA_VISIBLE_DEVICES="$gpu"
        exec "$@"  # file descriptor 9 stays open in the command: the slot is ours until it exits
      fi
      exec 9>&-
    done
  done
  # Every GPU is taken (more GPU jobs than GPUs, e.g. another workflow on the machine): wait for one.
  if [ "$waited" -eq 0 ]; then
    echo "gpu_slot: all $per_gpu slot(s) of GPUs $gpus are busy; waiting for one to free up" >&2
  fi
  waited=1
  sleep 5
done
