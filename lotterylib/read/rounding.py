"""The measured effect of a plan's ``model_weights: float16`` (the pre-trained weights rounded to float16 before
fine-tuning) on the full model's dev scores.

A plan ``<name>`` that rounds its weights may have a companion plan ``<name>_float32``: the same settings, the
unrounded weights, the fine-tune stage only, on some of its tasks and seeds. Paired by seed, the two plans'
full-model scores give the effect of the rounding, judged by the one comparison rule
(:func:`lotterylib.read.compare.compare`) with the float32 runs as the reference, and also as a plain mean
difference with its 95 % t-interval. Read side only: no torch.
"""

from __future__ import annotations

import pandas as pd

from lotterylib.config.plans import PLANS_DIR, Plan
from lotterylib.method.metrics import reported_metric
from lotterylib.read import collect
from lotterylib.read.compare import compare

COMPANION_SUFFIX = "_float32"
COLUMNS = ["task", "metric", "n", "float32_mean", "float16_mean", "difference", "low", "high", "verdict"]


def companion(plan: Plan | str) -> Plan | None:
    """The float32 companion of a plan that rounds its weights to float16, if its plan file exists."""
    plan = Plan.of(plan)
    if plan.model_weights != "float16":
        return None
    path = PLANS_DIR / f"{plan.name}{COMPANION_SUFFIX}.yaml"
    return Plan.load(path) if path.exists() else None


def paired_scores(plan: Plan | str) -> pd.DataFrame:
    """One row per (task, seed) run in both plans: ``float32`` and ``float16`` full-model scores and the metric."""
    plan = Plan.of(plan)
    other = companion(plan)
    if other is None:
        return pd.DataFrame(columns=["task", "seed", "metric", "float32", "float16"])
    a, b = collect.full_scores(other), collect.full_scores(plan)
    if not len(a) or not len(b):
        return pd.DataFrame(columns=["task", "seed", "metric", "float32", "float16"])
    both = a[["task", "seed", "metric", "score"]].merge(b[["task", "seed", "score"]], on=["task", "seed"],
                                                        suffixes=("_32", "_16"))
    return both.rename(columns={"score_32": "float32", "score_16": "float16"})


def rounding_effect(plan: Plan | str) -> pd.DataFrame:
    """Per task of the companion plan: paired seeds ``n``, the mean full-model score from float32 and from
    float16 weights, the mean difference float16 - float32 with its 95 % interval (``low``, ``high``) and the
    verdict of the comparison rule (float16 on par with / worse than float32). Empty when there is no companion."""
    plan = Plan.of(plan)
    other = companion(plan)
    if other is None:
        return pd.DataFrame(columns=COLUMNS)
    pairs = paired_scores(plan)
    rows = []
    for task in other.tasks:
        sub = pairs[pairs["task"] == task]
        judged = compare(sub["float32"].to_numpy(float), sub["float16"].to_numpy(float))
        rows.append({"task": task, "metric": reported_metric(task), "n": judged.n,
                     "float32_mean": judged.reference_mean, "float16_mean": judged.other_mean,
                     "difference": -judged.gap, "low": -judged.high, "high": -judged.low, "verdict": judged.label})
    return pd.DataFrame(rows, columns=COLUMNS)


def rounding_sentence(plan: Plan | str) -> str:
    """What the rounding did, in one or two sentences, from :func:`rounding_effect`."""
    plan = Plan.of(plan)
    if plan.model_weights != "float16":
        return (f"Plan {plan.name} starts from the pre-trained weights as the checkpoint has them (float32): "
                "there is no rounding to measure.")
    other = companion(plan)
    if other is None:
        return (f"Plan {plan.name} rounds the pre-trained weights to float16, and has no companion plan "
                f"{plan.name}{COMPANION_SUFFIX} to measure the effect: its effect is not measured.")
    table = rounding_effect(plan)
    done = table[table["n"] > 0]
    if done.empty:
        return (f"Plan {plan.name} rounds the pre-trained weights to float16. Its effect on the full model is measured "
                f"by plan {other.name} (the same fine-tunes from float32 weights), which has no run yet.")
    parts = []
    for row in done.itertuples():
        interval = f" (95 % interval {row.low:+.3f} to {row.high:+.3f})" if row.n > 1 else ""
        parts.append(f"{row.task} {row.difference:+.3f} {row.metric}{interval}, {row.verdict}, n={row.n}")
    missing = len(table) - len(done)
    tail = f"; {missing} of {len(table)} tasks have no paired run yet" if missing else ""
    return (f"Rounding the pre-trained weights to float16 (plan {plan.name}) changes the full model's dev score, "
            f"float16 minus float32 paired by seed ({other.name}): " + "; ".join(parts) + tail + ".")


def rounding_view(plan: Plan | str) -> pd.DataFrame:
    """:func:`rounding_effect` as the page shows it: readable headers, formatted numbers, empty cells said why."""
    table = rounding_effect(plan)
    rows = []
    for row in table.itertuples():
        if row.n == 0:
            rows.append({"task": row.task, "metric": row.metric or "", "paired seeds": 0,
                         "float32 weights": "no run yet", "float16 weights": "no run yet",
                         "float16 - float32 (95 % interval)": "no paired run yet", "verdict": "not measured yet"})
            continue
        interval = f" ({row.low:+.3f} to {row.high:+.3f})" if row.n > 1 else " (one seed: no interval)"
        rows.append({"task": row.task, "metric": row.metric, "paired seeds": int(row.n),
                     "float32 weights": f"{row.float32_mean:.3f}", "float16 weights": f"{row.float16_mean:.3f}",
                     "float16 - float32 (95 % interval)": f"{row.difference:+.3f}{interval}", "verdict": row.verdict})
    return pd.DataFrame(rows)

