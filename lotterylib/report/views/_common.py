"""What every results page shares: the plan and its cache, tables as the pages show them, the re-run command, and
the tagging of an executed notebook for the book."""

from __future__ import annotations

import html
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lotterylib.config.plans import Plan
from lotterylib.read import analysis, collect


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


LAYER_GROUPS = analysis.LAYER_GROUPS


layer_groups = analysis.layer_groups


layer_group = analysis.layer_group


NO_RUN = "no run yet"
#: A blank cell of a column of words (a note, a reason): nothing to say there.
NOTHING = "–"


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
    and every empty cell replaced by the reason it is empty (``empty``: one phrase, or one per column). A column of
    words only (a note, a reason) shows a blank cell as "–": nothing to say, not a missing run."""
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
        # A column of words only (a note, a reason) has nothing to say where it is blank: no run is missing there.
        words = (len(values) > 0 and all(isinstance(x, str) for x in values)
                 and not (isinstance(empty, Mapping) and col in empty))
        cells = []
        for x in values:
            if words and not x.strip():
                cells.append(NOTHING)
            elif _is_missing(x):
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
    p = Plan.of(plan)
    values = {p.settings(t).search.fraction for t in p.tasks}
    if len(values) != 1:
        raise ValueError(f"plan {p.name!r} sets search.fraction per task: {sorted(values)}")
    return values.pop()


def _fraction_words(plan: Plan | str) -> str:
    """"90 %" (the plan's ``search.fraction``), or the per-task values where tasks override it."""
    p = Plan.of(plan)
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
