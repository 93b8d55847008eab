"""The subnetworks pages (``fig2_subnetworks``, ``table2_bad``): testability, the comparison rule's table, the
bars, the super-survivors and Table 2."""

from __future__ import annotations

import re

import pandas as pd

from lotterylib.config.plans import Plan
from lotterylib.read import collect
from lotterylib.report.views._common import _cached, _full, _percent, _say, _scores


def _both_sides(plan, claims=None):
    from lotterylib.report import scorecard

    return _cached("both_sides", plan, lambda: scorecard.both_sides(plan, **({"claims": claims} if claims else {})),
                   claims)


def testability_table(plan: Plan | str) -> pd.DataFrame:
    """The full models, the majority baseline and whether each task is testable (the scorecard's view)."""
    from lotterylib.report import scorecard

    return scorecard.testability_view(_both_sides(plan)[1])


def comparisons_table(plan: Plan | str, claims=("C1", "C2", "C3", "C4")) -> pd.DataFrame:
    """The comparisons of ``claims`` by the one rule, ours beside the paper's (the scorecard's view)."""
    from lotterylib.report import scorecard

    comparisons, testability = _both_sides(plan)
    return scorecard.side_by_side(comparisons, claims=tuple(claims), testable=testability)


def fig2_bars(plan: Plan | str):
    """The good / random / bad bars of each method that has scores (m-pruning, then s-pruning)."""
    from lotterylib.report import plots

    scores, full = _scores(plan), _full(plan)
    figs = [plots.subnetwork_bars(scores, full, m) for m in ("m", "s") if len(scores) and m in set(scores["method"])]
    if not figs:
        return _say("*No subnetwork scores in this plan's results yet.*")
    return figs


def fig2_bars_text(plan: Plan | str) -> str:
    """Per method: on how many tasks the re-fine-tuned random and bad subnetworks reach 90 % of good's mean."""
    scores = _scores(plan)
    if not len(scores):
        return "No subnetwork scores in this plan's results yet."
    parts = []
    for method in ("m", "s"):
        text = _against_good(scores[scores["method"] == method])
        if text:
            parts.append(f"{method}-pruning: {text}")
    return ("Re-fine-tuned, " + "; ".join(parts) + " (means over seeds; the rule's verdicts are in the tables)."
            if parts else "No re-fine-tuned subnetwork yet.")


def fig2_cells_table(plan: Plan | str) -> pd.DataFrame:
    """Mean ± std (n) of every method, stage and subnetwork, per task."""
    scores = _scores(plan)
    if not len(scores):
        return pd.DataFrame()
    return collect.cell_table(scores[scores["method"].isin(["m", "s"])])


def fig2_sizes_table(plan: Plan | str) -> pd.DataFrame:
    """Share of m-prunable weights kept by the good subnetworks, per task and method."""
    scores = _scores(plan)
    if not len(scores):
        return pd.DataFrame()
    good = scores[(scores["stage"] == "pruned") & (scores["subnetwork"] == "good")]
    # Two index levels: collect.cell_table re-indexes by tuples, which a one-level index never matches.
    table = collect.cell_table(good, index=("task", "subnetwork"), columns=("method",), value="weights_kept_share",
                               empty={"m": "no subnetwork", "s": "no subnetwork"})
    return table.drop(columns="subnetwork").rename(columns={"m": "m-pruning", "s": "s-pruning"})


def super_sizes_table(plan: Plan | str) -> pd.DataFrame:
    from lotterylib.report import scorecard

    return scorecard.super_sizes_view(collect.super_masks(plan))


def super_scores_table(plan: Plan | str) -> pd.DataFrame:
    scores = _scores(plan)
    supers = scores[scores["method"] == "super"] if len(scores) else scores
    if not len(supers):
        return pd.DataFrame()
    table = collect.cell_table(supers, index=("task", "method"), columns=("subnetwork",))  # method: "super"
    return table.drop(columns="method")[["task", *[s for s in ("good", "random", "bad") if s in table.columns]]]


def super_bars(plan: Plan | str):
    from lotterylib.report import plots

    scores = _scores(plan)
    supers = scores[scores["method"] == "super"] if len(scores) else scores
    if not len(supers):
        return _say("*No super-survivor re-fine-tunes in this plan's results yet.*")
    return plots.subnetwork_bars(supers, _full(plan), "super")


def no_subnetwork_table(plan: Plan | str) -> pd.DataFrame:
    """Searches that removed nothing (left out of every comparison)."""
    from lotterylib.report import scorecard

    nothing = collect.no_subnetwork_runs(plan)
    return scorecard.no_subnetwork_view(nothing) if len(nothing) else pd.DataFrame()


def table2_paper_table(root=None) -> pd.DataFrame:
    """The paper's Table 2, corrected cell marked; empty (with the reason in ``attrs["why"]``) without the data."""
    from lotterylib.read.paper import PaperDataNotFound, corrected_table2, load_table2
    from lotterylib.report import paper_figures as pf

    try:
        return pf.marked_table2(corrected_table2(load_table2(root)))
    except PaperDataNotFound as err:
        out = pd.DataFrame()
        out.attrs["why"] = f"The paper's Table 2 is not available here: {err}"
        return out


def table2_ours_table(plan: Plan | str) -> pd.DataFrame:
    """Our bad subnetworks beside the baselines (mean over seeds, n), the reported metric per task."""
    rows = collect.bad_rows(_scores(plan), _full(plan))
    return collect.bad_table(rows, _full(plan)["task"].unique()) if len(rows) else pd.DataFrame()


def table2_figure(plan: Plan | str):
    from lotterylib.report import plots

    rows = collect.bad_rows(_scores(plan), _full(plan))
    if not len(rows):
        return _say("*No results of this plan yet.*")
    return plots.bad_vs_baselines(rows)


def _against_good(scores: pd.DataFrame) -> str:
    """Per re-fine-tuned subnetwork other than good: on how many tasks its mean reaches good's mean less the
    comparison rule's tolerance (:data:`lotterylib.read.compare.TOLERANCE`, 10 %)."""
    from lotterylib.read.compare import TOLERANCE

    part = scores[scores["stage"] == "retrained"]
    means = part.groupby(["task", "subnetwork"])["score"].mean().unstack()
    if "good" not in means.columns:
        return ""
    parts = []
    for sub in ("random", "bad"):
        if sub in means.columns:
            both = means[["good", sub]].dropna()
            close = int((both[sub] >= (1 - TOLERANCE) * both["good"]).sum())
            parts.append(f"{sub} reaches {_percent(1 - TOLERANCE)} of good's mean on {close} of {len(both)} tasks")
    return "; ".join(parts)


def super_bars_text(plan: Plan | str) -> str:
    """Super-survivors' random and bad sets against the super-survivors, re-fine-tuned: the comparison rule's
    verdicts (METHOD section 9) on the tasks testable on both sides, as the scorecard judges them."""
    from lotterylib.report.beyond import verdict_counts

    scores = _scores(plan)
    if not len(scores) or not (scores["method"] == "super").any():
        return "No super-survivor re-fine-tunes in this plan's results yet."
    comparisons, testability = _both_sides(plan)
    ok = testability.groupby("task", sort=False)["testable"].all()
    tasks = [t for t in testability.loc[testability["side"] == "ours", "task"] if ok.get(t, False)]
    ours = comparisons[(comparisons["side"] == "ours") & (comparisons["claim"] == "super")
                       & comparisons["task"].isin(tasks)]
    parts = []
    for other in ("random", "bad"):
        rows = ours[(ours["other"] == f"super {other}") & (ours["n"] >= 2)]
        if len(rows):
            parts.append(f"{other} against the super-survivors: {verdict_counts(rows)}")
    if not parts:
        return "Re-fine-tuned: no comparison can be made yet (the rule needs two paired seeds on a testable task)."
    return (f"Re-fine-tuned, by the comparison rule on the tasks testable on both sides ({', '.join(tasks)}): "
            + "; ".join(parts) + ". Each gap with its interval is in the table below.")


def table2_text(plan: Plan | str) -> str:
    """On how many tasks each bad subnetwork beats the majority baseline (means over seeds)."""
    rows = collect.bad_rows(_scores(plan), _full(plan))
    if not len(rows):
        return "No results of this plan yet."
    wide = rows.pivot_table(index="task", columns="model", values="score")
    majority = next((c for c in wide.columns if c.startswith("majority")), None)
    if majority is None:
        return "No majority baseline in this plan's results yet."
    parts = []
    for col in [c for c in wide.columns if c.startswith("bad")]:
        both = wide[[col, majority]].dropna()
        name = re.sub(r"^bad subnetwork, (\S+) \(ours\)$", r"\1's bad subnetworks", col)
        parts.append(f"{name} beat the majority class on {int((both[col] > both[majority]).sum())} of {len(both)} tasks")
    text = "; ".join(parts) + " (means over seeds; the rule's verdict is in the table below)."
    return text[:1].upper() + text[1:]
