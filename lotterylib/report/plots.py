"""The book's figures: one seaborn style, labelled axes, readable at page width.

Every function takes tidy tables from :mod:`lotterylib.read.collect` (or arrays) and returns the
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


def table(df: pd.DataFrame, precision: int = 3, na_rep: str = ""):
    """A results table as the book shows it: no index column, numbers with ``precision`` decimals, text
    left-aligned and wrapped, HTML special characters escaped ("p < 1e-16" is text); a missing number shows
    ``na_rep`` (say why it is missing: the library's formatted tables do it cell by cell)."""
    return (df.style.hide(axis="index").format(precision=precision, na_rep=na_rep, escape="html")
            .set_properties(**{"text-align": "left", "white-space": "normal"}))


def _grid(n: int, ncols: int, width: float = 3.2, height: float = 2.8):
    ncols = max(1, min(ncols, n))
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False)
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    return fig, axes.ravel()


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
    """Fig. 2: good/random/bad, pruned and re-fine-tuned, mean and sample std over seeds (dots: the seeds), per
    task; the number of seeds under each bar (``n=0``: none yet). Runs without a subnetwork (a search that
    removed nothing) are not in ``scores`` (:func:`lotterylib.read.collect.subnetwork_scores`), so no bar averages them.

    ``full`` has per-task ``score`` (the full model, mean over seeds) and ``majority``.
    """
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    data = scores[scores["method"] == method]
    tasks = list(dict.fromkeys(data["task"]))
    fig, axes = _grid(len(tasks), ncols, width=3.4, height=3.0)
    stages = tuple(st for st in ("pruned", "retrained") if st in set(data["stage"]))  # super: re-fine-tuned only
    subs, width = tuple(SUBNETWORK_COLORS), 0.26
    for ax, task in zip(axes, tasks):
        sub = data[data["task"] == task]
        for i, stage in enumerate(stages):
            for j, name in enumerate(subs):
                x = i + (j - 1) * width
                values = sub[(sub["stage"] == stage) & (sub["subnetwork"] == name)]["score"].to_numpy(float)
                if len(values):
                    ax.bar(x, values.mean(), width=width * 0.95, color=SUBNETWORK_COLORS[name],
                           yerr=values.std(ddof=1) if len(values) > 1 else None, capsize=2, error_kw={"lw": 0.8})
                    ax.scatter(np.full(len(values), x), values, s=5, color="black", zorder=3)
                ax.annotate(f"n={len(values)}", (x, 0), xytext=(0, -2), textcoords="offset points",
                            xycoords=("data", "axes fraction"), ha="center", va="top", fontsize=6)
        ref = full[full["task"] == task]
        if len(ref):
            ax.axhline(ref["score"].mean(), color="black", lw=1.2)
            ax.axhline(ref["majority"].mean(), color="grey", lw=1, ls=":")
        if paper is not None and task in set(paper["task"]):
            ax.axhline(float(paper[paper["task"] == task]["mean"].iloc[0]), color="purple", lw=1, ls="--")
        size = sub["weights_kept_share"].dropna()
        ax.set_title(f"{task}" + (f"\n{100 * size.mean():.0f}% of prunable weights kept" if len(size) else ""),
                     fontsize=10)
        ax.set_xticks(range(len(stages)), stages)
        ax.set_xlim(-0.5, len(stages) - 0.5)  # a missing bar keeps its place (and its n=0)
        ax.tick_params(axis="x", pad=10)
        ax.set_ylabel(sub["metric"].iloc[0] if len(sub) else "")
    handles = [Patch(color=c, label=name) for name, c in SUBNETWORK_COLORS.items()]
    handles += [Line2D([], [], color="black", lw=1.2, label="full model"),
                Line2D([], [], color="grey", lw=1, ls=":", label="majority class")]
    if paper is not None:
        handles.append(Line2D([], [], color="purple", lw=1, ls="--", label="paper full (bert-base)"))
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), fontsize=7.5, frameon=False)
    fig.suptitle(METHOD_NAMES.get(method, method) + ": mean ± sample std over seeds (n: seeds per bar)")
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


# --- the paper's own data (chapter notebooks/figures/paper_*) ---------------------------------------

def survival_detail(head_mean, head_std, mlp_mean, mlp_std, title: str = ""):
    """Fig. 1b as the paper draws it: one task, heads (layers x heads) and MLPs (1 x layers), each cell the
    share of seeds keeping the component over its sample std."""
    head_mean, head_std = np.asarray(head_mean, dtype=float), np.asarray(head_std, dtype=float)
    mlp_mean, mlp_std = np.asarray(mlp_mean, dtype=float), np.asarray(mlp_std, dtype=float)
    n_layers, n_heads = head_mean.shape
    fig = plt.figure(figsize=(0.55 * n_heads + 1.2, 0.55 * n_layers + 1.8))
    grid = fig.add_gridspec(2, 2, height_ratios=[n_layers, 1.4], width_ratios=[1, 0.035])
    ax, ax_mlp, cax = fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[1, 0]), fig.add_subplot(grid[:, 1])

    def cells(mean, std):
        return np.vectorize(lambda m, s: f"{m:.1f}\n±{s:.2f}")(mean, std)

    common = dict(vmin=0, vmax=1, cmap="viridis", fmt="", linewidths=0.3, annot_kws={"size": 7})
    sns.heatmap(head_mean, ax=ax, annot=cells(head_mean, head_std), cbar_ax=cax,
                cbar_kws={"label": "share of seeds in which it survives"}, **common)
    ax.set_xlabel("head")
    ax.set_ylabel("layer")
    ax.set_title(title or "heads")
    sns.heatmap(mlp_mean[None, :], ax=ax_mlp, annot=cells(mlp_mean[None, :], mlp_std[None, :]), cbar=False, **common)
    ax_mlp.set_xlabel("layer (MLP)")
    ax_mlp.set_yticks([])
    return fig


def kappa_points(comparison: pd.DataFrame, paper_range: tuple[float, float], columns: dict[str, str]):
    """Fleiss' kappa per task: one marker per series (``columns``: column -> marker), the paper's range shaded."""
    tasks = list(comparison["task"])
    fig, ax = plt.subplots(figsize=(8.4, 0.38 * len(tasks) + 1.2))
    ax.axvspan(*paper_range, color="#e9c46a", alpha=0.35, label=f"paper: {paper_range[0]}-{paper_range[1]}")
    palette = sns.color_palette("deep", len(columns))
    for (col, marker), color, offset in zip(columns.items(), palette, np.linspace(-0.15, 0.15, len(columns))):
        ax.scatter(comparison[col], np.arange(len(tasks)) + offset, marker=marker, s=42, color=color, label=col,
                   zorder=3)
    ax.axvline(0, color="grey", lw=0.8)
    ax.set_yticks(np.arange(len(tasks)), tasks)
    ax.invert_yaxis()
    ax.set_xlabel("Fleiss' kappa over the seeds")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return fig


def overlap_triangle(mean: pd.DataFrame, std: pd.DataFrame, marked: pd.DataFrame | None = None, title: str = "",
                     fmt: str = ".1f", unit: str = "heads kept in both tasks"):
    """Fig. 5 as the paper draws it: lower triangle of a task x task overlap, mean over std in each cell; the
    diagonal (each task with itself) is written but not coloured; ``marked`` (bool frame) adds a '*'."""
    n = len(mean)
    fig, ax = plt.subplots(figsize=(0.78 * n + 1.6, 0.7 * n + 1.0))
    hide = np.triu(np.ones((n, n), dtype=bool))  # upper triangle and diagonal: not coloured
    sns.heatmap(mean, mask=hide, cmap="Purples", ax=ax, linewidths=0.5, cbar_kws={"label": unit}, square=True)
    ax.grid(False)
    for i in range(n):
        for j in range(i + 1):
            m, s = mean.iat[i, j], std.iat[i, j]
            star = "*" if marked is not None and i != j and bool(marked.iat[i, j]) else ""
            text = "" if not np.isfinite(m) else f"{m:{fmt}}{star}\n±{s:{fmt}}"
            ax.text(j + 0.5, i + 0.5, text, ha="center", va="center", fontsize=7.5,
                    color="black" if i == j or m <= np.nanmean(mean.values[~hide]) else "white")
    ax.set_xlabel("task")
    ax.set_ylabel("task")
    ax.set_title(title)
    return fig


def published_subnetwork_bars(scores: pd.DataFrame, reference: pd.DataFrame, method: str,
                              titles: dict[str, str] | None = None, ncols: int = 3):
    """Fig. 2 from published means and sample stds: good, random, bad; pruned (light) and re-fine-tuned
    (solid); where the paper's figure drew another series (``paper figure differs``), that bar is added,
    hatched. ``scores``: :func:`lotterylib.report.paper_figures.fig2_scores`; ``reference``: ``fig2_reference``."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    data = scores[scores["method"] == method]
    tasks = list(dict.fromkeys(data["task"]))
    fig, axes = _grid(len(tasks), ncols, width=3.5, height=2.9)
    any_drawn = False
    for ax, task in zip(axes, tasks):
        sub = data[data["task"] == task].set_index(["subnetwork", "stage"])
        x, centres = 0.0, []
        for name in ("good", "random", "bad"):
            start = x
            for stage in ("pruned", "retrained"):
                row = sub.loc[(name, stage)]
                ax.bar(x, row["mean"], yerr=row["std"], width=0.9, color=SUBNETWORK_COLORS[name],
                       alpha=0.45 if stage == "pruned" else 1.0, capsize=2, error_kw={"lw": 0.8})
                x += 1
                if row["paper figure differs"]:
                    any_drawn = True
                    ax.bar(x, row["paper figure mean"], yerr=row["paper figure std"], width=0.9, facecolor="white",
                           edgecolor=SUBNETWORK_COLORS[name], hatch="xxx", capsize=2, error_kw={"lw": 0.8})
                    x += 1
            centres.append((start + x - 1) / 2)
            x += 0.6
        ref = reference[reference["task"] == task].iloc[0]
        ax.axhline(ref["full"], color="black", lw=1.1)
        ax.axhline(ref["majority"], color="grey", lw=1, ls=":")
        ax.set_xticks(centres, ["good", "random", "bad"], fontsize=8)
        ax.set_ylabel(ref["metric"], fontsize=8)
        ax.set_ylim(bottom=min(0.0, ax.get_ylim()[0]))
        ax.set_title(titles.get(task, task) if titles else task, fontsize=9)
    handles = [Patch(facecolor="grey", alpha=0.45, label="pruned (fine-tuned model + mask)"),
               Patch(facecolor="grey", label="re-fine-tuned from pre-trained weights"),
               Line2D([], [], color="black", lw=1.1, label="full model"),
               Line2D([], [], color="grey", lw=1, ls=":", label="majority class")]
    if any_drawn:
        handles.append(Patch(facecolor="white", edgecolor="black", hatch="xxx",
                             label="as drawn in the paper's figure (another results file)"))
    fig.legend(handles=handles, loc="outside lower center", ncol=3, fontsize=7.5, frameon=False)
    fig.suptitle(METHOD_NAMES.get(method, method) + ": mean ± sample std over 5 seeds (authors' dev scores)")
    return fig



def survival_stat_heatmaps(masks_by_task: dict[str, dict], stat: str = "share", ncols: int = 3,
                           title: str | None = None):
    """Per task, layers x (heads, gap, MLP): the share of seeds keeping each component (``stat='share'``) or
    the sample std of that kept/pruned outcome over the seeds (``stat='std'``, ddof=1).

    Drawn with ``imshow`` (seaborn's heatmap redraws the whole figure once per panel, which is slow for
    grids). Fig. 1 of the book.
    """
    if stat not in ("share", "std"):
        raise ValueError(f"stat={stat!r} is unknown: use 'share' or 'std'")
    tasks = list(masks_by_task)
    fig, axes = _grid(len(tasks), ncols, width=3.6, height=3.4)
    cmap, vmax, label = (("viridis", 1.0, "share of seeds kept") if stat == "share"
                         else ("magma", 0.6, "std over seeds"))
    image = None
    for ax, task in zip(axes, tasks):
        heads = np.asarray(masks_by_task[task]["head_mask"], dtype=float)  # (S, L, H)
        mlps = np.asarray(masks_by_task[task]["mlp_mask"], dtype=float)  # (S, L)
        if stat == "share":
            h, m = heads.mean(0), mlps.mean(0)
        else:
            ddof = 1 if len(heads) > 1 else 0
            h, m = heads.std(0, ddof=ddof), mlps.std(0, ddof=ddof)
        grid = np.ma.masked_invalid(np.concatenate([h, np.full((h.shape[0], 1), np.nan), m[:, None]], axis=1))
        image = ax.imshow(grid, cmap=cmap, vmin=0, vmax=vmax, aspect="equal", interpolation="nearest")
        n_layers, n_heads = h.shape
        ax.set_xticks(np.arange(n_heads + 2), [str(k) for k in range(n_heads)] + ["", "MLP"], fontsize=6)
        ax.set_yticks(np.arange(n_layers), [str(k) for k in range(n_layers)], fontsize=6)
        ax.grid(False)
        ax.set_xlabel("head")
        ax.set_ylabel("layer")
        ax.set_title(f"{task} ({len(heads)} seeds)", fontsize=10)
    fig.colorbar(image, ax=list(axes[:len(tasks)]), label=label, shrink=0.6)
    if title:
        fig.suptitle(title)
    return fig


def bad_vs_baselines(long: pd.DataFrame):
    """Table 2 as a figure: bad subnetworks (re-fine-tuned) beside the majority baseline and the full model.

    ``long`` has columns model, task, score (one row per model and task: the mean over seeds) and, optionally,
    ``n`` (the seeds behind each mean, written on the bar).
    """
    tasks = list(dict.fromkeys(long["task"]))
    models = list(dict.fromkeys(long["model"]))
    fig, ax = plt.subplots(figsize=(max(5.0, 1.3 * len(tasks) + 2), 3.2))
    colors = sns.color_palette("deep", len(models))
    width = 0.8 / max(len(models), 1)
    for j, model in enumerate(models):
        rows = long[long["model"] == model].set_index("task").reindex(tasks)
        x = np.arange(len(tasks)) + (j - (len(models) - 1) / 2) * width
        bars = ax.bar(x, rows["score"].fillna(0.0), width=width * 0.95, color=colors[j], label=model)
        if "n" in rows:
            ax.bar_label(bars, labels=["n=0" if pd.isna(n) else f"n={int(n)}" for n in rows["n"]], fontsize=5.5,
                         padding=1)
    ax.set_xticks(range(len(tasks)), tasks)
    ax.set_xlabel("")
    ax.set_ylabel("dev score (reported metric)")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    ax.set_title("bad subnetworks, re-fine-tuned, beside the baselines (n: seeds per bar)")
    return fig


VERDICT_COLORS = {"holds": "#2a9d8f", "does not hold": "#e76f51", "not testable at this scale": "#d9d9d9"}


def verdict_grid(card: pd.DataFrame, columns: dict[str, str] | None = None):
    """Claims (rows) x sides (columns), each cell coloured by its verdict and labelled with it.

    ``card``: one row per claim with a ``claim`` column and one verdict column per side; ``columns`` maps
    the card's verdict columns to the labels drawn on top (default: {"paper verdict": "paper's data",
    "verdict": "ours"}).
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch, Rectangle

    columns = columns or {"paper verdict": "paper's data, same rule", "verdict": "ours"}
    fig, ax = plt.subplots(figsize=(2.6 * len(columns) + 1.2, 0.42 * len(card) + 0.9))
    for j, col in enumerate(columns):
        for i, value in enumerate(card[col]):
            color = VERDICT_COLORS.get(value, "#ffffff")
            ax.add_patch(Rectangle((j, i), 0.96, 0.9, color=color))
            ax.text(j + 0.48, i + 0.45, value or "-", ha="center", va="center", fontsize=8,
                    color="white" if value in ("holds", "does not hold") else "black")
    ax.set_xlim(0, len(columns))
    ax.set_ylim(len(card), 0)
    ax.set_xticks([j + 0.48 for j in range(len(columns))], list(columns.values()))
    ax.xaxis.tick_top()
    ax.set_yticks([i + 0.45 for i in range(len(card))], list(card["claim"]))
    ax.tick_params(length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    ax.grid(False)
    ax.legend(handles=[Patch(color=c, label=v) for v, c in VERDICT_COLORS.items()], loc="upper center",
              bbox_to_anchor=(0.5, -0.02), ncol=3, fontsize=8, frameon=False)
    if fig.get_layout_engine() is None:  # set_style() turns constrained layout on
        fig.tight_layout()
    return fig


def masks_by_seed(masks_by_task: dict[str, dict], max_tasks: int | None = None):
    """The good s-pruning masks themselves: one panel per (task, seed), heads (layers x heads) with the layer's
    MLP as the last column (dark: kept). Agreement across seeds reads along each row of panels."""
    tasks = list(masks_by_task)[:max_tasks]
    n_seeds = max(len(masks_by_task[t]["head_mask"]) for t in tasks)
    first = masks_by_task[tasks[0]]["head_mask"][0]
    n_layers, n_heads = first.shape
    fig, axes = plt.subplots(len(tasks), n_seeds, squeeze=False,
                             figsize=(n_seeds * (0.16 * (n_heads + 2) + 0.4) + 0.6,
                                      len(tasks) * (0.16 * n_layers + 0.6) + 0.4))
    for i, task in enumerate(tasks):
        m = masks_by_task[task]
        seeds = m.get("seeds", range(len(m["head_mask"])))
        for j in range(n_seeds):
            ax = axes[i, j]
            ax.set_xticks([])
            ax.set_yticks([])
            if j >= len(m["head_mask"]):
                ax.axis("off")
                continue
            cells = np.full((n_layers, n_heads + 2), np.nan)
            cells[:, :n_heads] = m["head_mask"][j]
            cells[:, -1] = m["mlp_mask"][j]
            ax.imshow(cells, cmap="Greens", vmin=-0.3, vmax=1.0, aspect="equal", interpolation="nearest")
            ax.set_title(f"seed {list(seeds)[j]}", fontsize=8)
            if j == 0:
                ax.set_ylabel(task, fontsize=9)
    fig.suptitle("good s-pruning masks, seed by seed (rows: layers; last column: MLP; dark: kept)", fontsize=10)
    if fig.get_layout_engine() is None:  # set_style() turns constrained layout on
        fig.tight_layout()
    return fig
