#!/bin/bash
# Run a plan's grid seed by seed, in the plan's seed order (every task of the first seed, then the next seed, ...),
# then once more with every seed for the super-survivor stages, which need all of them. Resumable: run it again
# after an interruption and Snakemake redoes only what is missing or was cut short (profiles/default).
#
#   tools/grid_by_seed.sh [PLAN] [CORES]          # default: demo, 2 (one thread per job)
#   tools/grid_by_seed.sh demo 2 1337 42 86       # only these seeds, in this order (no super-survivor stages)
#
# Logs: logs/<plan>/grid_seed_<seed>.log. Pair it with tools/commit_finished.sh to commit results as they land.
set -u
cd "$(dirname "$0")/.."
PLAN=${1:-demo}
CORES=${2:-2}
shift $(( $# < 2 ? $# : 2 ))
SEEDS=${*:-$(.venv/bin/python -c "from lotterylib.config.plans import Plan; print(*Plan.load('$PLAN').seeds)")}
mkdir -p "logs/$PLAN"
for seed in $SEEDS; do
  echo "$(date -u +%FT%TZ) seed $seed" >&2
  .venv/bin/snakemake --cores "$CORES" --keep-going --config plan="$PLAN" threads=1 seeds="$seed" \
    > "logs/$PLAN/grid_seed_$seed.log" 2>&1 || echo "seed $seed: some jobs failed (see the log)" >&2
done
if [ $# -eq 0 ]; then
  .venv/bin/snakemake --cores "$CORES" --keep-going --config plan="$PLAN" threads=1 > "logs/$PLAN/grid_all.log" 2>&1
fi
