"""The attention-patterns page (``attention_patterns``): the gallery, type shares and the C10 association."""

from __future__ import annotations

import pandas as pd

from lotterylib.config.plans import Plan
from lotterylib.report.views._common import _cached, _say


def _rules():
    from lotterylib.read import pattern_rules

    return pattern_rules.DEFAULT_RULES


def pattern_rules_table() -> pd.DataFrame:
    return _rules().table()


def pattern_thresholds_table() -> pd.DataFrame:
    return _rules().thresholds()


def _gallery(plan):
    from lotterylib.read import pattern_data

    return _cached("gallery", plan, lambda: pattern_data.load_gallery(plan, _rules()))


def gallery(plan: Plan | str):
    """The plan's gallery of raw attention maps, typed by the page's rules (the one the gallery figure draws)."""
    return _gallery(plan)


def gallery_counts_table(plan: Plan | str) -> pd.DataFrame:
    """Number of gallery maps of each type, per task and weights (fine-tuned, pre-trained)."""
    from lotterylib.read import pattern_rules

    table = _gallery(plan).table
    if table.empty:
        return pd.DataFrame()
    counts = table.groupby(["task", "weights"])["type"].value_counts().unstack(fill_value=0)
    return counts.reindex(columns=list(pattern_rules.TYPES), fill_value=0)


def gallery_text(plan: Plan | str) -> str:
    table = _gallery(plan).table
    if table.empty:
        return "*No gallery maps yet: no run of this plan has finished fine-tuning.*"
    return (f"{len(table)} maps (runs x weights x examples x heads) from "
            f"{table.groupby(['task', 'seed']).ngroups} runs; number of maps of each type:")


def gallery_figure(plan: Plan | str, per_type: int = 4):
    from lotterylib.read import pattern_data, pattern_rules
    from lotterylib.report import pattern_plots

    gallery = _gallery(plan)
    if gallery.table.empty:
        return None
    picks = pattern_data.gallery_picks(gallery.table, per_type=per_type, seed=0)
    fig = pattern_plots.plot_gallery(gallery, picks, per_type=per_type)
    absent = [t for t in pattern_rules.TYPES if t not in set(picks["type"])]
    if absent:
        _say(f"No gallery map is of type: {', '.join(absent)}.")
    return fig


def _heads(plan, aggregate: str) -> pd.DataFrame:
    from lotterylib.read import pattern_data

    return _cached("pattern_heads", plan, lambda: pattern_data.head_table(plan, _rules(), aggregate), aggregate)


def type_shares(plan: Plan | str, aggregate: str = "mean") -> pd.DataFrame:
    from lotterylib.read import pattern_stats

    return pattern_stats.type_shares(_heads(plan, aggregate))


def type_shares_figure(plan: Plan | str, aggregate: str = "mean"):
    from lotterylib.report import pattern_plots

    shares, heads = type_shares(plan, aggregate), _heads(plan, aggregate)
    if shares.empty:
        return _say("*No attention statistics yet: no run of this plan has finished fine-tuning.*")
    if heads["kept"].isna().all():
        _say("*No s-pruning mask yet: only the shares of all heads can be shown.*")
    return pattern_plots.plot_type_shares(shares, title="Attention pattern types (share of heads)")


def type_shares_table(plan: Plan | str, aggregate: str = "mean", group: str | None = None) -> pd.DataFrame:
    """The type shares per task, weights and group (``group``: only that group, e.g. "super-survivors")."""
    from lotterylib.read import pattern_stats

    shares = type_shares(plan, aggregate)
    if group is not None and not shares.empty:
        shares = shares[shares["group"] == group]
    return pattern_stats.share_table(shares) if not shares.empty else pd.DataFrame()


def super_types_none(plan: Plan | str, aggregate: str = "mean") -> str:
    """Why the super-survivor table is empty."""
    heads = _heads(plan, aggregate)
    no_super = heads.empty or heads["super"].isna().all()
    return ("No super-survivor mask yet (it needs every seed of a task to be pruned)." if no_super
            else "The super-survivor masks keep no head.")


def association_table(plan: Plan | str, aggregate: str = "mean", weights: str = "finetuned") -> pd.DataFrame:
    """The C10 test per task and pooled (Cochran-Mantel-Haenszel, odds ratio); empty without heads."""
    from lotterylib.read import pattern_stats

    assoc = pattern_stats.association(_heads(plan, aggregate), weights=weights)
    return assoc.drop(columns=["test"]) if assoc["heads"].sum() else pd.DataFrame()


def association_text(plan: Plan | str, aggregate: str = "mean", weights: str = "finetuned",
                     alpha: float = 0.05) -> str:
    from lotterylib.read import pattern_stats

    text = pattern_stats.association_sentence(pattern_stats.association(_heads(plan, aggregate), weights=weights),
                                              alpha)
    return text if weights == "finetuned" else "Pre-trained weights: " + text


def association_by_seed_table(plan: Plan | str, aggregate: str = "mean") -> pd.DataFrame:
    from lotterylib.read import pattern_stats

    heads = _heads(plan, aggregate)
    if not len(heads) or not pattern_stats.association(heads, weights="pretrained")["heads"].sum():
        return pd.DataFrame()
    return pattern_stats.association_by_seed(heads)


def gallery_takeaway(plan: Plan | str) -> str:
    """The share of gallery maps of each type (fine-tuned and pre-trained weights pooled)."""
    counts = gallery_counts_table(plan)
    if counts.empty:
        return "No gallery maps yet: no run of this plan has finished fine-tuning."
    total = counts.sum()
    share = (total / total.sum()).sort_values(ascending=False)
    return ("Of the maps kept, " + ", ".join(f"{v:.0%} are {t}" for t, v in share.items())
            + "; the maps shown are drawn at random within each type.")
