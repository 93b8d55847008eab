"""The importance and search pages (``fig3_importance``, ``traces``): importance scores and where each search stopped."""

from __future__ import annotations

import pandas as pd

from lotterylib.config.plans import Plan
from lotterylib.read import collect
from lotterylib.report.views._common import (
    _cached,
    _fraction_words,
    _say,
    search_fraction,
)


def _importance(plan) -> pd.DataFrame:
    return _cached("importance", plan, lambda: collect.importance_scores(plan))


def fig3_histogram(plan: Plan | str):
    from lotterylib.report import plots

    scores = _importance(plan)
    if not len(scores):
        return _say("*No s-pruning traces in this plan's results yet.*")
    return plots.importance_histogram(scores)


def fig3_first_step_table(plan: Plan | str) -> pd.DataFrame:
    """Per task, the distribution of the heads' scores at the first step (the full fine-tuned model)."""
    scores = _importance(plan)
    if not len(scores):
        return pd.DataFrame()
    first = scores[(scores["step"] == 1) & (scores["kind"] == "head")]
    return first.groupby("task")["score"].describe(percentiles=[0.25, 0.5, 0.75])


def trace_figures(plan: Plan | str):
    from lotterylib.report import plots

    trace = collect.traces(plan)
    figs = [plots.trace_lines(trace, m, fraction=search_fraction(plan)) for m in ("m", "s")
            if len(trace) and m in set(trace["method"])]
    if not figs:
        return _say("*No search traces in this plan's results yet.*")
    return figs


TRACE_COLUMNS = ("task", "seed", "method", "full_metric", "n_steps", "accepted_steps", "heads_kept", "mlps_kept",
                 "weights_kept", "weights_total", "skipped")


def traces_table(plan: Plan | str) -> pd.DataFrame:
    """Where each search stopped: one row per task, seed and method."""
    summaries = collect.search_summaries(plan)
    if not len(summaries):
        return pd.DataFrame()
    return summaries[[c for c in TRACE_COLUMNS if c in summaries]]


TRACES_EMPTY = {"heads_kept": "m-pruning keeps weights", "mlps_kept": "m-pruning keeps weights",
                "weights_kept": "s-pruning keeps heads", "weights_total": "s-pruning keeps heads",
                "skipped": "not skipped"}


def no_subnetwork_text(plan: Plan | str) -> str:
    """Why the runs of :func:`no_subnetwork_table` are left out, with the plan's threshold."""
    if not len(collect.no_subnetwork_runs(plan)):
        return "*Every search of this plan removed something.*"
    return (f"Searches without a subnetwork (skipped, or their first step already failed the {_fraction_words(plan)} "
            "rule): their "
            "good, random and bad would be the full model, so every comparison, mean and figure bar of the book "
            "leaves them out.")


def traces_text(plan: Plan | str) -> str:
    """How many searches the traces show and how many stopped at their first step."""
    summaries = collect.search_summaries(plan)
    if not len(summaries):
        return "No search traces in this plan's results yet."
    nothing = len(collect.no_subnetwork_runs(plan))
    counts = ", ".join(f"{n} {m}-pruning" for m, n in summaries["method"].value_counts().sort_index().items())
    return (f"{len(summaries)} searches ({counts}), {nothing} of which removed nothing; the dashed line is the "
            f"{_fraction_words(plan)} rule.")
