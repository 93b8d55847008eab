#!/usr/bin/env bash
# On a lent GPU machine: run a plan's grid with tools/device_grid.py from what tools/device_pack.sh packed.
#   LOTTERY_GIT_COMMIT=<commit> bash tools/device_run.sh [PLAN] [DEADLINE_SECONDS] [WORKERS] [device_grid options]
# State (GLUE, results, checkpoints, the ledger) lives in $LOTTERY_DEVICE_WORK (default /root/lotterybook-device),
# outside the copied working tree, so a second call on the same machine goes on where the first stopped.
# The packs (results_seed_<s>.tar.gz, results_super.tar.gz, jobs.json) go to $OUT (else $WORK/out); unpack them
# at the repository root with tools/device_unpack.sh.
# LOTTERY_MPS=1 starts CUDA's multi-process service first, so the workers' kernels can share the GPU at the same
# time (probed; without it the GPU time-slices between the workers).
set -u
cd "$(dirname "$0")/.."
PLAN=${1:-demo}
DEADLINE=${2:-540}
WORKERS=${3:-12}
shift $(( $# < 3 ? $# : 3 ))
PY=${PYTHON:-python3}
WORK=${LOTTERY_DEVICE_WORK:-/root/lotterybook-device}
mkdir -p "$WORK"
if [ ! -d "$WORK/glue/glue_data" ]; then
  mkdir -p "$WORK/glue" && tar -C "$WORK/glue" -xJf .devicepack/glue.tar.xz || exit 1
fi
export LOTTERY_GLUE_DIR="$WORK/glue/glue_data" LOTTERY_OFFLINE_DIR="$PWD/.devicepack/models" \
  LOTTERY_RESULTS="$WORK/results" LOTTERY_CHECKPOINTS="$WORK/checkpoints" HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 \
  TOKENIZERS_PARALLELISM=false OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
if [ "${LOTTERY_MPS:-0}" = 1 ] && command -v nvidia-cuda-mps-control >/dev/null; then
  export CUDA_MPS_PIPE_DIRECTORY=/tmp/lotterybook-mps CUDA_MPS_LOG_DIRECTORY=/tmp/lotterybook-mps-log
  mkdir -p "$CUDA_MPS_PIPE_DIRECTORY" "$CUDA_MPS_LOG_DIRECTORY"
  pgrep -f nvidia-cuda-mps-control >/dev/null || nvidia-cuda-mps-control -d
  if timeout 40 "$PY" -c "import torch; assert torch.ones(4, device='cuda').sum().item() == 4"; then
    echo "MPS: on"
  else
    echo "MPS: the probe failed, going on without it"
    echo quit | timeout 10 nvidia-cuda-mps-control; unset CUDA_MPS_PIPE_DIRECTORY CUDA_MPS_LOG_DIRECTORY
  fi
fi
"$PY" -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__, 'cuda', torch.cuda.is_available())"
exec "$PY" tools/device_grid.py "$PLAN" --workers "$WORKERS" --deadline "$DEADLINE" --out "${OUT:-$WORK/out}" \
  --pack-every 40 "$@"
