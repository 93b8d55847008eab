"""The attention-pattern figures: type shares per task and the gallery of example maps.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.patches import Patch

from lotterylib.read.pattern_data import Gallery
from lotterylib.read.pattern_rules import GROUPS, TYPES, WEIGHTS
from lotterylib.report import style
from lotterylib.report.style import TYPE_COLORS, task_order  # noqa: F401 (TYPE_COLORS re-exported)

#: Width of one bar with its three-line tick label at 9 pt (inches).
_BAR_IN = 0.42


def plot_type_shares(shares: pd.DataFrame, ncols: int = 3, title: str | None = None):
    """Stacked bars of type shares: one panel per task (GLUE order); bars = groups (all, surv[ivors], pruned,
    super), the fine-tuned model's types ('ft') then the pre-trained model's ('pre'); n = (seed, head) pairs.
    Panels per row: at most ``ncols``, fewer where the bars' labels would not fit at 9 pt."""

    tasks = task_order(shares["task"])
    n_bars = max(1, shares.groupby(["task", "weights", "group"]).ngroups // max(len(tasks), 1))
    fit = max(1, int((style.CONTENT_WIDTH_IN - 0.6) // (_BAR_IN * (n_bars + 1) + 0.5)))
    fig, axes = style.grid(len(tasks), min(ncols, fit), panel_height=2.6)
    short = {"all heads": "all", "survivors": "surv.", "pruned": "pruned", "super-survivors": "super"}
    for ax, task in zip(axes, tasks):
        sub = shares[shares["task"] == task]
        x, ticks, labels = 0.0, [], []
        for weights in WEIGHTS:
            for group in GROUPS:
                part = sub[(sub["weights"] == weights) & (sub["group"] == group)].set_index("type")
                if part.empty:
                    continue
                bottom = 0.0
                for kind in TYPES:
                    value = float(part.loc[kind, "share"]) if kind in part.index else 0.0
                    ax.bar(x, value, bottom=bottom, color=TYPE_COLORS[kind], width=0.8, edgecolor="white", lw=0.4)
                    bottom += value
                ticks.append(x)
                which = "ft" if weights == "finetuned" else "pre"
                labels.append(f"{which}\n{short[group]}\nn={int(part['n'].iloc[0])}")
                x += 1
            x += 0.6
        ax.set_xticks(ticks, labels, fontsize=9)
        ax.set_ylim(0, 1)
        ax.set_ylabel("share of heads")
        ax.set_title(task)
        ax.grid(axis="x", visible=False)
    handles = [Patch(color=TYPE_COLORS[k], label=k) for k in TYPES]
    style.legend_outside(fig, handles, ncol=3)
    if title:
        fig.suptitle(title)
    return fig


def plot_gallery(gallery: Gallery, picks: pd.DataFrame, per_type: int = 4, label_max: int = 16):
    """One row per type (named on the left), up to ``per_type`` maps each; token labels when a map has at most
    ``label_max`` tokens and they fit at 9 pt. Each map is scaled to its own largest weight; one colour bar gives
    that scale. Titles: task, layer/head, weights, seed."""

    kinds = [k for k in TYPES if k in set(picks["type"])] if len(picks) else []
    if not kinds:
        raise ValueError("no maps to draw: the picks are empty (see lotterylib.read.pattern_data.gallery_picks)")
    map_in = (style.CONTENT_WIDTH_IN - 1.4) / per_type
    fig, axes = style.subplots(len(kinds), per_type, height=len(kinds) * (map_in + 0.75) + 0.5)
    image = None
    for r, kind in enumerate(kinds):
        rows = picks[picks["type"] == kind]
        rank = {t: i for i, t in enumerate(task_order(rows["task"]))}
        rows = rows.iloc[np.argsort([rank[t] for t in rows["task"]], kind="stable")]  # GLUE order in each row
        for c in range(per_type):
            ax = axes[r, c]
            ax.grid(False)
            if c >= len(rows):
                ax.set_axis_off()
                if c == len(rows):
                    ax.text(0.5, 0.5, f"only {len(rows)} map(s)\nof this type", ha="center", va="center",
                            fontsize=9, color="grey", transform=ax.transAxes)
                continue
            row = rows.iloc[c]
            attention, tokens = gallery.map(row)
            attention = np.asarray(attention, dtype=float)
            image = style.heatmap(ax, attention / max(float(attention.max()), 1e-6), cmap="Blues", vmin=0, vmax=1,
                                  colorbar=False)
            if len(tokens) <= label_max and len(tokens) * 0.15 <= map_in:
                ticks = np.arange(len(tokens))
                ax.set_xticks(ticks, tokens, rotation=90, fontsize=9)
                ax.set_yticks(ticks, tokens, fontsize=9)
            else:
                ax.set_xticks([])
                ax.set_yticks([])
            ax.set_title(f"{row['task']} L{int(row['layer'])} H{int(row['head'])} "
                         f"({'ft' if row['weights'] == 'finetuned' else 'pre'})\nseed {row['seed']}", fontsize=9)
            if c == 0 and not len(ax.get_yticks()):
                ax.set_ylabel(kind, fontsize=10, fontweight="bold")
        if len(rows) and len(axes[r, 0].get_yticks()):
            axes[r, 0].set_title(f"{kind}\n" + axes[r, 0].get_title(), fontsize=9)
    if image is not None:
        style.shared_colorbar(image, list(axes.ravel()), "attention weight / the map's largest weight", shrink=0.5)
    return fig
