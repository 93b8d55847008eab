"""The surviving heads and MLPs page (``fig1_survivors``): heatmaps, kept counts, layer shares."""

from __future__ import annotations

import numpy as np
import pandas as pd

from lotterylib.config.plans import Plan
from lotterylib.read import analysis, collect
from lotterylib.report.views._common import (
    LAYER_GROUPS,
    _masks,
    _say,
    header,
    layer_groups,
)


def fig1_heatmaps(plan: Plan | str):
    """The share of seeds in which each head and MLP survives (and its std over seeds, with more than one seed)."""
    from lotterylib.report import plots

    masks = _masks(plan)
    if not masks:
        return _say("*No s-pruning masks in this plan's results yet.*")
    figs = [plots.survival_stat_heatmaps(masks, "share")]
    if max(len(m["seeds"]) for m in masks.values()) > 1:
        figs.append(plots.survival_stat_heatmaps(masks, "std", title="standard deviation over seeds"))
    return figs


def fig1_kept_table(plan: Plan | str) -> pd.DataFrame:
    """Per task: seeds, heads and MLPs kept (mean over seeds) out of how many, and the super-survivors."""
    rows = []
    for task, m in _masks(plan).items():
        counts = [analysis.kept_counts(h, mm) for h, mm in zip(m["head_mask"], m["mlp_mask"])]
        rows.append({"task": task, "seeds": len(counts),
                     "heads kept (mean)": float(np.mean([c["heads_kept"] for c in counts])),
                     "heads in all": counts[0]["heads_total"],
                     "MLPs kept (mean)": float(np.mean([c["mlps_kept"] for c in counts])),
                     "MLPs in all": counts[0]["mlps_total"],
                     "super-survivor heads": int(analysis.super_survivors(m["head_mask"]).sum()),
                     "super-survivor MLPs": int(analysis.super_survivors(m["mlp_mask"]).sum())})
    return pd.DataFrame(rows)


def fig1_layer_shares(plan: Plan | str) -> pd.DataFrame:
    """Long table: per task, layer and component (heads, MLP), the surviving share (heads: share of the layer's
    heads, mean over seeds; MLP: share of seeds keeping it) and the layer's third (:func:`layer_group`)."""
    rows = []
    for task, m in _masks(plan).items():
        n_layers = m["head_mask"].shape[1]
        groups = layer_groups(n_layers)
        for layer, share in enumerate(analysis.share_per_layer(m["head_mask"])):
            rows.append({"task": task, "layer": layer, "depth": groups[layer], "component": "heads",
                         "share": float(share)})
        for layer, share in enumerate(m["mlp_mask"].mean(0)):
            rows.append({"task": task, "layer": layer, "depth": groups[layer], "component": "MLP",
                         "share": float(share)})
    return pd.DataFrame(rows, columns=["task", "layer", "depth", "component", "share"])


def fig1_layer_figure(plan: Plan | str):
    from lotterylib.report import plots

    shares = fig1_layer_shares(plan)
    if shares.empty:
        return _say("*No s-pruning masks in this plan's results yet.*")
    return plots.layer_shares(shares, title="s-pruning: surviving share per layer")


def fig1_depth_table(plan: Plan | str) -> pd.DataFrame:
    """Mean surviving share per component and third of the layers (early, middle, late), all tasks pooled."""
    shares = fig1_layer_shares(plan)
    if shares.empty:
        return pd.DataFrame(columns=["component", *LAYER_GROUPS])
    table = shares.groupby(["component", "depth"])["share"].mean().unstack()
    table = table.reindex(columns=[g for g in LAYER_GROUPS if g in table.columns])
    return table.reindex(["heads", "MLP"]).dropna(how="all").reset_index()


def fig1_depth_text(plan: Plan | str) -> str:
    """One sentence: which third keeps the largest share of heads and of MLPs (claim C7's prediction)."""
    table = fig1_depth_table(plan)
    if table.empty:
        return "*No s-pruning masks in this plan's results yet.*"
    parts = []
    for _, row in table.iterrows():
        shares = row.drop("component").astype(float)
        parts.append(f"{row['component']}: the {shares.idxmax()} layers keep the most "
                     f"({', '.join(f'{g} {v:.2f}' for g, v in shares.items())})")
    return ("Mean surviving share by third of the layers, all tasks pooled: " + "; ".join(parts)
            + ". Claim C7 expects heads highest in the early and middle thirds, MLPs in the middle.")


def fig1_m_shares(plan: Plan | str) -> pd.DataFrame:
    """m-pruning: the share of each layer's attention and MLP weights the good subnetwork keeps, per task,
    seed, layer and component."""
    shares = collect.m_layer_shares(plan)
    if not len(shares):
        return pd.DataFrame(columns=["task", "seed", "layer", "component", "kept", "total", "share"])
    pooled = shares.groupby(["task", "seed", "layer", "component"], as_index=False)[["kept", "total"]].sum()
    pooled["share"] = pooled["kept"] / pooled["total"]
    return pooled


def fig1_m_figure(plan: Plan | str):
    from lotterylib.report import plots

    pooled = fig1_m_shares(plan)
    if pooled.empty:
        return _say("*No m-pruning results in this plan yet.*")
    return plots.layer_shares(pooled, title="m-pruning: surviving weight share per layer")


def fig1_m_text(plan: Plan | str) -> str:
    """Which component m-pruning keeps more of, pooled over tasks, seeds and layers."""
    pooled = fig1_m_shares(plan)
    if pooled.empty:
        return "No m-pruning results in this plan yet."
    by = pooled.groupby("component")[["kept", "total"]].sum()
    share = (by["kept"] / by["total"]).sort_values(ascending=False)
    return ("m-pruning keeps " + ", ".join(f"{share[c]:.0%} of the {header(c)} weights" for c in share.index)
            + " (all tasks, seeds and layers pooled).")


def fig1_heatmap_text(plan: Plan | str) -> str:
    """How many heads and MLPs survive in every seed (the super-survivors), summed over tasks."""
    kept = fig1_kept_table(plan)
    if kept.empty:
        return "No s-pruning masks in this plan's results yet."
    return (f"{int(kept['super-survivor heads'].sum())} heads and {int(kept['super-survivor MLPs'].sum())} MLPs "
            f"survive in every seed, over {len(kept)} tasks of {int(kept['heads in all'].iloc[0])} heads and "
            f"{int(kept['MLPs in all'].iloc[0])} MLPs each.")
