"""The overlap and stability pages (``fig5_overlap``, ``stability``): shared heads across tasks, agreement over seeds."""

from __future__ import annotations

import numpy as np
import pandas as pd

from lotterylib.config.plans import Plan
from lotterylib.read import analysis
from lotterylib.report.views._common import _cached, _masks, _say


def fig5_overlap(plan: Plan | str, n_perm: int = 1000) -> dict | None:
    """Mean and std over seed indices of the heads kept by both tasks, and its chance level (mean, 95th pct);
    ``None`` with fewer than two tasks."""

    def compute():
        masks = {task: m["head_mask"] for task, m in _masks(plan).items()}
        if len(masks) < 2:
            return None
        n = min(len(m) for m in masks.values())
        masks = {t: m[:n] for t, m in masks.items()}
        mean, std = analysis.overlap_matrix(masks, kind="count")
        null_mean, null_p95 = analysis.overlap_null_matrix(masks, n_perm=n_perm, seed=0, kind="count")
        return {"mean": mean, "std": std, "null_mean": null_mean, "null_p95": null_p95, "tasks": list(masks)}

    return _cached("fig5", plan, compute, n_perm)


def fig5_figure(plan: Plan | str, n_perm: int = 1000):
    from lotterylib.report import plots

    o = fig5_overlap(plan, n_perm)
    if o is None:
        return _say("*Overlaps need s-pruning masks of at least two tasks.*")
    return plots.overlap_heatmap(o["mean"], o["std"], o["null_mean"], unit="heads kept in both")


def fig5_pairs_table(plan: Plan | str, n_perm: int = 1000) -> pd.DataFrame:
    """Per pair of tasks: observed shared heads (mean, std) and the chance level (mean, 95th percentile)."""
    o = fig5_overlap(plan, n_perm)
    if o is None:
        return pd.DataFrame()
    tasks = o["tasks"]
    rows = [{"pair": f"{a} / {b}", "observed": o["mean"].loc[a, b], "std": o["std"].loc[a, b],
             "chance mean": o["null_mean"].loc[a, b], "chance 95th percentile": o["null_p95"].loc[a, b],
             "above chance": bool(o["mean"].loc[a, b] > o["null_p95"].loc[a, b])}
            for i, a in enumerate(tasks) for b in tasks[i + 1:]]
    return pd.DataFrame(rows)


def _stability(plan, alpha: float):
    def compute():
        rows, pairs_by_task = [], {}
        for task, m in _masks(plan).items():
            comp = analysis.components(m["head_mask"], m["mlp_mask"])
            row = {"task": task, "seeds": comp.shape[0]}
            if comp.shape[0] >= 2:
                q = analysis.cochrans_q_over_seeds(comp)
                pairs = analysis.pairwise_seed_tests(comp, seeds=m["seeds"], alpha=alpha)
                pairs_by_task[task] = pairs
                summary = analysis.similar_pairs_summary(pairs)
                heads_only = m["head_mask"].reshape(len(m["head_mask"]), -1)
                row.update({"Fleiss kappa": analysis.fleiss_kappa_over_seeds(heads_only),
                            "kappa, heads+MLPs": analysis.fleiss_kappa_over_seeds(comp),
                            "Cochran Q (heads+MLPs)": q.statistic, "p (heads+MLPs)": q.pvalue,
                            "similar pairs": f"{summary['n_similar']}/{summary['n_pairs']}",
                            "mean Jaccard": summary["mean_jaccard"]})
            rows.append(row)
        return pd.DataFrame(rows), pairs_by_task

    return _cached("stability", plan, compute, alpha)


def masks_by_seed_figure(plan: Plan | str):
    from lotterylib.report import plots

    masks = _masks(plan)
    if not masks:
        return _say("*No s-pruning masks in this plan's results yet.*")
    return plots.masks_by_seed(masks)


def one_seed_text(plan: Plan | str) -> str:
    """Which tasks have a single seed so far (agreement needs two); empty when none."""
    one = [t for t, m in _masks(plan).items() if len(m["head_mask"]) < 2]
    if not one:
        return ""
    return f"*Agreement needs at least two seeds: {', '.join(one)} {'has' if len(one) == 1 else 'have'} one so far.*"


def stability_table(plan: Plan | str, alpha: float = 0.05) -> pd.DataFrame:
    """Per task: seeds, Fleiss' kappa (heads; heads and MLPs), Cochran's Q over seeds (on the heads and MLPs together,
    unlike :func:`lotterylib.report.statistics.c8_cochran`, which counts heads only), similar pairs, Jaccard."""
    return _stability(plan, alpha)[0]


def stability_view(plan: Plan | str, alpha: float = 0.05) -> pd.DataFrame:
    """:func:`stability_table` as the page shows it: every empty cell says why (one seed so far; kappa undefined
    because every seed keeps, or every seed prunes, every component; no head kept by either seed)."""
    table = stability_table(plan, alpha).astype(object)
    if table.empty:
        return table
    one_seed = table["seeds"] < 2
    reasons = {"Fleiss kappa": "undefined: all kept or all pruned", "kappa, heads+MLPs": "undefined: all kept or all pruned",
               "mean Jaccard": "no head kept by either seed"}
    for col in table.columns.drop(["task", "seeds"]):
        missing = table[col].isna()
        table.loc[missing & one_seed, col] = "needs two seeds"
        table.loc[missing & ~one_seed, col] = reasons.get(col, "undefined")
    return table


def stability_pairs_table(plan: Plan | str, alpha: float = 0.05) -> pd.DataFrame:
    """Every pair of seeds of every task (Cochran's Q of the pair, Jaccard), one table with a task column."""
    pairs = _stability(plan, alpha)[1]
    if not pairs:
        return pd.DataFrame()
    return pd.concat([p.assign(task=t)[["task", *p.columns]] for t, p in pairs.items()], ignore_index=True)


def kappa_range() -> tuple[float, float]:
    """The paper's printed range of Fleiss' kappa (section 5.1)."""
    from lotterylib.report.scorecard import PAPER_KAPPA

    return tuple(PAPER_KAPPA)


def stability_kappa_figure(plan: Plan | str, alpha: float = 0.05):
    from lotterylib.report import plots

    table = stability_table(plan, alpha)
    if table.empty or "Fleiss kappa" not in table:
        return _say("*Kappa needs masks of at least two seeds of a task.*")
    return plots.kappa_points(table, kappa_range(), {"Fleiss kappa": "o", "kappa, heads+MLPs": "s"})


def masks_by_seed_text(plan: Plan | str) -> str:
    """How much the number of kept heads varies between seeds of one task."""
    masks = _masks(plan)
    if not masks:
        return "No s-pruning masks in this plan's results yet."
    parts = []
    for task, m in masks.items():
        kept = m["head_mask"].reshape(len(m["head_mask"]), -1).sum(1)
        parts.append(f"{task} {int(kept.min())}-{int(kept.max())}")
    n = int(np.prod(next(iter(masks.values()))["head_mask"].shape[1:]))
    return f"Heads kept by the seeds of each task (of {n}): " + ", ".join(parts) + "."
