"""Bring a plan's committed random and bad subnetworks to today's random streams (METHOD.md section 7).

    python tools/redraw_subnetworks.py demo            # every task and seed of the plan
    python tools/redraw_subnetworks.py demo --tasks CoLA MRPC

Re-draws the masks from the committed good masks (no fine-tuned checkpoint needed), rewrites the sizes in
pruned.json, records searches that removed nothing, re-draws the super-survivor variants, and removes the
re-fine-tunes the old masks made; `make experiments PLAN=<plan>` then redoes exactly those. Idempotent.
"""

from __future__ import annotations

import argparse

from lotterylib.run.experiment import Run, redraw, redraw_super
from lotterylib.config.plans import Plan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("plan")
    parser.add_argument("--tasks", nargs="*")
    args = parser.parse_args()
    plan = Plan.load(args.plan)
    for task in args.tasks or plan.tasks:
        for seed in plan.seeds:
            for line in redraw(Run(plan, task, seed, progress=False)):
                print(f"{task} seed {seed}: {line}")
        if plan.seeds:
            for line in redraw_super(plan, task):
                print(f"{task}: {line}")


if __name__ == "__main__":
    main()
