"""What the results pages show: one function per page element, so that a figure notebook is a parameters cell,
prose and one call per cell.

Every table, statistic and sentence of a results page (``notebooks/figures/*.ipynb``) is computed here and tested
(``tests/test_views.py``), never in a notebook cell. Three kinds of functions:

- ``<page>_<element>_table(...)`` return a :class:`pandas.DataFrame` (the numbers, unformatted); the notebook shows
  it with :func:`show_table` (formatting, readable headers, folding);
- ``<page>_<element>_text(...)`` return Markdown (a sentence computed from the data);
- ``<page>_<element>_figure(...)`` draw one figure with :mod:`lotterylib.report.plots` (or its siblings) and return
  it, or return ``None`` after showing why there is nothing to draw.

Thresholds come from the plan (``plan.search.fraction``, the 90 % rule) or from the module that owns them; the
early / middle / late split of the layers is :func:`layer_group` (the scorecard's C7 rule uses the same one).
Nothing here imports torch.

The rendered page hides the plumbing: every code cell of a figure notebook is tagged ``remove-input`` (its
parameters cell ``remove-cell``), the notebooks set myst-nb's file-level ``remove_code_source``, and
:func:`hide_injected_parameters` tags papermill's injected cell of an executed copy ``remove-cell``.
"""

from __future__ import annotations

import html
import json
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lotterylib.config.plans import Plan
from lotterylib.read import analysis, collect
from lotterylib.store import layout as L

# --- plans, caching ----------------------------------------------------------------------------------------------


def _plan(plan: Plan | str) -> Plan:
    return plan if isinstance(plan, Plan) else Plan.load(plan)


def _plan_name(plan: Plan | str) -> str:
    return plan.name if isinstance(plan, Plan) else str(plan)


_CACHE: dict[tuple, Any] = {}


def _cached(kind: str, plan: Plan | str | None, fn: Callable[[], Any], *key) -> Any:
    """``fn()`` once per (kind, plan, results root, key) in this process: a page reads each result file once."""
    full = (kind, None if plan is None else _plan_name(plan), os.environ.get("LOTTERY_RESULTS"),
            os.environ.get("LOTTERY_PAPER_DIR"), *key)
    if full not in _CACHE:
        _CACHE[full] = fn()
    return _CACHE[full]


def clear_cache() -> None:
    """Forget every result read so far (for tests that write result files)."""
    _CACHE.clear()


def _masks(plan) -> dict:
    return _cached("s_masks", plan, lambda: collect.s_masks(plan))


def _scores(plan) -> pd.DataFrame:
    return _cached("scores", plan, lambda: collect.subnetwork_scores(plan))


def _full(plan) -> pd.DataFrame:
    return _cached("full", plan, lambda: collect.full_scores(plan))


def _paper_masks(variant: str, root) -> dict:
    from lotterylib.report import paper_figures as pf

    return _cached("paper_masks", None, lambda: pf.paper_masks(variant, root), variant, root)


# --- the early / middle / late layers: lotterylib.read.analysis.layer_groups (the one definition) ----------

LAYER_GROUPS = analysis.LAYER_GROUPS
layer_groups = analysis.layer_groups
layer_group = analysis.layer_group


# --- tables as every page shows them ---------------------------------------------------------------------------

NO_RUN = "no run yet"

# Column names the library uses, as a reader reads them (other snake_case names: underscores become spaces).
HEADERS: dict[str, str] = {
    "task": "task", "seed": "seed", "method": "method", "subnetwork": "subnetwork", "stage": "stage",
    "full_metric": "full model score", "n_steps": "search steps", "accepted_steps": "accepted steps",
    "heads_kept": "heads kept", "heads_total": "heads in all", "mlps_kept": "MLPs kept", "mlps_total": "MLPs in all",
    "weights_kept": "weights kept", "weights_total": "weights in all", "weights_kept_share": "share of weights kept",
    "skipped": "skipped because", "p_value": "p", "pvalue": "p", "statistic": "statistic", "jaccard": "Jaccard",
    "mean_jaccard": "mean Jaccard", "n_similar": "similar pairs", "n_pairs": "pairs", "odds_ratio": "odds ratio",
    "jobs_done": "jobs done", "wall_seconds": "wall time (s)", "job_seconds": "job time (s)", "median_s": "median (s)",
    "total_min": "total (min)", "seed_a": "seed A", "seed_b": "seed B", "only_a": "kept by A only",
    "only_b": "kept by B only", "both": "kept by both",
    "p same (nan: statsmodels 0/0)": "same p as the authors (theirs missing where statsmodels gave 0/0)", "mean": "mean", "std": "std", "min": "min", "max": "max",
    "count": "count", "q": "Cochran's Q", "kept a": "kept by A", "kept b": "kept by B", "only a": "kept by A only",
    "only b": "kept by B only", "25%": "25th percentile", "50%": "median", "75%": "75th percentile",
}

_P_COLUMN = re.compile(r"^(p|p_?value|pvalue)( \(.*\))?$", re.IGNORECASE)


def header(name) -> str:
    """A column name as a table header: the :data:`HEADERS` word for it, else underscores become spaces and
    ``mlp`` becomes ``MLP``.

    >>> header("heads_kept"), header("weights_kept_share"), header("mlp_share")
    ('heads kept', 'share of weights kept', 'MLP share')
    """
    if isinstance(name, tuple):
        return " ".join(header(part) for part in name if str(part) != "")
    name = str(name)
    if name in HEADERS:
        return HEADERS[name]
    if not re.fullmatch(r"[A-Za-z0-9_ ]+", name):
        return name  # a file name, a formula: as written
    words = name.replace("_", " ").split(" ")
    return " ".join("MLP" if w == "mlp" else "MLPs" if w == "mlps" else w for w in words)


def p_value_text(p) -> str:
    """A p-value as a reader reads it: ``"p < 0.001"`` or ``"p = 0.012"`` (three decimals); ``""`` if missing.

    >>> p_value_text(0.0123), p_value_text(2e-7), p_value_text(1.0)
    ('p = 0.012', 'p < 0.001', 'p = 1.000')
    """
    if p is None or (isinstance(p, (float, np.floating)) and not np.isfinite(p)):
        return ""
    p = float(p)
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def _is_missing(x) -> bool:
    if x is None or x is pd.NA or x is pd.NaT:
        return True
    if isinstance(x, (float, np.floating)):
        return bool(np.isnan(x))
    return isinstance(x, str) and x.strip().lower() in ("", "nan", "none")


def _number(x, decimals: int, integer: bool) -> str:
    if isinstance(x, (bool, np.bool_)):
        return "yes" if x else "no"
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    if isinstance(x, (float, np.floating)):
        if not np.isfinite(x):
            return "∞" if x > 0 else "−∞"
        if integer:
            return str(round(x))
        return f"{x:.{decimals}f}" if abs(x) >= 10 ** -decimals or x == 0 else f"{x:.1e}"
    return str(x)


def format_table(df: pd.DataFrame, empty: str | Mapping[str, str] = NO_RUN, decimals: int = 3) -> pd.DataFrame:
    """The table as text, cell by cell, as :func:`show_table` shows it: a named or multi-level index becomes
    columns (a plain 0..n-1 index is dropped), headers in words (:func:`header`), numbers with ``decimals``
    decimals (whole-number columns without ``.0``), p-values as "p < 0.001" / "p = 0.012", booleans as yes / no,
    and every empty cell replaced by the reason it is empty (``empty``: one phrase, or one per column)."""
    if hasattr(df, "data") and not isinstance(df, pd.DataFrame):  # a pandas Styler
        df = df.data
    df = df.copy()
    if isinstance(df.columns, pd.MultiIndex):
        df.columns = [header(c) for c in df.columns]
    plain = all(name is None for name in df.index.names)  # 0..n-1 or a leftover of a concat: not data
    df = df.reset_index(drop=plain)
    out = {}
    for col in df.columns:
        values = df[col]
        reason = empty.get(col, NO_RUN) if isinstance(empty, Mapping) else empty
        numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
        finite = pd.to_numeric(values, errors="coerce") if numeric else None
        integer = bool(numeric and finite.dropna().size and np.all(np.mod(finite.dropna(), 1) == 0))
        p_col = bool(_P_COLUMN.match(str(col)))
        cells = []
        for x in values:
            if _is_missing(x):
                cells.append(reason)
            elif p_col and isinstance(x, (float, int, np.floating, np.integer)) and not isinstance(x, (bool, np.bool_)):
                cells.append(p_value_text(x))
            else:
                cells.append(_number(x, decimals, integer))
        out[header(col)] = cells
    return pd.DataFrame(out, columns=list(out))


def table_html(df: pd.DataFrame, caption: str | None = None, fold_after: int = 15,
               empty: str | Mapping[str, str] = NO_RUN, decimals: int = 3, none: str | None = "Nothing to show yet.") -> str:
    """The HTML of :func:`show_table`."""
    if hasattr(df, "data") and not isinstance(df, pd.DataFrame):
        df = df.data
    if df is None or len(df) == 0:
        why = getattr(df, "attrs", {}).get("why") if df is not None else None
        text = why or none
        return f"<p><em>{html.escape(text)}</em></p>" if text else ""
    text = format_table(df, empty=empty, decimals=decimals)
    body = text.to_html(index=False, escape=True, border=0, classes="lottery-table")
    body = f'<div class="lottery-table-wrap" style="overflow-x: auto; max-width: 100%;">{body}</div>'
    cap = f"<p><strong>{html.escape(caption)}</strong></p>" if caption else ""
    if len(text) > fold_after:
        label = html.escape(caption) if caption else "The table"
        return (f"<details><summary>{label} ({len(text)} rows: click to unfold)</summary>{body}</details>")
    return cap + body


def show_table(df, caption: str | None = None, fold_after: int = 15, empty: str | Mapping[str, str] = NO_RUN,
               decimals: int = 3, none: str | None = "Nothing to show yet."):
    """A DataFrame (or Styler) as the book shows a table: no index column, readable headers, numbers formatted
    (``decimals`` decimals, whole numbers without ``.0``, p-values as "p < 0.001"), empty cells saying why they
    are empty (``empty``, default "no run yet"), inside a horizontally scrolling block so that nothing is wider
    than the text column, and folded into a collapsible section when longer than ``fold_after`` rows. An empty
    table shows why: its ``attrs["why"]``, else the sentence ``none`` (nothing at all when ``none`` is None)."""
    from IPython.display import HTML

    return HTML(table_html(df, caption, fold_after, empty, decimals, none))


def _say(text: str) -> None:
    """Show a sentence where a figure has nothing to draw."""
    from IPython.display import Markdown, display

    display(Markdown(text))


# --- every page: how to re-run it -------------------------------------------------------------------------------

PAPERMILL = ".venv/bin/python -m papermill --no-progress-bar -k python3"


def rerun_command(page: str, plan: Plan | str = "demo") -> str:
    """The "re-run this page" line (Markdown): ``make book`` for every page, and the papermill command the
    Snakefile's figure rule runs for this one notebook.

    >>> "notebooks/figures/fig5_overlap.ipynb" in rerun_command("fig5_overlap", "demo")
    True
    """
    name = _plan_name(plan)
    return (f"**Re-run this page:** `make book PLAN={name}` re-executes every figure notebook and builds the book; "
            f"this one alone: `{PAPERMILL} notebooks/figures/{page}.ipynb out.ipynb --cwd notebooks/figures "
            f"-p plan {name}`.")


def search_fraction(plan: Plan | str) -> float:
    """The plan's ``search.fraction`` (the 90 % rule: a search stops below this share of the full score). A plan
    whose tasks override it differently raises: say it per task then (:func:`search_rule_text` does)."""
    p = _plan(plan)
    values = {p.settings(t).search.fraction for t in p.tasks}
    if len(values) != 1:
        raise ValueError(f"plan {p.name!r} sets search.fraction per task: {sorted(values)}")
    return values.pop()


def _fraction_words(plan: Plan | str) -> str:
    """"90 %" (the plan's ``search.fraction``), or the per-task values where tasks override it."""
    p = _plan(plan)
    by_task = {t: p.settings(t).search.fraction for t in p.tasks}
    if len(set(by_task.values())) == 1:
        return _percent(next(iter(by_task.values())))
    return "the plan's per-task share (" + ", ".join(f"{t}: {_percent(f)}" for t, f in by_task.items()) + ")"


def _percent(x: float) -> str:
    """A share as the book writes it: ``0.9`` -> ``"90 %"``."""
    return f"{100 * x:g} %"


def search_rule_text(plan: Plan | str) -> str:
    """The stopping rule of every search, with the plan's own threshold (``search.fraction``)."""
    return (f"A search stops at the first step below {_fraction_words(plan)} of the full model's score (the plan's "
            "`search.fraction`; the red line of the traces); its subnetwork is the last mask above it.")


def figure_caption(number, title: str, takeaway: str):
    """The numbered caption under a figure (:func:`lotterylib.report.style.caption`) as a Markdown output;
    ``takeaway`` is one of this module's ``*_text`` sentences (its emphasis markers dropped)."""
    from IPython.display import Markdown

    from lotterylib.report import style

    one_line = " ".join(str(takeaway).replace("**", "").strip().strip("*").split())
    one_line = one_line[:1].upper() + one_line[1:]
    return Markdown(style.caption(number, title, one_line or "Nothing to show yet."))


# --- fig1_survivors ----------------------------------------------------------------------------------------------


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


# --- fig2_subnetworks --------------------------------------------------------------------------------------------


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


# --- table2_bad --------------------------------------------------------------------------------------------------


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


# --- fig3_importance ---------------------------------------------------------------------------------------------


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


# --- fig5_overlap ------------------------------------------------------------------------------------------------


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


# --- stability ---------------------------------------------------------------------------------------------------


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


# --- attention_patterns ------------------------------------------------------------------------------------------


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


# --- traces ------------------------------------------------------------------------------------------------------


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


# --- why_small_model ---------------------------------------------------------------------------------------------


def evidence(plan: Plan | str):
    """Every result file the why-small-model page reads, read once (:func:`lotterylib.report.beyond.gather`)."""
    from lotterylib.report import beyond

    return _cached("beyond", plan, lambda: beyond.gather(plan))


def why_small_rerun_text(plan: Plan | str) -> str:
    """The commands that compute the missing section-10 runs, then rebuild the book (Markdown code block)."""
    from lotterylib.report import beyond

    return ("**Re-run this page.** The first command computes the section 10 runs still missing (with any earlier "
            "stage they need); the second re-executes every figure notebook and builds the book:\n\n```bash\n"
            + beyond.rerun_command(evidence(plan)) + "\n```\n\n" + rerun_command("why_small_model", plan))


# --- paper_survivors ---------------------------------------------------------------------------------------------


def paper_qnli_figure(root=None):
    from lotterylib.report import plots

    masks = _paper_masks("heads_mlps", root)
    heads = analysis.survival_frequency(masks["QNLI"]["head_mask"])
    mlps = analysis.survival_frequency(masks["QNLI"]["mlp_mask"])
    return plots.survival_detail(*heads, *mlps, title="QNLI: share of 5 seeds in which each head survives")


def paper_qnli_check_table(root=None) -> pd.DataFrame:
    from lotterylib.report import paper_figures as pf

    return pf.survival_row_check(_paper_masks("heads_mlps", root), "QNLI", 0)


def paper_qnli_check_text(root=None) -> str:
    from lotterylib.report import paper_figures as pf

    check = paper_qnli_check_table(root)
    return (f"Layer 0 of QNLI: **{int(check['match'].sum())} of {len(check)}** cells match the paper's "
            f"Figure 1b ({pf.PAPER_PRINTED['fig1b_qnli_layer0']['source']}).")


def paper_outliers_text(root=None) -> str:
    """WNLI's degenerate seeds and RTE's small seed."""
    from lotterylib.report import paper_figures as pf

    masks = _paper_masks("heads_mlps", root)
    wnli = pf.degenerate_seeds(masks, "WNLI")
    ref = pf.fig2_reference(root).set_index("task")
    rte_heads = masks["RTE"]["head_mask"].reshape(len(masks["RTE"]["seeds"]), -1).sum(1)
    return (
        f"Two tasks stand apart. On **WNLI**, {int(wnli['pruned everything'].sum())} of {len(wnli)} seeds pruned every "
        f"head and every MLP: the full model scores {ref.loc['WNLI', 'full']:.3f} accuracy, below the majority class "
        f"({ref.loc['WNLI', 'majority']:.3f}), so a model with nothing left still keeps 90 % of the full score; the "
        f"remaining seed ({', '.join(str(s) for s in wnli.loc[~wnli['pruned everything'], 'seed'])}) kept "
        f"{int(wnli.loc[~wnli['pruned everything'], 'heads kept'].iloc[0])} heads, so every WNLI head has the same "
        f"share. On **RTE**, seed {masks['RTE']['seeds'][int(rte_heads.argmin())]} kept only {int(rte_heads.min())} "
        f"heads while the others kept {int(np.delete(rte_heads, rte_heads.argmin()).min())} or more.")


def paper_heatmaps(stat: str, root=None):
    from lotterylib.report import plots

    title = ("share of the 5 seeds in which each head and MLP survives" if stat == "share"
             else "standard deviation over the 5 seeds (ddof = 1)")
    return plots.survival_stat_heatmaps(_paper_masks("heads_mlps", root), stat, title=title)


def paper_kept_table(root=None) -> pd.DataFrame:
    from lotterylib.report import paper_figures as pf

    return pf.kept_table(pf.kept_per_seed(_paper_masks("heads_mlps", root)))


def paper_kept_text(root=None) -> str:
    from lotterylib.report import paper_figures as pf

    kept = pf.kept_per_seed(_paper_masks("heads_mlps", root))
    spread = kept[kept["task"] != "WNLI"].groupby("task", sort=False)["heads_kept"].agg(["min", "max", "mean"])
    width = spread["max"] - spread["min"]
    return (
        f"The size of the good subnetwork depends on the seed about as much as on the task. Leaving out WNLI, the "
        f"task means range from {spread['mean'].min():.1f} ({spread['mean'].idxmin()}) to {spread['mean'].max():.1f} "
        f"heads ({spread['mean'].idxmax()}), while the seeds of one task differ by up to {width.max()} heads "
        f"({width.idxmax()}: {spread.loc[width.idxmax(), 'min']} to {spread.loc[width.idxmax(), 'max']}) and by "
        f"{width.median():.0f} at the median.")


def paper_super_table(root=None) -> pd.DataFrame:
    from lotterylib.report import paper_figures as pf

    return pf.super_survivor_check(_paper_masks("heads_mlps", root), _paper_masks("heads_mlps_super", root))


def paper_super_text(root=None) -> str:
    supers = paper_super_table(root)
    return (f"Our super-survivors are **the same components** as the authors' on **{int(supers['same components'].sum())} "
            f"of {len(supers)}** tasks (not only the same counts).")


def ours_survivors_figure(plan: Plan | str):
    from lotterylib.report import plots

    ours = _masks(plan)
    if not ours:
        return _say(f"*No results of the {_plan_name(plan)} plan yet: run the plan to see its survivors here.*")
    return plots.survival_stat_heatmaps(ours, "share",
                                        title=f"our {_plan_name(plan)} plan: share of seeds in which each component survives")


# --- paper_overlap -----------------------------------------------------------------------------------------------


def paper_overlap(variant: str = "heads_mlps", root=None, n_perm: int = 1000) -> dict:
    """The Figure 5 tables of the published masks (``pf.overlap_tables``), computed once."""
    from lotterylib.report import paper_figures as pf

    return _cached("paper_overlap", None,
                   lambda: pf.overlap_tables(_paper_masks(variant, root), pf.FIG5_ORDER, n_perm=n_perm, seed=0),
                   variant, root, n_perm)


def paper_overlap_pairs_table(root=None, n_perm: int = 1000) -> pd.DataFrame:
    from lotterylib.report import paper_figures as pf

    return pf.overlap_pairs(paper_overlap("heads_mlps", root, n_perm))


def paper_overlap_figure(variant: str = "heads_mlps", root=None, n_perm: int = 1000, jaccard: bool = False):
    from lotterylib.report import plots

    t = paper_overlap(variant, root, n_perm)
    marked = t["mean"] > t["null_p95"]
    if jaccard:
        return plots.overlap_triangle(t["jaccard"], t["jaccard_std"], marked=marked, fmt=".2f",
                                      unit="Jaccard overlap", title="Jaccard overlap of surviving heads (mean ± std)")
    title = ("heads surviving in both tasks (mean ± std over 5 seeds)" if variant == "heads_mlps"
             else "heads pruned alone: heads surviving in both tasks (mean ± std)")
    return plots.overlap_triangle(t["mean"], t["std"], marked=marked, title=title)


def _diag(root, n_perm) -> pd.Series:
    t = paper_overlap("heads_mlps", root, n_perm)
    return pd.Series(np.diag(t["mean"]), index=t["mean"].index)


def paper_overlap_diag_text(root=None, n_perm: int = 1000) -> str:
    from lotterylib.report import paper_figures as pf

    diag = _diag(root, n_perm)
    pairs = paper_overlap_pairs_table(root, n_perm)
    kept_mean = pf.kept_per_seed(_paper_masks("heads_mlps", root)).groupby("task")["heads_kept"].mean()
    kept_mean = kept_mean.reindex(diag.index)
    col = "shared heads (mean)"
    return (
        f"The diagonal is each task's own subnetwork size: it equals the mean number of heads kept on "
        f"**{int(np.isclose(diag, kept_mean).sum())} of {len(diag)}** tasks (from {diag.min():.1f} heads for "
        f"{diag.idxmin()} to {diag.max():.1f} for {diag.idxmax()}). Off the diagonal the counts range from "
        f"{pairs[col].min():.1f} ({pairs.loc[pairs[col].idxmin(), 'pair']}) to "
        f"{pairs[col].max():.1f} ({pairs.loc[pairs[col].idxmax(), 'pair']}).")


def paper_overlap_example_text(root=None, n_perm: int = 1000) -> str:
    diag = _diag(root, n_perm)
    pairs = paper_overlap_pairs_table(root, n_perm)
    top = pairs.loc[pairs["shared heads (mean)"].idxmax()]
    a, b = top["pair"].split(" / ")
    n_heads = int(np.prod(_paper_masks("heads_mlps", root)[a]["head_mask"].shape[1:]))
    return (f"For example {a} and {b} keep {diag[a]:.1f} and {diag[b]:.1f} of {n_heads} heads on average; two random "
            f"subsets of those sizes share about {diag[a]:.1f} x {diag[b]:.1f} / {n_heads} = "
            f"{diag[a] * diag[b] / n_heads:.1f} heads, against the {top['shared heads (mean)']:.1f} observed.")


def paper_overlap_chance_text(root=None, n_perm: int = 1000) -> str:
    """What the count of pairs above chance (:func:`lotterylib.report.statistics.paper_c9_overlap`, printed above it)
    leaves out: WNLI, and how large the excess over chance is (observed / chance, pairs without WNLI)."""
    from lotterylib.report import paper_figures as pf

    pairs = paper_overlap_pairs_table(root, n_perm)
    real = pairs[~pairs["pair"].str.contains("WNLI")]
    wnli = pf.degenerate_seeds(_paper_masks("heads_mlps", root), "WNLI")
    ratio = real["observed / chance"]
    return (
        f"WNLI's pairs are not counted: their overlaps are fixed by its degenerate masks (nothing kept in "
        f"{int(wnli['pruned everything'].sum())} seeds, every head in {int(wnli['kept every head'].sum())}). The "
        f"excess is modest: observed / chance is {ratio.median():.2f} at the median over the pairs without WNLI (from "
        f"{ratio.min():.2f} to {ratio.max():.2f}), so most of each count in Figure 5 is what any two subnetworks of "
        "those sizes would share: tasks share somewhat more heads than chance, far from the same heads.")


def ours_overlap_table(plan: Plan | str, n_perm: int = 1000) -> pd.DataFrame:
    """The paper-overlap page's pairs table for our own masks (seed indices cut to the task with fewest)."""
    from lotterylib.report import paper_figures as pf

    ours = _masks(plan)
    if len(ours) < 2:
        return pd.DataFrame()
    n = min(len(m["seeds"]) for m in ours.values())
    ours = {t: {"head_mask": m["head_mask"][:n]} for t, m in ours.items()}
    return pf.overlap_pairs(pf.overlap_tables(ours, sorted(ours), n_perm=n_perm, seed=0))


# --- paper_stability ---------------------------------------------------------------------------------------------


def paper_stability(unit: str, root=None, alpha: float = 0.05) -> pd.DataFrame:
    """``pf.stability_table`` of the published heads-and-MLPs masks for ``unit``, computed once."""
    from lotterylib.report import paper_figures as pf

    return _cached("paper_stability", None,
                   lambda: pf.stability_table(_paper_masks("heads_mlps", root), unit, alpha), unit, root, alpha)


def paper_kappa_table(root=None, alpha: float = 0.05) -> pd.DataFrame:
    from lotterylib.report import paper_figures as pf

    return pf.kappa_comparison(paper_stability("heads", root, alpha), paper_stability("heads+mlps", root, alpha))


def paper_kappa_figure(root=None, alpha: float = 0.05):
    from lotterylib.report import paper_figures as pf
    from lotterylib.report import plots

    return plots.kappa_points(paper_kappa_table(root, alpha), pf.printed("kappa_range"),
                              {"kappa, heads (ours)": "o", "kappa, heads (authors' notebook)": "x",
                               "kappa, heads + MLPs (ours)": "s"})


def paper_kappa_text(root=None, alpha: float = 0.05) -> str:
    from lotterylib.report import paper_figures as pf

    kappas = paper_kappa_table(root, alpha)
    lo, hi = pf.printed("kappa_range")
    glue = kappas[kappas["task"] != "WNLI"]
    k_heads = glue.set_index("task")["kappa, heads (ours)"]
    k_both = glue.set_index("task")["kappa, heads + MLPs (ours)"]
    hans = pf.printed("authors_kappa_heads_hans")
    n_in = int(kappas[f"heads in paper's {lo}-{hi}"].sum())
    return (
        f"- **Same as the authors:** our heads kappa equals the authors' printed value on "
        f"**{int(kappas['same as authors'].sum())} of {len(kappas)}** tasks (to 1e-6).\n"
        f"- **Inside the paper's {lo}-{hi}:** {n_in} of {len(kappas)} tasks, every task but WNLI (below). "
        f"**Match**, with one detail at the lower end: over the eight GLUE tasks the heads kappa runs from "
        f"{k_heads.min():.3f} ({k_heads.idxmin()}) to {k_heads.max():.4f} ({k_heads.idxmax()}, printed as "
        f"{k_heads.max():.2f}); the paper's lower bound {lo} is the authors' kappa for masks searched on HANS "
        f"({hans:.3f}, printed in the same notebook cell; those masks are not in the published data). "
        f"With the MLPs included the range is {k_both.min():.3f}-{k_both.max():.3f}, also inside the paper's.")


def paper_wnli_table(root=None) -> pd.DataFrame:
    from lotterylib.report import paper_figures as pf

    return pf.degenerate_seeds(_paper_masks("heads_mlps", root), "WNLI")


def paper_wnli_text(root=None, alpha: float = 0.05) -> str:
    from lotterylib.report import paper_figures as pf

    wnli = paper_wnli_table(root)
    n = len(wnli)
    k_wnli = float(paper_stability("heads", root, alpha).set_index("task").loc["WNLI", "kappa"])
    return (
        f"On WNLI {int(wnli['pruned everything'].sum())} of {n} seeds pruned every head and MLP and one seed kept all "
        f"{int(wnli['heads kept'].max())} heads. Every head is therefore rated the same way by {n - 1} seeds and the "
        f"other way by one: observed agreement is lower than the agreement expected from the category shares "
        f"({1 / n:.0%} kept), so kappa = {pf.kappa_one_dissenter(n):.3f} for every such table, exactly our "
        f"{k_wnli:.3f}. This is a degenerate search, not a measurement of stability: the full model scores below the "
        "majority class on WNLI, so pruning everything still keeps 90 % of its score (see the survivors page). "
        "WNLI is outside the paper's range, and the range it reports is the one of the other tasks.")


def paper_q_table(unit: str = "heads", root=None, alpha: float = 0.05, columns=None) -> pd.DataFrame:
    """Cochran's Q and the similar pairs, ours beside the authors' printed values (``columns``: a selection)."""
    from lotterylib.report import paper_figures as pf

    table = pf.authors_pairs_comparison(paper_stability(unit, root, alpha), unit)
    return table[list(columns)] if columns else table


Q_P_COLUMNS = ("task", "p", "p (authors' notebook)", "p same (nan: statsmodels 0/0)")
Q_PAIR_COLUMNS = ("task", "similar", "identical pairs", "similar (authors' rule)", "similar (authors' notebook)",
                  "pairs same under authors' rule")


def paper_q_text(root=None, alpha: float = 0.05) -> str:
    heads = paper_stability("heads", root, alpha)
    q_heads = paper_q_table("heads", root, alpha)
    rejected = list(heads.loc[heads["p"] < alpha, "task"])
    kept = list(heads.loc[heads["p"] >= alpha, "task"])
    return (f"Same p-values as the authors on **{int(q_heads['p same (nan: statsmodels 0/0)'].sum())} of "
            f"{len(q_heads)}** tasks. At {alpha}, the hypothesis that all five seeds keep the same share of heads is "
            f"rejected for {len(rejected)} tasks ({', '.join(rejected)}) and not rejected for {', '.join(kept)}.")


def paper_similar_text(root=None, alpha: float = 0.05) -> str:
    q_heads, q_mlps = paper_q_table("heads", root, alpha), paper_q_table("mlps", root, alpha)
    diff_h = q_heads.loc[q_heads["similar"] != q_heads["similar (authors' notebook)"], "task"].tolist()
    diff_m = q_mlps.loc[q_mlps["similar"] != q_mlps["similar (authors' notebook)"], "task"].tolist()
    same_h = int(q_heads["pairs same under authors' rule"].sum())
    same_m = int(q_mlps["pairs same under authors' rule"].sum())
    return (
        f"Under the authors' rule our counts equal theirs for heads on {same_h} of {len(q_heads)} tasks and for "
        f"MLPs on {same_m} of {len(q_mlps)}. Our own rule differs only where "
        f"two seeds produced **identical** masks (heads: {', '.join(diff_h) or 'none'}; MLPs: "
        f"{', '.join(diff_m) or 'none'}): statsmodels' Q is 0/0 there, so the authors' p-value is missing, their test "
        "`p >= 0.05` is False and the pair is counted as not similar, although identical masks are the most similar pair there can be. Our "
        "`cochrans_q` returns p = 1 for them. The p-value of WNLI's MLPs over all five seeds is missing in the "
        "authors' output for the same reason (every seed pruned every MLP).")


def paper_pair_details_table(task: str = "MNLI", root=None, alpha: float = 0.05) -> pd.DataFrame:
    from lotterylib.report import paper_figures as pf

    return pf.pair_details(_paper_masks("heads_mlps", root), task, "heads", alpha)


def paper_toy_text(root=None, alpha: float = 0.05) -> str:
    """Two disjoint masks of equal size count as "similar"; the mean Jaccard of the authors' similar pairs."""
    m = _paper_masks("heads_mlps", root)["MNLI"]["head_mask"]
    n_heads = m.shape[1] * m.shape[2]
    first_half = np.arange(n_heads) < n_heads // 2
    disjoint = np.stack([first_half, ~first_half]).astype(float)  # two masks, same size, no head in common
    toy = analysis.pairwise_seed_tests(disjoint, seeds=["a", "b"], alpha=alpha).iloc[0]
    heads = paper_stability("heads", root, alpha)
    sim = heads[heads["task"] != "WNLI"]
    jac = float(np.average(sim["mean Jaccard of similar pairs"], weights=sim["similar"]))
    return (
        f"A toy check: two masks keeping {n_heads // 2} heads each with **no head in common** get p = {toy['pvalue']:.2f} "
        f"and count as similar (Jaccard {toy['jaccard']:.2f}). In the authors' masks, the "
        f"{int(sim['similar'].sum())} seed pairs judged similar (all tasks but WNLI) have a mean Jaccard overlap of "
        f"only **{jac:.2f}** (heads kept by both seeds / heads kept by either): similar sizes, different heads. "
        "Kappa, which does look at which components agree, is the better measure of stability, and it says: slight "
        "to fair.")


def ours_stability_table(plan: Plan | str, alpha: float = 0.05) -> pd.DataFrame:
    """The paper-stability statistics for our own masks (tasks with at least two seeds)."""
    from lotterylib.report import paper_figures as pf

    ours = {t: m for t, m in _masks(plan).items() if len(m["seeds"]) >= 2}
    if not ours:
        return pd.DataFrame()
    mine = pd.concat([pf.stability_table(ours, unit, alpha) for unit in ("heads", "heads+mlps")])
    return mine[["task", "unit", "components", "seeds", "kappa", "p", "pairs", "similar", "mean Jaccard of all pairs"]]


# --- paper_subnetworks -------------------------------------------------------------------------------------------


def _paper_scores(root):
    from lotterylib.report import paper_figures as pf

    return _cached("fig2_scores", None, lambda: pf.fig2_scores(root), root)


def _paper_reference(root):
    from lotterylib.report import paper_figures as pf

    return _cached("fig2_reference", None, lambda: pf.fig2_reference(root), root)


def paper_series_table(root=None) -> pd.DataFrame:
    """The series of Figure 2, the file of each and the file the paper's figure drew."""
    scores = _paper_scores(root)
    return scores.drop_duplicates(["method", "subnetwork", "stage"])[
        ["method", "subnetwork", "stage", "setting", "paper figure setting", "paper figure differs"]]


def paper_reference_table(root=None) -> pd.DataFrame:
    return _paper_reference(root)


def _paper_sizes(root):
    from lotterylib.report import paper_figures as pf

    return _cached("s_sizes", None, lambda: pf.s_sizes(_paper_masks("heads_mlps", root)), root)


def paper_panel_titles(root=None) -> dict[str, str]:
    """Figure 2a's panel titles: the paper's size unit (mean, std) and the share of prunable weights kept."""
    sizes = _paper_sizes(root)
    summary = sizes.groupby("task", sort=False)[["paper %", "prunable weights"]].agg(["mean", "std"])
    return {t: f"{t} ({100 * summary.loc[t, ('paper %', 'mean')]:.0f}%, std {100 * summary.loc[t, ('paper %', 'std')]:.0f}%)"
               f"\n{summary.loc[t, ('prunable weights', 'mean')]:.0%} of prunable weights" for t in summary.index}


def paper_fig2_figure(method: str, root=None):
    from lotterylib.report import plots

    titles = paper_panel_titles(root) if method == "s" else None
    return plots.published_subnetwork_bars(_paper_scores(root), _paper_reference(root), method,
                                           **({"titles": titles} if titles else {}))


def paper_fig2_table(method: str, root=None) -> pd.DataFrame:
    from lotterylib.report import paper_figures as pf

    return pf.fig2_wide(_paper_scores(root), method)


def paper_random_check_table(root=None) -> pd.DataFrame:
    from lotterylib.report import paper_figures as pf

    return pf.random_retrained_check(_paper_scores(root), _paper_reference(root))


def paper_random_check_text(root=None) -> str:
    check = paper_random_check_table(root)
    verdict = check.set_index("task")["verdict"]
    groups = {"on par": verdict[verdict == "on par"], "worse": verdict[verdict == "worse"],
              "inconclusive": verdict[~verdict.isin(["on par", "worse"])]}
    listed = {k: ", ".join(v.index) or "none" for k, v in groups.items()}
    largest = ", ".join(f"{row['task']} ({row['gap (good - random)']:+.3f})"
                        for _, row in check.nlargest(3, "gap (good - random)").iterrows())
    return (
        f"The paper's random re-fine-tuned bars equal its good re-fine-tuned bars on **{int(check['drawn bar = good bar'].sum())} "
        f"of {len(check)}** tasks: they were drawn from the same file. Judged by the one comparison rule (METHOD "
        "section 9, the function the scorecard calls: gap = good - random, its 95 % interval, tolerance tau = 10 % "
        f"of good's mean) on the real published scores, random is **on par** with good on {len(groups['on par'])} "
        f"tasks ({listed['on par']}), **worse** on {len(groups['worse'])} ({listed['worse']}) and **inconclusive** "
        f"at five seeds on {len(groups['inconclusive'])} ({listed['inconclusive']}). The authors published means and "
        "standard deviations only, so the gap's spread is taken as that of independent runs; the real random scores "
        "vary far more across seeds than the good ones (compare the std columns), which is what leaves most intervals "
        f"too wide to tell. The largest gaps: {largest}. So the paper's own data support its claim that random "
        "s-pruned subnetworks re-fine-tune about as well as good ones (claim C3) on the tasks listed as on par, and "
        "cannot tell on the others.")


def paper_anchors_table() -> pd.DataFrame:
    from lotterylib.report import paper_figures as pf

    return pf.size_anchors()


def paper_anchors_text() -> str:
    from lotterylib.report import paper_figures as pf

    anchors = pf.size_anchors().set_index("subnetwork")
    c = pf.BERT_BASE
    n = pf.bert_base_param_count(2)
    embedding_share = ((c["vocab_size"] + c["max_position_embeddings"] + c["type_vocab_size"] + 2) * c["hidden_size"]
                       / n)
    return (
        f"What the paper's unit gives at the two ends, for a two-label classifier ({n:,} "
        f"parameters, of which the embeddings are {embedding_share:.1%}, not {pf.printed('fig2_size_offset'):.0%}): "
        f"the full model reads **{anchors.iloc[0, 0]:.0f}%**, a model whose encoder kept no head and no MLP "
        f"**{anchors.iloc[1, 0]:.1f}%** (the LayerNorms, attention-output biases, pooler and classifier that "
        "remain, plus the rounding of the embedding share).")


def paper_size_table(root=None) -> pd.DataFrame:
    from lotterylib.report import paper_figures as pf

    return pf.size_summary(_paper_sizes(root))


def paper_size_text(root=None) -> str:
    sizes = _paper_sizes(root)
    sub = paper_size_table(root)
    by = sizes.groupby("task", sort=False)
    gap = 100 * (by["prunable weights"].mean() - by["paper %"].mean())
    examples = ", ".join(f"{t}: {sub.loc[t, sub.columns[0]].split(' ')[0]} in the paper's unit, "
                         f"{sub.loc[t, 'prunable encoder weights kept'].split(' ')[0]} of the prunable weights"
                         for t in ("CoLA", "MNLI", "QNLI") if t in sub.index)
    return (
        "Unambiguous units: **prunable encoder weights kept**, the share of the weights m-pruning can remove "
        "(Q, K, V, attention output, intermediate and output dense of every layer; for s-pruning a kept head owns "
        "its slices of them, a kept MLP its two dense layers: `subnetworks.structured_weight_count`), and the "
        "shares of **heads**, **MLPs** and **heads + MLPs** kept. The paper's unit reads lower than the share of "
        f"prunable weights on **{int((gap > 0).sum())} of {len(gap)}** tasks (means over seeds), by "
        f"{gap.max():.1f} percentage points ({gap.idxmax()}) down to {gap.min():.1f} ({gap.idxmin()}, whose "
        f"subnetworks are nearly empty, where the two units almost meet): e.g. {examples}. For m-pruning the same "
        "formula applies to the kept weights, but without the published masks its sizes cannot be recomputed here; "
        "the paper's claim that m-pruning keeps fewer weights than s-pruning (claim C5) compares two numbers in the "
        "same unit, so the comparison itself is unaffected.")


def paper_head_counts_table(root=None) -> pd.DataFrame:
    from lotterylib.report import paper_figures as pf

    return pf.subnetwork_head_counts(root)


def paper_table2_check_table(root=None) -> pd.DataFrame:
    from lotterylib.report import paper_figures as pf

    return pf.table2_check(root)


def paper_table2_averages_table(root=None) -> pd.DataFrame:
    from lotterylib.report import paper_figures as pf

    return pf.table2_averages(root)


def paper_table2_text(root=None) -> str:
    from lotterylib.report import paper_figures as pf

    t2 = paper_table2_check_table(root)
    avg = paper_table2_averages_table(root)
    bad = t2[~t2["match"]]
    typo = pf.printed("table2_m_bad_cola")
    cells = "; ".join(f"{row['model']}, {row['task']}: printed {row['printed']:.2f}, results file "
                      f"{row['results file']:.4f} (truncated: {row['truncated']:.2f})" for _, row in bad.iterrows())
    return (
        f"**{int(t2['match'].sum())} of {len(t2)}** cells match the results files. The one that does not: {cells}. "
        f"The printed average of that row, {avg.loc[1, 'printed average']:.2f}, is the mean of the results files "
        f"({avg.loc[1, 'mean of results files']:.4f}), not the mean with {typo:.2f} "
        f"({avg.loc[1, 'mean with the printed 0.24']:.4f}); so {typo:.2f} is a typo for "
        f"{bad['truncated'].iloc[0]:.2f}, and the corrected table above is what the paper computed.")


def ours_cells_table(plan: Plan | str) -> pd.DataFrame:
    """Our subnetworks' mean ± std (n) of every method, stage and subnetwork (super-survivors included)."""
    scores = _scores(plan)
    return collect.cell_table(scores) if len(scores) else pd.DataFrame()


def ours_comparisons_table(plan: Plan | str) -> pd.DataFrame:
    """Every comparison of the claims on our runs, ours beside the paper's."""
    from lotterylib.report import scorecard

    if not len(_scores(plan)):
        return pd.DataFrame()
    comparisons, testability = _both_sides(plan)
    return scorecard.side_by_side(comparisons, testable=testability)


# --- engine_benchmark --------------------------------------------------------------------------------------------

BENCH_RESULTS = L.REPO / "benchmarks" / "results"


def _bench_files(prefix: str, folder: Path | None = None) -> list[Path]:
    return sorted((folder or BENCH_RESULTS).glob(f"{prefix}_*.json"))


def engine_table(folder: Path | None = None) -> pd.DataFrame:
    """One row per engine benchmark file (benchmarks/bench_engine.py): speed-ups, agreement, overheads."""
    rows = []
    for path in _bench_files("engine", folder):
        r = json.loads(path.read_text())
        m = r["machine"]
        rows.append({
            "file": path.name, "date": r["date"], "device": r["device"] if not m["cuda"] else m["cuda"],
            "CPU threads": m["torch_threads"],
            "training ex/s (ours)": r["training"]["examples_per_s"]["ours"],
            "training ex/s (pad 128)": r["training"]["examples_per_s"]["pad128"],
            "training speed-up": r["training"]["speedup"],
            "importance speed-up vs batch-1 loop": r["importance"]["speedup_vs_loop"],
            "max relative difference vs loop": r["importance"]["max_relative_difference_vs_loop"],
            "exact vs per-batch time": r["importance"]["extra_time_vs_per_batch"],
            "all-ones gates overhead": r["gates"]["overhead"],
            "predictions equal with gates": r["gates"]["predictions_equal"],
        })
    return pd.DataFrame(rows)


def engine_table_transposed(folder: Path | None = None) -> pd.DataFrame:
    """:func:`engine_table` with one column per file (the measures as rows), as the page shows it."""
    table = engine_table(folder)
    if table.empty:
        return table
    out = table.set_index("file").T.astype(object)
    out.insert(0, "measure", out.index)
    return out.reset_index(drop=True)


def engine_text(folder: Path | None = None) -> str:
    """One paragraph per benchmark file, each measure beside its goal."""
    paragraphs = []
    for _, row in engine_table(folder).iterrows():
        paragraphs.append(
            f"**{row['file']}** ({row['device']}, {row['CPU threads']} threads, {row['date']}): training "
            f"{row['training speed-up']:.2f}x faster than padding to 128 (goal: at least 2x); exact importance "
            f"{row['importance speed-up vs batch-1 loop']:.2f}x faster than the batch-size-1 loop with scores equal "
            f"to a relative {row['max relative difference vs loop']:.1e} (goal: below 1e-4) and "
            f"{row['exact vs per-batch time']:+.0%} time against the authors' per-batch variant (goal: at most "
            f"+10 %); all-ones gates cost {row['all-ones gates overhead']:+.1%} (goal: at most +5 %).")
    return "\n\n".join(paragraphs) or "*No engine benchmark results committed.*"


def engine_ratios(folder: Path | None = None) -> pd.Series:
    """The latest engine benchmark as four speed ratios (above 1: ours faster)."""
    table = engine_table(folder)
    if table.empty:
        return pd.Series(dtype=float)
    last = table.iloc[-1]
    s = pd.Series({"training\n(vs pad 128)": last["training speed-up"],
                   "importance\n(vs batch-1 loop)": last["importance speed-up vs batch-1 loop"],
                   "importance\n(vs per-batch)": 1 / (1 + last["exact vs per-batch time"]),
                   "evaluation\n(gates vs none)": 1 / (1 + last["all-ones gates overhead"])})
    s.name = last["file"]
    return s


def engine_figure(folder: Path | None = None):
    import matplotlib.pyplot as plt

    bars = engine_ratios(folder)
    if bars.empty:
        return None
    fig, ax = plt.subplots(figsize=(6, 2.6))
    ax.barh(bars.index, bars.values, color="#457b9d")
    ax.axvline(1, color="black", lw=1)
    ax.set_xlabel("speed ratio (higher: ours faster)")
    ax.set_title(str(bars.name))
    return fig


def speedups_text(folder: Path | None = None) -> str:
    """The bfloat16 and head-removal speed-ups of each benchmarks/bench_speedups.py result."""
    blocks = []
    for path in _bench_files("speedups", folder):
        r = json.loads(path.read_text())
        p = r["precision"]
        threads = r["machine"]["torch_threads"]
        mask = "/".join(Path(r["mask_folder"]).parts[-5:-2])
        lines = [(f"**{path.name}** ({r['machine']['cuda'] or 'CPU'}, {threads} thread{'s' if threads != 1 else ''}, "
                  f"{r['date'][:10]}, {r['model']}, {r['task']}, {p['n_examples']} training examples, median of "
                  f"{p['repeats']}):"),
                 (f"- bfloat16 autocast: {p['examples_per_s']['bf16']:.1f} vs {p['examples_per_s']['fp32']:.1f} "
                  f"examples/s in fp32: **{p['speedup']:.2f}x**.")]
        for name, x in r["removal"].items():
            lines.append(
                f"- {name} subnetwork of `{mask}` ({x['heads_kept']} heads, {x['mlps_kept']} MLPs kept; "
                f"{x['parameters_after'] / x['parameters_before']:.0%} of the parameters, embeddings included): removed "
                f"{x['examples_per_s']['removed']:.1f} vs gated {x['examples_per_s']['gated']:.1f} examples/s: "
                f"**{x['speedup']:.2f}x**; largest logit difference {x['max_abs_logit_difference']:.1e}, "
                f"predictions {'identical' if x['same_predictions'] else 'NOT identical'}.")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) or "*No speed-up benchmark results committed.*"


def grid_calls_table(plan: Plan | str) -> pd.DataFrame:
    """Each logged grid call: device, workers, jobs done, wall time, summed job time, jobs at once."""
    calls = collect.grid_calls(plan)
    if calls.empty:
        return pd.DataFrame()
    shown = calls.assign(**{"wall (min)": calls["wall_seconds"] / 60, "job time (h)": calls["job_seconds"] / 3600,
                            "jobs at once": calls["job_seconds"] / calls["wall_seconds"]})
    return shown[["call", "device", "workers", "jobs_done", "wall (min)", "job time (h)", "jobs at once"]]


def grid_calls_text(plan: Plan | str) -> str:
    calls = collect.grid_calls(plan)
    name = _plan_name(plan)
    if calls.empty:
        return (f"*No grid log for plan `{name}`: its runs were made by the Snakemake workflow, one job per "
                "notebook (each result file's provenance says where).*")
    per_device = calls.groupby("device").agg(jobs=("jobs_done", "sum"), wall=("wall_seconds", "sum"))
    n_jobs = len(collect.grid_logs(plan).drop_duplicates("job"))
    return ("Altogether: " + "; ".join(f"**{int(r.jobs)} jobs in {r.wall / 60:.1f} min of wall time on {device}**"
                                       for device, r in per_device.iterrows())
            + f". The plan has {n_jobs} jobs in these logs.")


def grid_stages_table(plan: Plan | str) -> pd.DataFrame:
    """Per device and stage: jobs finished, median job time (s), total job time (min)."""
    jobs = collect.grid_logs(plan)
    if jobs.empty:
        return pd.DataFrame()
    return (jobs[jobs["ok"]].groupby(["device", "stage"])["seconds"]
            .agg(jobs="count", median_s="median", total_min=lambda s: s.sum() / 60))


def explorer_bench_text(folder: Path | None = None) -> str:
    lines = []
    for path in _bench_files("explorer", folder):
        r = json.loads(path.read_text())
        lines.append(
            f"**{path.name}** ({r['machine']['cuda'] or 'CPU'}, {r['machine']['torch_threads']} threads): "
            f"median update **{r['median_update_seconds']:.2f} s** over {r['clicks']} clicks, of which re-scoring "
            f"{r['dev_examples']} dev examples takes {r['median_score_seconds']:.2f} s ({r['model']}, {r['task']}).")
    return "\n\n".join(lines) or "*No explorer benchmark results committed.*"


# --- why a cell is empty, per table ------------------------------------------------------------------------------

_UNDEFINED_KAPPA = "undefined: all kept or all pruned"
#: :func:`stability_pairs_table`
PAIRS_EMPTY = {"jaccard": "no head kept by either seed", "kappa": _UNDEFINED_KAPPA}
#: :func:`association_table` (its ``note`` column says why a task is not testable)
ASSOCIATION_EMPTY = {"het_share_survivors": "no survivor", "het_share_pruned": "no pruned head",
                     "odds_ratio": "not testable (see note)", "ci_low": "not testable", "ci_high": "not testable",
                     "p_value": "not testable"}
#: :func:`association_by_seed_table`
BY_SEED_EMPTY = "not testable: no survivor, no pruned head, or one type only"
#: :func:`ours_overlap_table`
OURS_OVERLAP_EMPTY = {"observed / chance": "chance level is 0", "Jaccard (mean)": "no head kept by either task"}
#: :func:`ours_stability_table`
OURS_STABILITY_EMPTY = {"kappa": _UNDEFINED_KAPPA, "mean Jaccard of all pairs": "no head kept by either seed"}
#: :func:`paper_q_table`
Q_EMPTY = {"p (authors' notebook)": "not printed (statsmodels 0/0)", "p": "undefined (0/0)"}


# --- one-line takeaways under the figures ------------------------------------------------------------------------


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
    """Super-survivors' random and bad sets against the super-survivors, re-fine-tuned, task by task."""
    scores = _scores(plan)
    supers = scores[scores["method"] == "super"] if len(scores) else scores
    text = _against_good(supers) if len(supers) else ""
    return (f"Re-fine-tuned: {text} (means over seeds)." if text
            else "No super-survivor re-fine-tunes in this plan's results yet.")


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


def gallery_takeaway(plan: Plan | str) -> str:
    """The share of gallery maps of each type (fine-tuned and pre-trained weights pooled)."""
    counts = gallery_counts_table(plan)
    if counts.empty:
        return "No gallery maps yet: no run of this plan has finished fine-tuning."
    total = counts.sum()
    share = (total / total.sum()).sort_values(ascending=False)
    return ("Of the maps kept, " + ", ".join(f"{v:.0%} are {t}" for t, v in share.items())
            + "; the maps shown are drawn at random within each type.")


def paper_survival_text(stat: str = "share", root=None) -> str:
    """Heads that survive in every seed, in none, or in some (the share and std maps), all tasks pooled."""
    masks = _paper_masks("heads_mlps", root)
    freq = np.concatenate([m["head_mask"].reshape(len(m["head_mask"]), -1).mean(0) for m in masks.values()])
    every, none = float((freq == 1).mean()), float((freq == 0).mean())
    if stat == "share":
        return (f"Over the {len(masks)} tasks, {every:.0%} of the heads survive in every seed and {none:.0%} in "
                f"none; the rest depend on the seed.")
    return (f"{1 - every - none:.0%} of the heads (all tasks pooled) survive in some seeds but not all: their "
            "standard deviation over the seeds is above 0.")


def paper_qnli_takeaway(root=None) -> str:
    m = _paper_masks("heads_mlps", root)["QNLI"]
    freq = m["head_mask"].reshape(len(m["head_mask"]), -1).mean(0)
    return (f"On QNLI {int((freq == 1).sum())} of {freq.size} heads survive in every seed and {int((freq == 0).sum())} "
            "in none.")


def paper_overlap_takeaway(variant: str = "heads", root=None, n_perm: int = 1000) -> str:
    """The caption of the appendix variant (heads pruned alone), whose pairs above chance are marked *; claim C9's
    count is :func:`lotterylib.report.statistics.paper_c9_overlap` (heads pruned with the MLPs)."""
    t = paper_overlap(variant, root, n_perm)
    mean, p95 = t["mean"], t["null_p95"]
    tasks = list(mean.index)
    pairs = [(a, b) for i, a in enumerate(tasks) for b in tasks[i + 1:]]
    above = sum(bool(mean.loc[a, b] > p95.loc[a, b]) for a, b in pairs)
    return (f"Pairs marked * exceed the 95th percentile of chance: {above} of {len(pairs)}, every task of the "
            "published data, WNLI included (the appendix variant, not claim C9's count).")


def paper_jaccard_takeaway(root=None, n_perm: int = 1000) -> str:
    j = paper_overlap("heads_mlps", root, n_perm)["jaccard"]
    tasks = list(j.index)
    values = pd.Series([j.loc[a, b] for i, a in enumerate(tasks) for b in tasks[i + 1:]]).dropna()
    return (f"The Jaccard overlap of two tasks' surviving heads is {values.median():.2f} at the median (from "
            f"{values.min():.2f} to {values.max():.2f}).")


def paper_kappa_takeaway(root=None, alpha: float = 0.05) -> str:
    from lotterylib.report import paper_figures as pf

    kappas = paper_kappa_table(root, alpha)
    lo, hi = pf.printed("kappa_range")
    inside = int(kappas[f"heads in paper's {lo}-{hi}"].sum())
    return (f"Our heads kappa equals the authors' printed value on {int(kappas['same as authors'].sum())} of "
            f"{len(kappas)} tasks; {inside} lie inside the paper's {lo}-{hi}.")


def paper_fig2_takeaway(method: str, root=None) -> str:
    """On how many tasks the published re-fine-tuned random and bad means reach 90 % of good's."""
    scores = _paper_scores(root)
    part = scores[scores["method"] == method].rename(columns={"mean": "score"})
    text = _against_good(part)
    return f"Re-fine-tuned, from the published files: {text}." if text else "No published scores for this method."


def why_small_takeaway(plan: Plan | str, topic: str) -> str:
    """The page's finding whose topic starts with ``topic`` (e.g. "Heads-only", "Good minus random"), one line."""
    from lotterylib.report import beyond

    found = [c.summary for c in beyond.findings(evidence(plan)) if c.topic.startswith(topic)]
    return " ".join(found) or "Not computed yet."


def engine_takeaway(folder: Path | None = None) -> str:
    bars = engine_ratios(folder)
    if bars.empty:
        return "No engine benchmark results committed."
    ratios = ", ".join(f"{' '.join(k.split())} {v:.2f}x" for k, v in bars.items())
    return f"Speed ratios of the latest run: {ratios}."


# --- the executed notebook as the book renders it ----------------------------------------------------------------


def hide_injected_parameters(path: str | Path) -> bool:
    """Tag papermill's ``injected-parameters`` cell of the executed notebook ``path`` ``remove-cell``, so that the
    book does not render it (papermill tags that cell ``injected-parameters`` only, whatever the template's
    parameters cell carries; the notebooks' file-level ``mystnb: remove_code_source`` hides its code but leaves
    an empty cell). Rewrites the file atomically; returns whether a cell was tagged.

    The workflow's figure rule runs it on each executed copy: ``python -m lotterylib.report.views <notebook>``.
    """
    import nbformat

    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    changed = False
    for cell in nb.cells:
        tags = list(cell.metadata.get("tags", []))
        if "injected-parameters" in tags and "remove-cell" not in tags:
            cell.metadata["tags"] = tags + ["remove-cell"]
            changed = True
    if changed:
        tmp = path.with_name(path.name + ".tmp")
        nbformat.write(nb, tmp)
        tmp.replace(path)
    return changed


if __name__ == "__main__":
    import sys

    for arg in sys.argv[1:]:
        hide_injected_parameters(arg)
