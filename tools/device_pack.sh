#!/usr/bin/env bash
# Pack what a GPU machine without network or package registries needs to run a plan with tools/device_grid.py,
# into .devicepack/ (ignored by git; name it in the device call's carry):
#   .devicepack/models/all-MiniLM-L6-v2/   the offline model with its weights as float16 (half the bytes), with
#                                          its config and tokenizer; only plans with `model_weights: float16`
#                                          accept it (lotterylib.model.models refuses to mix weight variants)
#   .devicepack/glue.tar.xz                the GLUE tasks of the plan, from $LOTTERY_GLUE_DIR
# There: LOTTERY_OFFLINE_DIR=.devicepack/models, and LOTTERY_GLUE_DIR where glue.tar.xz was unpacked.
#   tools/device_pack.sh [PLAN]      (default: demo)
set -euo pipefail
cd "$(dirname "$0")/.."
PLAN=${1:-demo}
PY=${PYTHON:-.venv/bin/python}
: "${LOTTERY_GLUE_DIR:?set LOTTERY_GLUE_DIR to the GLUE folder (e.g. ../shared/glue_data)}"
rm -rf .devicepack && mkdir -p .devicepack/models
"$PY" - "$PLAN" <<'PYEOF'
import shutil, sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from lotterylib.model.models import OFFLINE_MODELS, resolve_model
from lotterylib.config.plans import Plan

plan = Plan.load(sys.argv[1])
if plan.model not in OFFLINE_MODELS:
    sys.exit(f"plan {plan.name} uses {plan.model!r}, not an offline model: nothing to pack")
if plan.raw["model_weights"] != "float16":
    sys.exit(f"plan {plan.name} starts from float32 weights: a float16 copy would be another weight variant "
             "(set model_weights: float16 in the plan, or carry the float32 weights)")
source = Path(resolve_model(plan.model))  # checks the package's SHA-256
target = Path(".devicepack/models") / plan.model
target.mkdir(parents=True)
for item in source.iterdir():
    if item.is_file() and item.name != "model.safetensors" and item.suffix in (".json", ".txt"):
        shutil.copy2(item, target / item.name)
state = load_file(source / "model.safetensors")
save_file({k: v.to(torch.float16) if v.is_floating_point() else v for k, v in state.items()},
          target / "model.safetensors", metadata={"format": "pt", "lotterybook": "float16 copy of " + plan.model})
print(f"model: {target} ({sum(f.stat().st_size for f in target.iterdir()) / 2**20:.1f} MiB)")
print(" ".join(plan.tasks))
PYEOF
TASKS=$("$PY" -c "from lotterylib.config.plans import Plan; print(' '.join(Plan.load('$PLAN').tasks))")
tar -C "$(dirname "$LOTTERY_GLUE_DIR")" -cJf .devicepack/glue.tar.xz \
  $(for t in $TASKS; do echo "$(basename "$LOTTERY_GLUE_DIR")/$t"; done)
du -sh .devicepack/*
