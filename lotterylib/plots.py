"""The book's figures: one seaborn style, labelled axes, readable at page width.

Every function takes tidy tables from :mod:`lotterylib.collect` (or arrays) and returns the
matplotlib figure; nothing here reads files.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

SUBNETWORK_COLORS = {"good": "#2a9d8f", "random": "#e9c46a", "bad": "#e76f51"}
METHOD_NAMES = {"m": "m-pruning (weights)", "s": "s-pruning (heads and MLPs)", "super": "super-survivors"}


def set_style() -> None:
    """The one style of every figure in the book."""
    sns.set_theme(context="notebook", style="whitegrid", font_scale=1.0,
                  rc={"figure.dpi": 110, "savefig.dpi": 110, "axes.titleweight": "bold",
                      "figure.constrained_layout.use": True})


def _grid(n: int, ncols: int, width: float = 3.2, height: float = 2.8):
    ncols = max(1, min(ncols, n))
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False)
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    return fig, axes.ravel()


def survival_heatmaps(masks_by_task: dict[str, dict], ncols: int = 3, title: str | None = None):
    """Fig. 1: share of seeds in which each head (layers x heads) and each MLP survives, per task."""
    tasks = list(masks_by_task)
    fig, axes = _grid(len(tasks), ncols, width=3.6, height=3.4)
    for ax, task in zip(axes, tasks):
        heads = masks_by_task[task]["head_mask"].mean(0)  # (L, H)
        mlps = masks_by_task[task]["mlp_mask"].mean(0)  # (L,)
        grid = np.concatenate([heads, np.full((heads.shape[0], 1), np.nan), mlps[:, None]], axis=1)
        sns.heatmap(grid, ax=ax, vmin=0, vmax=1, cmap="viridis", cbar=ax is axes[len(tasks) - 1],
                    cbar_kws={"label": "share of seeds kept"}, square=True, linewidths=0.3,
                    annot=grid.size <= 100, fmt=".1f", annot_kws={"size": 6})
        n_heads = heads.shape[1]
        ax.set_xticks(np.arange(n_heads + 2) + 0.5, [str(h) for h in range(n_heads)] + ["", "MLP"], fontsize=7)
        ax.set_yticks(np.arange(heads.shape[0]) + 0.5, [str(layer) for layer in range(heads.shape[0])], fontsize=7)
        ax.set_xlabel("head")
        ax.set_ylabel("layer")
        ax.set_title(f"{task} ({len(masks_by_task[task]['seeds'])} seeds)")
    if title:
        fig.suptitle(title)
    return fig


def layer_shares(df: pd.DataFrame, value: str = "share", hue: str = "component", title: str | None = None):
    """Surviving share per layer (lines per ``hue``), one panel per task."""
    tasks = list(dict.fromkeys(df["task"]))
    fig, axes = _grid(len(tasks), 3)
    for ax, task in zip(axes, tasks):
        sub = df[df["task"] == task]
        sns.lineplot(sub, x="layer", y=value, hue=hue, marker="o", ax=ax, errorbar="sd",
                     legend=ax is axes[0])
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(task)
        ax.set_ylabel("share kept")
        ax.set_xticks(sorted(sub["layer"].unique()))
    if title:
        fig.suptitle(title)
    return fig


def subnetwork_bars(scores: pd.DataFrame, full: pd.DataFrame, method: str, ncols: int = 3,
                    paper: pd.DataFrame | None = None):
    """Fig. 2: good/random/bad, pruned and re-fine-tuned, mean and std over seeds, per task.

    ``full`` has per-task ``score`` (the full model, mean over seeds) and ``majority``.
    """
    data = scores[scores["method"] == method]
    tasks = list(dict.fromkeys(data["task"]))
    fig, axes = _grid(len(tasks), ncols, width=3.4, height=3.0)
    for ax, task in zip(axes, tasks):
        sub = data[data["task"] == task]
        sns.barplot(sub, x="stage", y="score", hue="subnetwork", order=["pruned", "retrained"],
                    hue_order=[s for s in SUBNETWORK_COLORS if s in set(sub["subnetwork"])],
                    palette=SUBNETWORK_COLORS, errorbar="sd", capsize=0.1, ax=ax, legend=ax is axes[0])
        sns.stripplot(sub, x="stage", y="score", hue="subnetwork", order=["pruned", "retrained"],
                      hue_order=[s for s in SUBNETWORK_COLORS if s in set(sub["subnetwork"])],
                      dodge=True, palette="dark:black", size=2.5, ax=ax, legend=False)
        ref = full[full["task"] == task]
        if len(ref):
            ax.axhline(ref["score"].mean(), color="black", lw=1.2, label="full model")
            ax.axhline(ref["majority"].mean(), color="grey", lw=1, ls=":", label="majority")
        if paper is not None and task in set(paper["task"]):
            ax.axhline(float(paper[paper["task"] == task]["mean"].iloc[0]), color="purple", lw=1, ls="--",
                       label="paper full (bert-base)")
        size = sub["weights_kept_share"].dropna()
        ax.set_title(f"{task}" + (f"\n{100 * size.mean():.0f}% of prunable weights kept" if len(size) else ""),
                     fontsize=10)
        ax.set_xlabel("")
        ax.set_ylabel(sub["metric"].iloc[0] if len(sub) else "")
        if ax is axes[0]:
            ax.legend(fontsize=7, loc="lower left")
    fig.suptitle(METHOD_NAMES.get(method, method))
    return fig


def importance_histogram(df: pd.DataFrame, bins: int = 10):
    """Fig. 3: normalised importance of the live heads and MLPs at every s-pruning step."""
    fig, axes = plt.subplots(1, 2, figsize=(8, 3))
    for ax, kind in zip(axes, ("head", "mlp")):
        sub = df[df["kind"] == kind]
        sns.histplot(sub, x="score", bins=bins, binrange=(0, 1), stat="percent", ax=ax, color="#457b9d")
        ax.set_title(f"{kind}s, all steps, tasks and seeds (n={len(sub)})")
        ax.set_xlabel("normalised importance")
    return fig


def overlap_heatmap(mean: pd.DataFrame, std: pd.DataFrame, null: pd.DataFrame | None = None, unit: str = ""):
    """Fig. 5: pairwise overlap of surviving heads between tasks (same seed index)."""
    ncols = 2 if null is not None else 1
    fig, axes = plt.subplots(1, ncols, figsize=(4.6 * ncols, 4), squeeze=False)
    labels = mean.round(1).astype(str) + "\n±" + std.round(1).astype(str)
    sns.heatmap(mean, annot=labels, fmt="", cmap="mako_r", ax=axes[0, 0], cbar_kws={"label": unit},
                annot_kws={"size": 7})
    axes[0, 0].set_title("observed (mean ± std over seeds)")
    if null is not None:
        sns.heatmap(null, annot=True, fmt=".1f", cmap="mako_r", ax=axes[0, 1], cbar_kws={"label": unit},
                    annot_kws={"size": 7}, vmin=float(np.nanmin(mean.values)), vmax=float(np.nanmax(mean.values)))
        axes[0, 1].set_title("chance (survivors re-placed at random)")
    return fig


def trace_lines(df: pd.DataFrame, method: str):
    """Pruning traces: score relative to the full model against the size of the subnetwork."""
    data = df[df["method"] == method]
    x, x_label = (("sparsity", "sparsity (share of prunable weights removed)") if method == "m"
                  else ("step", "s-pruning step (importance recomputed each step)"))
    tasks = list(dict.fromkeys(data["task"]))
    fig, axes = _grid(len(tasks), 3)
    for ax, task in zip(axes, tasks):
        sub = data[data["task"] == task]
        sns.lineplot(sub, x=x, y="relative", hue="seed", style="phase" if method == "s" else None,
                     marker="o", markersize=3, ax=ax, palette="tab10", legend=ax is axes[0])
        ax.axhline(0.9, color="red", lw=1, ls="--")
        ax.set_title(task)
        ax.set_xlabel(x_label)
        ax.set_ylabel("metric / full model")
    fig.suptitle(METHOD_NAMES[method] + ": search traces (red: the 90 % line)")
    return fig
