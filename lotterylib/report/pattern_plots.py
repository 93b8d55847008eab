"""The attention-pattern figures: type shares per task and the gallery of example maps.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.patches import Patch

from lotterylib.read.pattern_data import Gallery
from lotterylib.read.pattern_rules import GROUPS, TYPES, WEIGHTS

TYPE_COLORS = {"vertical": "#457b9d", "diagonal": "#e9c46a", "vertical+diagonal": "#2a9d8f",
               "block": "#e76f51", "heterogeneous": "#adb5bd"}

def plot_type_shares(shares: pd.DataFrame, ncols: int = 3, title: str | None = None):
    """Stacked bars of type shares: one panel per task; bars = groups (all, surv[ivors], pruned, super), the
    fine-tuned model's types ('ft') then the pre-trained model's ('pre'); n = (seed, head) pairs."""

    tasks = list(dict.fromkeys(shares["task"]))
    ncols = max(1, min(ncols, len(tasks)))
    nrows = int(np.ceil(len(tasks) / ncols)) if tasks else 1
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.3 * nrows), squeeze=False)
    axes = axes.ravel()
    for ax in axes[len(tasks):]:
        ax.set_visible(False)
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
        ax.set_xticks(ticks, labels, fontsize=6.5)
        ax.set_ylim(0, 1)
        ax.set_ylabel("share of heads")
        ax.set_title(task, fontsize=10)
        ax.grid(axis="x", visible=False)
    handles = [Patch(color=TYPE_COLORS[k], label=k) for k in TYPES]
    fig.legend(handles=handles, loc="outside lower center", ncol=len(TYPES), fontsize=8, frameon=False)
    if title:
        fig.suptitle(title)
    return fig

def plot_gallery(gallery: Gallery, picks: pd.DataFrame, per_type: int = 4, label_max: int = 16):
    """One row per type, up to ``per_type`` maps each; token labels when a map has at most ``label_max``
    tokens. Titles: task, layer/head, weights, seed."""

    kinds = [k for k in TYPES if k in set(picks["type"])] if len(picks) else []
    if not kinds:
        raise ValueError("no maps to draw: the picks are empty (see lotterylib.read.pattern_data.gallery_picks)")
    fig, axes = plt.subplots(len(kinds), per_type, figsize=(2.6 * per_type, 2.75 * len(kinds)), squeeze=False)
    for r, kind in enumerate(kinds):
        rows = picks[picks["type"] == kind]
        for c in range(per_type):
            ax = axes[r, c]
            ax.grid(False)
            if c >= len(rows):
                ax.set_axis_off()
                if c == len(rows):
                    ax.text(0.5, 0.5, f"only {len(rows)} map(s)\nof this type", ha="center", va="center",
                            fontsize=8, color="grey", transform=ax.transAxes)
                continue
            row = rows.iloc[c]
            attention, tokens = gallery.map(row)
            ax.imshow(attention, cmap="Blues", vmin=0, vmax=max(float(attention.max()), 1e-6),
                      interpolation="nearest")
            if len(tokens) <= label_max:
                ticks = np.arange(len(tokens))
                ax.set_xticks(ticks, tokens, rotation=90, fontsize=5.5)
                ax.set_yticks(ticks, tokens, fontsize=5.5)
            else:
                ax.set_xticks([])
                ax.set_yticks([])
            ax.set_title(f"{row['task']} L{int(row['layer'])} H{int(row['head'])} "
                         f"({'ft' if row['weights'] == 'finetuned' else 'pre'}, seed {row['seed']})\n{kind}",
                         fontsize=7.5)
    return fig

