"""The book's figures: one style (:mod:`lotterylib.report.style`), labelled axes, readable at page width.

Every function takes tidy tables from :mod:`lotterylib.read.collect` (or arrays) and returns the
matplotlib figure; nothing here reads files. Figures are at most the content column wide (7.5 in), text at
9 pt or more, tasks in GLUE order, legends outside the data, a colour bar beside every heatmap.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from lotterylib.read import analysis
from lotterylib.report import style
from lotterylib.report.style import SUBNETWORK_COLORS, VERDICT_COLORS, task_order  # noqa: F401 (re-exported)

METHOD_NAMES = {"m": "m-pruning (weights)", "s": "s-pruning (heads and MLPs)", "super": "super-survivors"}
SUBNETWORKS = ("good", "random", "bad")
COMPONENT_COLORS = {"head": style.SEED_COLORS[0], "heads": style.SEED_COLORS[0], "mlp": style.SEED_COLORS[2],
                    "mlps": style.SEED_COLORS[2], "MLP": style.SEED_COLORS[2]}


def set_style() -> None:
    """The one style of every figure in the book (:func:`lotterylib.report.style.set_style`)."""
    style.set_style()


def table(df: pd.DataFrame, precision: int = 3, na_rep: str = ""):
    """A results table as the book shows it: no index column, numbers with ``precision`` decimals, text
    left-aligned and wrapped, HTML special characters escaped ("p < 1e-16" is text); a missing number shows
    ``na_rep`` (say why it is missing: the library's formatted tables do it cell by cell)."""
    return (df.style.hide(axis="index").format(precision=precision, na_rep=na_rep, escape="html")
            .set_properties(**{"text-align": "left", "white-space": "normal"}))


def _grid(n: int, ncols: int, width: float | None = None, height: float = 2.4):
    """``n`` panels, ``ncols`` a row, at the column width; ``height`` per row of panels."""
    return style.grid(n, ncols, panel_height=height, fig_width=width)


def _lift_legend(fig, ax, ncol: int | None = None):
    """Move the legend seaborn drew on ``ax`` below the figure (outside every panel)."""
    legend = ax.get_legend()
    if legend is None:
        return None
    handles, labels = legend.legend_handles, [t.get_text() for t in legend.get_texts()]
    legend.remove()
    return style.legend_outside(fig, handles, labels, ncol=ncol or min(len(handles), 4))


def layer_shares(df: pd.DataFrame, value: str = "share", hue: str = "component", title: str | None = None):
    """Surviving share per layer (lines per ``hue``), one panel per task (GLUE order)."""
    tasks = task_order(df["task"])
    fig, axes = _grid(len(tasks), 3)
    levels = list(dict.fromkeys(df[hue])) if hue in df else []
    palette = {k: COMPONENT_COLORS.get(k, style.SEED_COLORS[i % len(style.SEED_COLORS)])
               for i, k in enumerate(levels)}
    for ax, task in zip(axes, tasks):
        sub = df[df["task"] == task]
        sns.lineplot(sub, x="layer", y=value, hue=hue, marker="o", ax=ax, errorbar="sd", palette=palette or None,
                     legend=ax is axes[0])
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(task)
        ax.set_xlabel("")
        ax.set_ylabel("")
        layers = sorted(sub["layer"].unique())
        ax.set_xticks(layers[::1 if len(layers) <= 8 else 2])
    fig.supxlabel("layer", fontsize=10)
    fig.supylabel("share kept (mean ± sd over seeds)", fontsize=10)
    _lift_legend(fig, axes[0])
    if title:
        fig.suptitle(title)
    return fig


def _stage_ticks(ax, stages) -> None:
    ax.set_xticks(range(len(stages)), [style.label(s) for s in stages])


def _seed_count(ax, x, n: int) -> None:
    """The seeds behind one bar, under it (0: no run yet)."""
    ax.annotate(str(n), (x, 0), xytext=(0, -2), textcoords="offset points", xycoords=("data", "axes fraction"),
                ha="center", va="top", fontsize=9)


def subnetwork_bars(scores: pd.DataFrame, full: pd.DataFrame, method: str, ncols: int = 3,
                    paper: pd.DataFrame | None = None):
    """Fig. 2: good/random/bad, pruned and re-fine-tuned, mean and sample std over seeds (dots: the seeds), per
    task (GLUE order); the number of seeds under each bar (0: none yet). Runs without a subnetwork (a search that
    removed nothing) are not in ``scores`` (:func:`lotterylib.read.collect.subnetwork_scores`), so no bar averages
    them. The paper's layout with the paper's values as markers: :func:`fig2_like_paper`.

    ``full`` has per-task ``score`` (the full model, mean over seeds) and ``majority``; ``paper`` (optional) per-task
    ``mean`` of the paper's full model.
    """
    data = scores[scores["method"] == method]
    tasks = task_order(data["task"])
    fig, axes = _grid(len(tasks), ncols, height=2.5)
    stages = tuple(st for st in ("pruned", "retrained") if st in set(data["stage"]))  # super: re-fine-tuned only
    width = 0.26
    for ax, task in zip(axes, tasks):
        sub = data[data["task"] == task]
        for i, stage in enumerate(stages):
            for j, name in enumerate(SUBNETWORKS):
                x = i + (j - 1) * width
                values = sub[(sub["stage"] == stage) & (sub["subnetwork"] == name)]["score"].to_numpy(float)
                if len(values):
                    ax.bar(x, values.mean(), width=width * 0.95, color=SUBNETWORK_COLORS[name],
                           yerr=values.std(ddof=1) if len(values) > 1 else None, capsize=2, error_kw={"lw": 0.8})
                    ax.scatter(np.full(len(values), x), values, s=5, color="black", zorder=3)
                _seed_count(ax, x, len(values))
        ref = full[full["task"] == task]
        if len(ref):
            ax.axhline(ref["score"].mean(), color=style.FULL_COLOR, lw=1.2)
            ax.axhline(ref["majority"].mean(), color=style.MAJORITY_COLOR, lw=1, ls=":")
        if paper is not None and task in set(paper["task"]):
            ax.axhline(float(paper[paper["task"] == task]["mean"].iloc[0]), color=style.PAPER_COLOR, lw=1, ls="--")
        size = sub["weights_kept_share"].dropna()
        ax.set_title(f"{task}" + (f"\n{100 * size.mean():.0f}% of prunable weights kept" if len(size) else ""))
        _stage_ticks(ax, stages)
        ax.set_xlim(-0.5, len(stages) - 0.5)  # a missing bar keeps its place (and its 0)
        ax.tick_params(axis="x", pad=12)
        ax.set_ylabel(sub["metric"].iloc[0] if len(sub) else "")
    handles = [Patch(color=c, label=name) for name, c in SUBNETWORK_COLORS.items()]
    handles += [Line2D([], [], color=style.FULL_COLOR, lw=1.2, label="full model"),
                Line2D([], [], color=style.MAJORITY_COLOR, lw=1, ls=":", label="majority class")]
    if paper is not None:
        handles.append(Line2D([], [], color=style.PAPER_COLOR, lw=1, ls="--", label="paper full (bert-base)"))
    style.legend_outside(fig, handles, ncol=3)
    fig.suptitle(METHOD_NAMES.get(method, method) + ": mean ± sample std over seeds\n"
                 "(dots: seeds; number under a bar: seeds behind it)")
    return fig


def _fig2_panel(ax, cells: dict, stages, paper: dict | None = None, drawn: dict | None = None) -> None:
    """One task of Fig. 2 in the paper's layout: good, random, bad groups; in each, pruned (light) then
    re-fine-tuned (solid) bars of mean ± std. ``cells``: (subnetwork, stage) -> {mean, std[, values]};
    ``values`` adds the seeds as dots and a missing cell a '0' (no run); ``paper``: (subnetwork, stage) -> the
    paper's mean, drawn as a marker on the bar; ``drawn``: (subnetwork, stage) -> {mean, std} of a series the
    paper's figure drew instead, a hatched bar beside it."""
    x, centres = 0.0, []
    for name in SUBNETWORKS:
        start = x
        for stage in stages:
            cell = cells.get((name, stage))
            alpha = 0.45 if stage == "pruned" and len(stages) > 1 else 1.0
            if cell is not None and np.isfinite(cell["mean"]):
                std = cell.get("std")
                ax.bar(x, cell["mean"], yerr=std if std is not None and np.isfinite(std) else None, width=0.9,
                       color=SUBNETWORK_COLORS[name], alpha=alpha, capsize=2, error_kw={"lw": 0.8})
                values = cell.get("values")
                if values is not None and len(values):
                    ax.scatter(np.full(len(values), x), values, s=6, color="black", zorder=3, lw=0)
            elif cell is None or "values" in cell:  # no run yet: a 0 on the baseline, inside the panel
                ax.annotate("0", (x, 0), xytext=(0, 2), textcoords="offset points",
                            xycoords=("data", "axes fraction"), ha="center", va="bottom", fontsize=9)
            if paper and (name, stage) in paper and np.isfinite(paper[(name, stage)]):
                ax.plot([x], [paper[(name, stage)]], ls="none", marker="D", ms=6, mfc="white",
                        mec=style.PAPER_COLOR, mew=1.6, zorder=4)
            x += 1
            if drawn and drawn.get((name, stage)) is not None:
                d = drawn[(name, stage)]
                ax.bar(x, d["mean"], yerr=d["std"], width=0.9, facecolor="white", edgecolor=SUBNETWORK_COLORS[name],
                       hatch="xxx", capsize=2, error_kw={"lw": 0.8})
                x += 1
        centres.append((start + x - 1) / 2)
        x += 0.6
    ax.set_xticks(centres, list(SUBNETWORKS))
    ax.set_xlim(-0.7, x - 0.9)
    ax.grid(axis="x", visible=False)


def _fig2_legend(fig, stages, extra=()) -> None:
    handles = []
    if "pruned" in stages:
        handles.append(Patch(facecolor="grey", alpha=0.45, label="pruned (fine-tuned model + mask)"))
    handles.append(Patch(facecolor="grey", label=f"{style.label('retrained')} from pre-trained weights"))
    handles += [Line2D([], [], color=style.FULL_COLOR, lw=1.1, label="full model"),
                Line2D([], [], color=style.MAJORITY_COLOR, lw=1, ls=":", label="majority class"), *extra]
    style.legend_outside(fig, handles, ncol=2)


def _y_floor(ax) -> None:
    ax.set_ylim(bottom=min(0.0, ax.get_ylim()[0]))


def published_subnetwork_bars(scores: pd.DataFrame, reference: pd.DataFrame, method: str,
                              titles: dict[str, str] | None = None, ncols: int = 3):
    """Fig. 2 from published means and sample stds: good, random, bad; pruned (light) and re-fine-tuned
    (solid); where the paper's figure drew another series (``paper figure differs``), that bar is added,
    hatched. ``scores``: :func:`lotterylib.report.paper_figures.fig2_scores`; ``reference``: ``fig2_reference``."""
    data = scores[scores["method"] == method]
    tasks = task_order(data["task"])
    fig, axes = _grid(len(tasks), ncols, height=2.3)
    stages = tuple(st for st in ("pruned", "retrained") if st in set(data["stage"]))
    any_drawn = False
    for ax, task in zip(axes, tasks):
        sub = data[data["task"] == task].set_index(["subnetwork", "stage"])
        cells = {key: {"mean": row["mean"], "std": row["std"]} for key, row in sub.iterrows()}
        drawn = {}
        if "paper figure differs" in sub:
            drawn = {key: {"mean": row["paper figure mean"], "std": row["paper figure std"]}
                     for key, row in sub.iterrows() if row["paper figure differs"]}
        any_drawn |= bool(drawn)
        _fig2_panel(ax, cells, stages, drawn=drawn)
        ref = reference[reference["task"] == task].iloc[0]
        ax.axhline(ref["full"], color=style.FULL_COLOR, lw=1.1)
        ax.axhline(ref["majority"], color=style.MAJORITY_COLOR, lw=1, ls=":")
        ax.set_ylabel(ref["metric"])
        _y_floor(ax)
        ax.set_title(titles.get(task, task) if titles else task)
    extra = [Patch(facecolor="white", edgecolor="black", hatch="xxx",
                   label="as drawn in the paper's figure (another results file)")] if any_drawn else []
    _fig2_legend(fig, stages, extra)
    fig.suptitle(METHOD_NAMES.get(method, method) + ": mean ± sample std over 5 seeds (authors' dev scores)")
    return fig


def fig2_like_paper(scores: pd.DataFrame, full: pd.DataFrame, method: str, paper: pd.DataFrame | None = None,
                    paper_reference: pd.DataFrame | None = None, ncols: int = 3, titles: dict[str, str] | None = None):
    """Our Fig. 2 in the layout of the paper-data rebuild (:func:`published_subnetwork_bars`): per task (GLUE
    order), good, random and bad groups of pruned (light) and re-fine-tuned (solid) bars, mean ± sample std over
    our seeds (dots: the seeds; '0': no run yet), our full model (solid) and majority class (dotted); the paper's
    values (bert-base, mean of 5 seeds) as white diamonds on the matching bars and the paper's full model as a
    dashed line.

    ``scores``: :func:`lotterylib.read.collect.subnetwork_scores`; ``full``: :func:`lotterylib.read.collect.full_scores`
    (per seed, or per task); ``paper``: :func:`lotterylib.report.paper_figures.fig2_scores` (or ``super_scores``
    for ``method="super"``); ``paper_reference``: :func:`lotterylib.report.paper_figures.fig2_reference`. Either may
    be None (no paper data): the figure then has our bars alone.
    """
    data = scores[scores["method"] == method]
    tasks = task_order(data["task"])
    stages = tuple(st for st in ("pruned", "retrained") if st in set(data["stage"]))
    fig, axes = _grid(len(tasks), ncols, height=2.3)
    mine = paper[paper["method"] == method] if paper is not None and len(paper) else None
    for ax, task in zip(axes, tasks):
        sub = data[data["task"] == task]
        cells, ns = {}, []
        for name in SUBNETWORKS:
            for stage in stages:
                values = sub[(sub["subnetwork"] == name) & (sub["stage"] == stage)]["score"].to_numpy(float)
                cells[(name, stage)] = {"mean": values.mean() if len(values) else np.nan,
                                        "std": values.std(ddof=1) if len(values) > 1 else np.nan, "values": values}
                ns.append(len(values))
        marks = None
        if mine is not None:
            p = mine[mine["task"] == task]
            marks = {(r["subnetwork"], r["stage"]): float(r["mean"]) for _, r in p.iterrows()}
        _fig2_panel(ax, cells, stages, paper=marks)
        ref = full[full["task"] == task]
        if len(ref):
            ax.axhline(ref["score"].mean(), color=style.FULL_COLOR, lw=1.1)
            ax.axhline(ref["majority"].mean(), color=style.MAJORITY_COLOR, lw=1, ls=":")
        if paper_reference is not None and task in set(paper_reference["task"]):
            ax.axhline(float(paper_reference[paper_reference["task"] == task]["full"].iloc[0]),
                       color=style.PAPER_COLOR, lw=1.1, ls="--")
        ax.set_ylabel(sub["metric"].iloc[0] if len(sub) else "")
        _y_floor(ax)
        seen = [n for n in ns if n]
        seeds = "no runs yet" if not seen else (f"n = {seen[0]}" if min(seen) == max(seen)
                                                 else f"n = {min(seen)}-{max(seen)}")
        size = sub["weights_kept_share"].dropna() if "weights_kept_share" in sub else pd.Series(dtype=float)
        kept = f" · {100 * size.mean():.0f}% kept" if len(size) else ""
        ax.set_title((titles or {}).get(task, f"{task}\n{seeds}{kept}"))
    extra = []
    if mine is not None:
        extra.append(Line2D([], [], ls="none", marker="D", ms=6, mfc="white", mec=style.PAPER_COLOR, mew=1.6,
                            label="paper (bert-base), mean of 5 seeds"))
    if paper_reference is not None:
        extra.append(Line2D([], [], color=style.PAPER_COLOR, lw=1.1, ls="--", label="paper's full model"))
    _fig2_legend(fig, stages, extra)
    fig.suptitle(METHOD_NAMES.get(method, method) + ": ours, mean ± sample std over n seeds\n"
                 "(% kept: prunable weights the good subnetwork keeps; 0: no run yet)")
    return fig


def importance_histogram(df: pd.DataFrame, bins: int = 10):
    """Fig. 3: normalised importance of the live heads and MLPs at every s-pruning step (the counts are
    :func:`lotterylib.read.analysis.importance_histogram`'s, the one definition)."""
    fig, axes = style.subplots(1, 2, height=2.8)
    for ax, kind in zip(axes.ravel(), ("head", "mlp")):
        sub = df[df["kind"] == kind]
        counts, edges = analysis.importance_histogram(sub["score"].to_numpy(), bins=bins)
        percent = 100 * counts / max(int(counts.sum()), 1)
        ax.bar(edges[:-1], percent, width=np.diff(edges), align="edge", color=style.NEUTRAL_COLOR, edgecolor="white")
        ax.set_ylabel("percent")
        ax.set_title(f"{'heads' if kind == 'head' else 'MLPs'} (n = {len(sub)})")
        ax.set_xlabel("normalised importance")
    fig.suptitle("every s-pruning step, task and seed")
    return fig


def _glue_frame(frame: pd.DataFrame | None) -> pd.DataFrame | None:
    """A task x task frame with rows and columns in GLUE order."""
    if frame is None:
        return None
    order = task_order(frame.index)
    return frame.reindex(index=order, columns=[t for t in order if t in frame.columns])


def _cell_size(n: int) -> float:
    """Inches per heatmap cell so that two lines of 9 pt numbers fit, the figure within the column."""
    return min(0.62, (style.CONTENT_WIDTH_IN - 2.2) / max(n, 1))


def overlap_heatmap(mean: pd.DataFrame, std: pd.DataFrame, null: pd.DataFrame | None = None, unit: str = ""):
    """Fig. 5: pairwise overlap of surviving heads between tasks (same seed index), GLUE order; with ``null``,
    the chance level below it on the same colour scale."""
    mean, std, null = _glue_frame(mean), _glue_frame(std), _glue_frame(null)
    n, cell = len(mean), _cell_size(len(mean))
    panels = 2 if null is not None else 1
    fig, axes = style.subplots(panels, 1, height=panels * (cell * n + 0.9), fig_width=cell * n + 2.2)
    labels = mean.round(1).astype(str) + "\n±" + std.round(1).astype(str)
    vmin, vmax = float(np.nanmin(mean.values)), float(np.nanmax(mean.values))
    sns.heatmap(mean, annot=labels, fmt="", cmap="mako_r", ax=axes[0, 0], cbar_kws={"label": unit},
                annot_kws={"size": 9}, vmin=vmin, vmax=vmax)
    axes[0, 0].set_title("observed (mean ± std over seeds)")
    if null is not None:
        sns.heatmap(null, annot=True, fmt=".1f", cmap="mako_r", ax=axes[1, 0], cbar_kws={"label": unit},
                    annot_kws={"size": 9}, vmin=vmin, vmax=vmax)
        axes[1, 0].set_title("chance (survivors re-placed at random)")
    for ax in axes.ravel():
        ax.set_xlabel("")
        ax.set_ylabel("")
    return fig


def trace_lines(df: pd.DataFrame, method: str, fraction: float = 0.9):
    """Pruning traces: score relative to the full model against the size of the subnetwork, one panel per task
    (GLUE order), one line per seed; the plan's ``fraction`` line (search.fraction) dashed; the legend below the panels."""
    data = df[df["method"] == method]
    x, x_label = (("sparsity", "sparsity (share of prunable weights removed)") if method == "m"
                  else ("step", "s-pruning step (importance recomputed each step)"))
    tasks = task_order(data["task"])
    fig, axes = _grid(len(tasks), 3, height=2.2)
    palette = style.seed_colors(sorted(data["seed"].unique()))
    for ax, task in zip(axes, tasks):
        sub = data[data["task"] == task]
        sns.lineplot(sub, x=x, y="relative", hue="seed", style="phase" if method == "s" else None,
                     marker="o", markersize=3, ax=ax, palette=palette, legend=ax is axes[0])
        ax.axhline(fraction, color=style.THRESHOLD_COLOR, lw=1, ls="--")
        ax.set_title(task)
        ax.set_xlabel("")
        ax.set_ylabel("")
        ax.xaxis.set_major_locator(_few_ticks())
    fig.supxlabel(x_label, fontsize=10)
    fig.supylabel("metric / full model", fontsize=10)
    legend = _lift_legend(fig, axes[0], ncol=4)
    if legend is not None:  # the 90 % line joins the seeds' legend
        handles = [*legend.legend_handles, Line2D([], [], color=style.THRESHOLD_COLOR, lw=1, ls="--")]
        labels = [t.get_text() for t in legend.get_texts()] + ["90 % of the full model"]
        legend.remove()
        style.legend_outside(fig, handles, labels, ncol=4)
    fig.suptitle(METHOD_NAMES[method] + ": search traces")
    return fig


def _few_ticks():
    from matplotlib.ticker import MaxNLocator

    return MaxNLocator(nbins=4)


# --- the paper's own data (chapter notebooks/figures/paper_*) ---------------------------------------

def survival_detail(head_mean, head_std, mlp_mean, mlp_std, title: str = ""):
    """Fig. 1b as the paper draws it: one task, heads (layers x heads) and MLPs (1 x layers), each cell the
    share of seeds keeping the component over its sample std."""
    head_mean, head_std = np.asarray(head_mean, dtype=float), np.asarray(head_std, dtype=float)
    mlp_mean, mlp_std = np.asarray(mlp_mean, dtype=float), np.asarray(mlp_std, dtype=float)
    n_layers, n_heads = head_mean.shape
    cell = min(0.5, (style.CONTENT_WIDTH_IN - 1.6) / n_heads)
    fig = style.figure(height=0.42 * n_layers + 1.9, fig_width=cell * n_heads + 1.6)
    grid = fig.add_gridspec(2, 2, height_ratios=[n_layers, 1.4], width_ratios=[1, 0.035])
    ax, ax_mlp, cax = fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[1, 0]), fig.add_subplot(grid[:, 1])

    def cells(mean, std):
        return np.vectorize(lambda m, s: f"{m:.1f}\n±{s:.2f}")(mean, std)

    common = dict(vmin=0, vmax=1, cmap="viridis", fmt="", linewidths=0.3, annot_kws={"size": 9})
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
    """Fleiss' kappa per task (GLUE order, top to bottom): one marker per series (``columns``: column -> marker),
    the paper's range shaded; the legend below the plot."""
    comparison = comparison.set_index("task").loc[task_order(comparison["task"])].reset_index()
    tasks = list(comparison["task"])
    fig, axes = style.subplots(height=0.32 * len(tasks) + 1.8)
    ax = axes[0, 0]
    ax.axvspan(*paper_range, color=style.PAPER_COLOR, alpha=0.12, lw=0,
               label=f"paper's range: {paper_range[0]}-{paper_range[1]}")
    palette = [style.OURS_COLOR, style.PAPER_COLOR, *style.SEED_COLORS[1:]]
    for (col, marker), color, offset in zip(columns.items(), palette, np.linspace(-0.15, 0.15, len(columns))):
        ax.scatter(comparison[col], np.arange(len(tasks)) + offset, marker=marker, s=42, color=color, label=col,
                   zorder=3)
    ax.axvline(0, color="grey", lw=0.8)
    ax.set_yticks(np.arange(len(tasks)), tasks)
    ax.invert_yaxis()
    ax.set_xlabel("Fleiss' kappa over the seeds")
    style.legend_outside(fig, *ax.get_legend_handles_labels(), ncol=2)
    return fig


def overlap_triangle(mean: pd.DataFrame, std: pd.DataFrame, marked: pd.DataFrame | None = None, title: str = "",
                     fmt: str = ".1f", unit: str = "heads kept in both tasks"):
    """Fig. 5 as the paper draws it, in GLUE order: lower triangle of a task x task overlap, mean over std in each
    cell; the diagonal (each task with itself) is written but not coloured; ``marked`` (bool frame) adds a '*'."""
    mean, std, marked = _glue_frame(mean), _glue_frame(std), _glue_frame(marked)
    n = len(mean)
    cell = _cell_size(n)
    fig, axes = style.subplots(height=cell * n + 1.3, fig_width=cell * n + 2.2)
    ax = axes[0, 0]
    hide = np.triu(np.ones((n, n), dtype=bool))  # upper triangle and diagonal: not coloured
    sns.heatmap(mean, mask=hide, cmap="Purples", ax=ax, linewidths=0.5, cbar_kws={"label": unit}, square=True)
    ax.grid(False)
    for i in range(n):
        for j in range(i + 1):
            m, s = mean.iat[i, j], std.iat[i, j]
            star = "*" if marked is not None and i != j and bool(marked.iat[i, j]) else ""
            text = "" if not np.isfinite(m) else f"{m:{fmt}}{star}\n±{s:{fmt}}"
            ax.text(j + 0.5, i + 0.5, text, ha="center", va="center", fontsize=9,
                    color="black" if i == j or m <= np.nanmean(mean.values[~hide]) else "white")
    ax.set_xlabel("task")
    ax.set_ylabel("task")
    ax.set_title(title)
    return fig


def _sparse_ticks(n: int, room_in: float, per_label_in: float = 0.2) -> int:
    """A tick step so that labels ``per_label_in`` wide fit in ``room_in`` inches."""
    return max(1, int(np.ceil(n * per_label_in / max(room_in, 1e-6))))


def survival_stat_heatmaps(masks_by_task: dict[str, dict], stat: str = "share", ncols: int = 3,
                           title: str | None = None):
    """Per task (GLUE order), layers x (heads, gap, MLP): the share of seeds keeping each component
    (``stat='share'``) or the sample std of that kept/pruned outcome over the seeds (``stat='std'``, ddof=1);
    one colour bar for all panels.

    Drawn with ``imshow`` (seaborn's heatmap redraws the whole figure once per panel, which is slow for
    grids). Fig. 1 of the book.
    """
    if stat not in ("share", "std"):
        raise ValueError(f"stat={stat!r} is unknown: use 'share' or 'std'")
    tasks = task_order(masks_by_task)
    first = np.asarray(masks_by_task[tasks[0]]["head_mask"])
    n_layers, n_heads = first.shape[-2:]
    ncols = max(1, min(ncols, len(tasks)))
    panel_w = (style.CONTENT_WIDTH_IN - 1.3) / ncols - 0.55  # the image's width: room left for labels and bar
    fig, axes = _grid(len(tasks), ncols, height=panel_w * n_layers / (n_heads + 2) + 0.85)
    cmap, vmax, label = (("viridis", 1.0, "share of seeds kept") if stat == "share"
                         else ("magma", 0.6, "std over seeds"))
    x_step = _sparse_ticks(n_heads + 2, panel_w - 0.4)
    y_step = _sparse_ticks(n_layers, panel_w * n_layers / (n_heads + 2), 0.17)
    image = None
    for ax, task in zip(axes, tasks):
        heads = np.asarray(masks_by_task[task]["head_mask"], dtype=float)  # (S, L, H)
        mlps = np.asarray(masks_by_task[task]["mlp_mask"], dtype=float)  # (S, L)
        if stat == "share":
            h, m = heads.mean(0), mlps.mean(0)
        else:
            ddof = 1 if len(heads) > 1 else 0
            h, m = heads.std(0, ddof=ddof), mlps.std(0, ddof=ddof)
        grid = np.concatenate([h, np.full((h.shape[0], 1), np.nan), m[:, None]], axis=1)
        image = style.heatmap(ax, grid, cmap=cmap, vmin=0, vmax=vmax, colorbar=False)
        heads_shown = list(range(0, n_heads, x_step))
        ax.set_xticks([*heads_shown, n_heads + 1], [str(k) for k in heads_shown] + ["MLP"])
        ax.set_yticks(range(0, n_layers, y_step))
        ax.set_xlabel("head")
        ax.set_ylabel("layer")
        ax.set_title(f"{task} ({len(heads)} seeds)")
    style.shared_colorbar(image, list(axes[:len(tasks)]), label, shrink=0.6)
    if title:
        fig.suptitle(title)
    return fig


def _model_style(model: str, k: int) -> dict:
    """Bar colours of Table 2's rows: bad subnetworks in the subnetwork red (hatched for m-pruning), the full
    model and the majority baseline in their reference colours."""
    name = model.lower()
    if "bad" in name:
        return {"color": SUBNETWORK_COLORS["bad"], "hatch": "///" if "m-pruning" in name else None,
                "edgecolor": "white"}
    if "full" in name:
        return {"color": style.FULL_COLOR}
    if "majority" in name:
        return {"color": style.MAJORITY_COLOR}
    if "paper" in name:
        return {"color": style.PAPER_COLOR}
    return {"color": style.SEED_COLORS[k % len(style.SEED_COLORS)]}


def bad_vs_baselines(long: pd.DataFrame):
    """Table 2 as a figure: bad subnetworks (re-fine-tuned) beside the majority baseline and the full model,
    tasks in GLUE order.

    ``long`` has columns model, task, score (one row per model and task: the mean over seeds) and, optionally,
    ``n`` (the seeds behind each mean, written over the bar).
    """
    tasks = task_order(long["task"])
    models = list(dict.fromkeys(long["model"]))
    fig, axes = style.subplots(height=3.4)
    ax = axes[0, 0]
    width = 0.8 / max(len(models), 1)
    for j, model in enumerate(models):
        rows = long[long["model"] == model].set_index("task").reindex(tasks)
        x = np.arange(len(tasks)) + (j - (len(models) - 1) / 2) * width
        bars = ax.bar(x, rows["score"].fillna(0.0), width=width * 0.95, label=model, **_model_style(model, j))
        if "n" in rows:
            ax.bar_label(bars, labels=["0" if pd.isna(n) else f"{int(n)}" for n in rows["n"]], fontsize=9,
                         padding=1)
    ax.set_xticks(range(len(tasks)), tasks)
    ax.set_xlabel("")
    ax.set_ylabel("dev score (reported metric)")
    ax.margins(y=0.12)
    style.legend_outside(fig, *ax.get_legend_handles_labels(), ncol=2)
    ax.set_title(f"bad subnetworks, {style.label('retrained')}, beside the baselines\n"
                 "(number over a bar: seeds behind it)")
    return fig


def verdict_grid(card: pd.DataFrame, columns: dict[str, str] | None = None):
    """Claims (rows) x sides (columns), each cell coloured by its verdict (:data:`style.VERDICT_COLORS`, never a
    subnetwork colour) and labelled with it; the legend below.

    ``card``: one row per claim with a ``claim`` column and one verdict column per side; ``columns`` maps
    the card's verdict columns to the labels drawn on top (default: {"paper verdict": "paper's data",
    "verdict": "ours"}).
    """
    from matplotlib.patches import Rectangle

    columns = columns or {"paper verdict": "paper's data, same rule", "verdict": "ours"}
    fig, axes = style.subplots(height=0.42 * len(card) + 1.4)
    ax = axes[0, 0]
    for j, col in enumerate(columns):
        for i, value in enumerate(card[col]):
            color = style.verdict_color(value)
            ax.add_patch(Rectangle((j, i), 0.96, 0.9, color=color))
            ax.text(j + 0.48, i + 0.45, value or "-", ha="center", va="center", fontsize=9, color=style.ink(color))
    ax.set_xlim(0, len(columns))
    ax.set_ylim(len(card), 0)
    ax.set_xticks([j + 0.48 for j in range(len(columns))], list(columns.values()))
    ax.xaxis.tick_top()
    ax.set_yticks([i + 0.45 for i in range(len(card))], list(card["claim"]))
    ax.tick_params(length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    ax.grid(False)
    shown = ["holds", "does not hold", "not testable at this scale"]
    shown = list(dict.fromkeys(shown + [str(v) for col in columns for v in card[col]
                                        if isinstance(v, str) and v in VERDICT_COLORS]))
    style.legend_outside(fig, [Patch(color=style.verdict_color(v), label=v) for v in shown], ncol=3)
    return fig


def masks_by_seed(masks_by_task: dict[str, dict], max_tasks: int | None = None):
    """The good s-pruning masks themselves: one panel per (task, seed), tasks in GLUE order, heads (layers x heads)
    with the layer's MLP as the last column (dark: kept; colour bar below). Agreement across seeds reads along each
    row of panels."""
    tasks = task_order(masks_by_task)[:max_tasks]
    n_seeds = max(len(masks_by_task[t]["head_mask"]) for t in tasks)
    first = masks_by_task[tasks[0]]["head_mask"][0]
    n_layers, n_heads = first.shape
    panel_w = (style.CONTENT_WIDTH_IN - 0.8) / n_seeds
    fig, axes = style.subplots(len(tasks), n_seeds,
                               height=len(tasks) * (panel_w * n_layers / (n_heads + 2) + 0.35) + 1.2)
    image = None
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
            image = style.heatmap(ax, cells, cmap=style.mask_cmap(), vmin=0, vmax=1, colorbar=False)
            ax.set_title(f"seed {list(seeds)[j]}", fontsize=9)
            if j == 0:
                ax.set_ylabel(task)
    style.shared_colorbar(image, list(axes.ravel()), "", ticks=style.MASK_TICKS, location="bottom", shrink=0.35,
                          aspect=12)
    fig.suptitle("good s-pruning masks, seed by seed (rows: layers; last column: MLP)")
    return fig


def rounding_pairs(pairs: pd.DataFrame):
    """The full model's dev score from float16-rounded against unrounded pre-trained weights, one panel per task
    (GLUE order), one dot per seed; on the diagonal the rounding changed nothing."""
    tasks = task_order(pairs["task"])
    fig, axes = style.subplots(1, max(len(tasks), 1), height=2.8)
    for ax, task in zip(axes.ravel(), tasks):
        sub = pairs[pairs["task"] == task]
        low = float(min(sub["float32"].min(), sub["float16"].min()))
        high = float(max(sub["float32"].max(), sub["float16"].max()))
        pad = max(0.01, 0.1 * (high - low))
        ax.plot([low - pad, high + pad], [low - pad, high + pad], color=style.THRESHOLD_COLOR, lw=1, ls="--")
        ax.scatter(sub["float32"], sub["float16"], color=style.OURS_COLOR, s=25, zorder=3)
        ax.set_xlim(low - pad, high + pad)
        ax.set_ylim(low - pad, high + pad)
        ax.set_title(f"{task} ({sub['metric'].iloc[0]}, n = {len(sub)})")
        ax.set_xlabel("float32 weights")
        ax.set_ylabel("float16 weights")
    return fig
