"""Beyond the paper (METHOD.md section 10): why the small model answers differently.

At demo scale (all-MiniLM-L6-v2, 6 layers x 12 heads, 6 MLPs) random s-subnetworks re-fine-tune worse than good
ones on most tasks, unlike the paper's bert-base. This module gathers what bears on why, for the chapter
``notebooks/figures/why_small_model.ipynb``:

- the heads-only lottery curve (``lottery/f<fraction>_<variant>/metrics.json``): at fixed shares of heads removed,
  every MLP kept, does a random ticket keep up with the good one (and the bad one)?
- the component swap (``swap/<variant>/metrics.json``): good heads with random MLPs, random heads with good MLPs,
  beside the s-pruning good and random re-fine-tunes (``retrain_s_<good|random>/metrics.json``): do heads or MLPs
  carry the gap?
- the share of heads and of MLPs our s-search removed, beside the authors' published bert-base masks;
- the good-minus-random gap of s-pruning, ours and the paper's, relative to the good mean, on one scale.

Every gap is METHOD.md section 9's rule, :func:`lotterylib.read.compare.compare` (runs paired by seed). The authors
published each setting's mean and standard deviation over their five seeds, not the per-seed scores, so their
runs cannot be paired: :func:`lotterylib.read.compare.compare_unpaired` applies the same tolerance and verdict rule to a Welch interval
built from those summaries (pairing can only narrow an interval where good and random runs of a seed move
together), and our side is also shown that way, so that the two can be read like for like.

Every table is built from the result files present: a run not computed yet is counted as missing and shown so
("not yet computed (k of N runs)"), never filled in. The module reads JSON and npz files only and imports no torch.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D

from lotterylib.read import collect
from lotterylib.read.compare import (INCONCLUSIVE, ON_PAR, TOLERANCE, WORSE, Comparison, compare, compare_unpaired,
                                      relative_gap_difference)
from lotterylib.read.paper import PAPER_SEEDS, PAPER_TASKS, PaperDataNotFound, load_paper_masks, load_paper_results
from lotterylib.config.plans import Plan
from lotterylib.report import style
from lotterylib.report.style import SUBNETWORK_COLORS
from lotterylib.store import layout as L
from lotterylib.store.files import read_npz
from lotterylib.method.subnetworks import SUBNETWORKS, SWAP_VARIANTS

#: GLUE order, as the paper lists the tasks.
GLUE_ORDER: tuple[str, ...] = PAPER_TASKS
LOTTERY_VARIANTS: tuple[str, ...] = SUBNETWORKS  # good, random, bad
#: The four arms of the swap table: the s-pruning good and random re-fine-tunes around the two swaps.
SWAP_ARMS: tuple[str, ...] = ("good", *SWAP_VARIANTS, "random")
ARM_NAMES = {"good": "good", "good_heads_random_mlps": "good heads + random MLPs",
             "random_heads_good_mlps": "random heads + good MLPs", "random": "random"}
#: The authors' settings holding the s-pruning good and random re-fine-tuned scores (the real ones: Figure 2a
#: drew ``head_mlp_retrained`` for both; see lotterylib.report.paper_figures.FIG2_SERIES).
PAPER_S_SETTINGS = {"good": "head_mlp_retrained", "random": "head_mlp_random_retrained"}
PAPER_MODEL = "bert-base-uncased"
SOURCES = ("ours", "ours, unpaired", "paper, unpaired")
PAPER_COLOR = style.PAPER_COLOR  # the paper's bert-base, as fig2's purple reference line
OURS_COLOR = style.OURS_COLOR
EMPTY = "not yet computed"


def _glue_sorted(tasks) -> list[str]:
    order = {t: i for i, t in enumerate(GLUE_ORDER)}
    return sorted(tasks, key=lambda t: (order.get(t, len(order)), t))


def _read(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.exists() else None


# --- what the plan asks for ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Scope:
    """The plan's grid (``tasks`` x ``seeds``) and its section-10 runs (``beyond_*``, ``fractions``)."""

    plan: str
    model: str
    tasks: tuple[str, ...]
    seeds: tuple[int, ...]
    beyond_tasks: tuple[str, ...]
    beyond_seeds: tuple[int, ...]
    fractions: tuple[float, ...]
    head_step: float

    @classmethod
    def of(cls, plan) -> "Scope":
        plan = Plan.of(plan)
        beyond = plan.raw["beyond_paper"]
        return cls(plan.name, plan.model, tuple(_glue_sorted(plan.tasks)), tuple(int(s) for s in plan.seeds),
                   tuple(_glue_sorted(beyond.get("tasks") or [])), tuple(int(s) for s in beyond.get("seeds") or []),
                   tuple(float(f) for f in beyond.get("head_fractions") or []),
                   float(plan.raw["search"].get("head_step", 0.1)))


# --- readers: one row per expected run, present or not --------------------------------------------------------

RUN_COLUMNS = ["task", "seed", "status", "why", "metric", "score", "heads_kept", "mlps_kept", "device", "created"]


def _reported(plan: str, task: str, seed: int) -> str | None:
    data = _read(L.finetune_file(plan, task, seed))
    return data.get("reported_metric") if data else None


def _run_row(path: Path, metric: str | None) -> dict:
    """status: ``done`` (a score), ``no score`` (the stage recorded why there is none) or ``missing``."""
    data = _read(path)
    row = {"status": "missing", "why": None, "metric": metric, "score": np.nan, "heads_kept": np.nan,
           "mlps_kept": np.nan, "device": None, "created": None}
    if data is None:
        return row
    prov = data.get("provenance") or {}
    row.update(device=prov.get("device"), created=prov.get("created"))
    if "metrics" not in data:
        row.update(status="no score", why=data.get("no_subnetwork") or data.get("skipped") or "no metrics recorded")
        return row
    if metric is None or metric not in data["metrics"]:
        metric = "search metric"
        score = data["metric"]
    else:
        score = data["metrics"][metric]
    row.update(status="done", metric=metric, score=float(score), heads_kept=data.get("heads_kept", np.nan),
               mlps_kept=data.get("mlps_kept", np.nan))
    return row


def lottery_runs(plan) -> pd.DataFrame:
    """Every run of the heads-only lottery curve the plan asks for: task, seed, fraction, variant, status, score
    (the task's reported metric), heads_kept, mlps_kept, device, created."""
    scope = plan if isinstance(plan, Scope) else Scope.of(plan)
    rows = []
    for task in scope.beyond_tasks:
        for seed in scope.beyond_seeds:
            metric = _reported(scope.plan, task, seed)
            for fraction in scope.fractions:
                for variant in LOTTERY_VARIANTS:
                    path = L.lottery_file(scope.plan, task, seed, fraction, variant)
                    rows.append({"task": task, "seed": seed, "fraction": fraction, "variant": variant,
                                 **_run_row(path, metric)})
    return pd.DataFrame(rows, columns=["task", "seed", "fraction", "variant", *RUN_COLUMNS[2:]])


def _same_mask(a: Path, b: Path) -> float:
    """1.0 if the two structured masks are equal, 0.0 if not, NaN if either is missing."""
    if not (a.exists() and b.exists()):
        return np.nan
    x, y = read_npz(a), read_npz(b)
    return float(all(np.array_equal(x[k], y[k]) for k in ("head_mask", "mlp_mask")))


def swap_runs(plan) -> pd.DataFrame:
    """Every run of the component swap the plan asks for: task, seed, variant, status, score, heads_kept,
    mlps_kept, device, created, and ``same_as_good`` (1 where the swapped mask equals the good one: a good mask
    keeping every MLP leaves "good heads + random MLPs" nothing to draw)."""
    scope = plan if isinstance(plan, Scope) else Scope.of(plan)
    rows = []
    for task in scope.beyond_tasks:
        for seed in scope.beyond_seeds:
            metric = _reported(scope.plan, task, seed)
            for variant in SWAP_VARIANTS:
                rows.append({"task": task, "seed": seed, "variant": variant,
                             **_run_row(L.swap_file(scope.plan, task, seed, variant), metric),
                             "same_as_good": _same_mask(L.swap_file(scope.plan, task, seed, variant, L.MASK),
                                                        L.mask_file(scope.plan, task, seed, "s", "good"))})
    return pd.DataFrame(rows, columns=["task", "seed", "variant", *RUN_COLUMNS[2:], "same_as_good"])


def s_runs(plan) -> pd.DataFrame:
    """The s-pruning good and random re-fine-tunes of every task and seed of the plan (``subnetwork`` column)."""
    scope = plan if isinstance(plan, Scope) else Scope.of(plan)
    rows = []
    for task in scope.tasks:
        for seed in scope.seeds:
            metric = _reported(scope.plan, task, seed)
            for sub in ("good", "random"):
                path = L.retrain_file(scope.plan, task, seed, "s", sub)
                rows.append({"task": task, "seed": seed, "subnetwork": sub, **_run_row(path, metric)})
    return pd.DataFrame(rows, columns=["task", "seed", "subnetwork", *RUN_COLUMNS[2:]])


def full_runs(plan) -> pd.DataFrame:
    """One row per (task, seed) of the scope with a fine-tuned full model: metric, score, majority, structure."""
    scope = plan if isinstance(plan, Scope) else Scope.of(plan)
    full = collect.full_scores_of(scope.plan, scope.tasks, scope.seeds)
    return full[["task", "seed", "metric", "score", "majority", "structure"]]


def good_masks(plan) -> pd.DataFrame:
    """Sizes of the s-pruning good masks: one row per (task, seed) that has one."""
    scope = plan if isinstance(plan, Scope) else Scope.of(plan)
    rows = []
    for task in scope.tasks:
        for seed in scope.seeds:
            path = L.mask_file(scope.plan, task, seed, "s", "good")
            if path.exists():
                m = read_npz(path)
                rows.append(_mask_row(task, seed, m["head_mask"], m["mlp_mask"]))
    return pd.DataFrame(rows, columns=MASK_COLUMNS)


MASK_COLUMNS = ["task", "seed", "heads_kept", "heads_total", "mlps_kept", "mlps_total", "n_layers"]


def _mask_row(task, seed, head_mask, mlp_mask) -> dict:
    head_mask, mlp_mask = np.asarray(head_mask), np.asarray(mlp_mask)
    return {"task": task, "seed": int(seed), "heads_kept": int(head_mask.sum()), "heads_total": int(head_mask.size),
            "mlps_kept": int(mlp_mask.sum()), "mlps_total": int(mlp_mask.size), "n_layers": int(head_mask.shape[0])}


# --- the authors' side ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PaperSide:
    """The authors' s-pruning good and random re-fine-tuned scores (mean, sample std, n per task) and the sizes of
    their good masks (``heads_mlps``); empty tables and ``missing`` (why) where their data is not here."""

    scores: pd.DataFrame
    masks: pd.DataFrame
    missing: str | None = None


def paper_side(tasks=PAPER_TASKS) -> PaperSide:
    tasks = [t for t in tasks if t in PAPER_TASKS]
    try:
        rows = []
        for sub, setting in PAPER_S_SETTINGS.items():
            df = load_paper_results(setting, allow_download=False)
            df = df[df["reported"] & df["task"].isin(tasks)]
            rows += [{"task": r.task, "subnetwork": sub, "metric": r.metric, "mean": r.mean, "std": r.std,
                      "n": len(PAPER_SEEDS), "setting": setting} for r in df.itertuples()]
        masks = load_paper_masks("heads_mlps", tasks=tasks, allow_download=False) if tasks else {}
    except PaperDataNotFound as err:
        return PaperSide(pd.DataFrame(columns=["task", "subnetwork", "metric", "mean", "std", "n", "setting"]),
                         pd.DataFrame(columns=MASK_COLUMNS), str(err))
    mask_rows = [_mask_row(task, seed, h, m) for task, d in masks.items()
                 for seed, h, m in zip(d["seeds"], d["head_mask"], d["mlp_mask"])]
    return PaperSide(pd.DataFrame(rows), pd.DataFrame(mask_rows, columns=MASK_COLUMNS))


# --- everything the chapter reads, once --------------------------------------------------------------------------

@dataclass(frozen=True)
class Evidence:
    """Every result file the chapter reads, read once (see :func:`gather`)."""

    scope: Scope
    lottery: pd.DataFrame
    swap: pd.DataFrame
    s: pd.DataFrame
    full: pd.DataFrame
    masks: pd.DataFrame
    paper: PaperSide = field(repr=False)


def gather(plan) -> Evidence:
    """Read the plan's section-10 runs, its s-pruning good/random re-fine-tunes, full models and good masks, and
    the authors' published data for the same tasks."""
    scope = Scope.of(plan)
    return Evidence(scope, lottery_runs(scope), swap_runs(scope), s_runs(scope), full_runs(scope),
                    good_masks(scope), paper_side(scope.tasks))


def _done(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["status"] == "done"]


def not_yet(k: int, n: int) -> str:
    """How far a set of runs has got.

    >>> not_yet(2, 27)
    'not yet computed (2 of 27 runs)'
    """
    return f"{EMPTY} ({k} of {n} run{'s' if n != 1 else ''})"


def run_counts(ev: Evidence) -> pd.DataFrame:
    """Per experiment: runs the plan asks for, with a score, recorded without one (and why), missing."""
    beyond_s = ev.s[ev.s["task"].isin(ev.scope.beyond_tasks) & ev.s["seed"].isin(ev.scope.beyond_seeds)]
    sc = ev.scope
    section = f"{len(sc.beyond_tasks)} tasks x {len(sc.beyond_seeds)} seeds"
    every = f"{len(sc.tasks)} tasks x {len(sc.seeds)} seeds"
    parts = [("heads-only lottery curve", ev.lottery, f"{section} x {len(sc.fractions)} shares x 3 variants"),
             ("component swap", ev.swap, f"{section} x 2 swaps"),
             ("s-pruning good, re-fine-tuned", ev.s[ev.s["subnetwork"] == "good"], every),
             ("s-pruning random, re-fine-tuned", ev.s[ev.s["subnetwork"] == "random"], every),
             ("of which the swap table's random arm", beyond_s[beyond_s["subnetwork"] == "random"], section)]
    rows = []
    for name, df, grid in parts:
        why = sorted(set(df.loc[df["status"] == "no score", "why"].dropna()))
        rows.append({"experiment": name, "grid": grid, "expected": len(df),
                     "with a score": int((df["status"] == "done").sum()),
                     "recorded without a score": int((df["status"] == "no score").sum()),
                     "missing": int((df["status"] == "missing").sum()), "why no score": "; ".join(why)})
    return pd.DataFrame(rows)


# --- references and testability ------------------------------------------------------------------------------------

def reference(ev: Evidence) -> pd.DataFrame:
    """Per task: the full model's metric, mean, sample std and n over seeds, and the majority baseline."""
    if not len(ev.full):
        return pd.DataFrame(columns=["task", "metric", "full", "full_std", "n", "majority"])
    return ev.full.groupby("task", sort=False).agg(
        metric=("metric", "first"), full=("score", "mean"), full_std=("score", "std"), n=("seed", "count"),
        majority=("majority", "mean")).reset_index()


def testable_tasks(ev: Evidence) -> tuple[list[str], dict[str, str]]:
    """Tasks whose full model beats the majority baseline (as the scorecard's rule) and whose s-search removed
    something in at least one seed; the others with the reason."""
    ref = reference(ev).set_index("task")
    ok, why = [], {}
    for task in ev.scope.tasks:
        if task not in ref.index:
            why[task] = "no fine-tuned full model yet"
            continue
        r = ref.loc[task]
        sizes = ev.masks[ev.masks["task"] == task]
        removed = ((sizes["heads_kept"] < sizes["heads_total"]) | (sizes["mlps_kept"] < sizes["mlps_total"])).any()
        if not r["full"] > r["majority"]:
            why[task] = (f"the full model ({r['full']:.3f} {r['metric']}) does not beat the majority baseline "
                         f"({r['majority']:.3f})")
        elif len(sizes) and not removed:
            why[task] = "the s-search removed nothing in any seed"
        else:
            ok.append(task)
    return ok, why


# --- the comparison rule on published summaries ------------------------------------------------------------------

def _relative(c: Comparison) -> dict:
    """The gap and its interval divided by the reference mean: the tolerance is then 0.1 for every task (none for
    a reference mean at or below zero, a model no better than chance)."""
    ref = c.reference_mean
    ok = np.isfinite(ref) and ref > 0
    return {"rel_gap": c.gap / ref if ok else np.nan, "rel_low": c.low / ref if ok else np.nan,
            "rel_high": c.high / ref if ok else np.nan}


def _paired(ref: pd.DataFrame, other: pd.DataFrame) -> Comparison:
    return compare(ref.set_index("seed")["score"], other.set_index("seed")["score"])


# --- heads-only lottery curve ----------------------------------------------------------------------------------

def lottery_summary(ev: Evidence) -> pd.DataFrame:
    """One row per (task, fraction, variant) the plan asks for: n, mean, sample std, min and max over seeds."""
    done = _done(ev.lottery)
    rows = []
    for task in ev.scope.beyond_tasks:
        for fraction in ev.scope.fractions:
            for variant in LOTTERY_VARIANTS:
                s = done[(done["task"] == task) & (done["fraction"] == fraction) & (done["variant"] == variant)]
                scores = s["score"].to_numpy(float)
                rows.append({"task": task, "fraction": fraction, "variant": variant,
                             "metric": s["metric"].iloc[0] if len(s) else None, "n": len(scores),
                             "mean": scores.mean() if len(scores) else np.nan,
                             "std": scores.std(ddof=1) if len(scores) > 1 else np.nan,
                             "min": scores.min() if len(scores) else np.nan,
                             "max": scores.max() if len(scores) else np.nan})
    return pd.DataFrame(rows, columns=["task", "fraction", "variant", "metric", "n", "mean", "std", "min", "max"])


def lottery_comparisons(ev: Evidence) -> pd.DataFrame:
    """Per (task, fraction): :func:`compare` of random and of bad against good, paired by seed, with the gap
    relative to the good mean."""
    done = _done(ev.lottery)
    rows = []
    for task in ev.scope.beyond_tasks:
        for fraction in ev.scope.fractions:
            here = done[(done["task"] == task) & (done["fraction"] == fraction)]
            good = here[here["variant"] == "good"]
            for other in ("random", "bad"):
                c = _paired(good, here[here["variant"] == other])
                rows.append({"task": task, "fraction": fraction, "other": other, **c.as_dict(), **_relative(c)})
    return pd.DataFrame(rows, columns=["task", "fraction", "other", "n", "reference_mean", "other_mean", "gap", "low",
                                       "high", "tau", "verdict", "label", "rel_gap", "rel_low", "rel_high"])


def _n_text(ns: list[int]) -> str:
    return str(ns[0]) if min(ns) == max(ns) else f"{min(ns)}-{max(ns)}"


def _seeds_title(s: pd.DataFrame) -> str:
    """'n = 3 seeds per point', or the range where points differ: 'n = 1-3 seeds per point' (the table below the
    figure gives each point's n)."""
    every = s["n"].tolist()
    if not every:
        return ""
    text = _n_text(every)
    return f"n = {text} seed{'' if text == '1' else 's'} per point"


LOTTERY_LABELS = {"good": "good: least important heads removed", "random": "random heads removed",
                  "bad": "bad: most important heads removed"}


def lottery_figure(ev: Evidence):
    """One panel per section-10 task (GLUE order): re-fine-tuned score against the share of heads removed; good,
    random and bad as mean lines with their min-max band over seeds (dots: single seeds); the full model's mean
    (solid) and the majority baseline (dotted) as references; n seeds per point in each panel's title."""
    summary, done, ref = lottery_summary(ev), _done(ev.lottery), reference(ev).set_index("task")
    tasks = list(ev.scope.beyond_tasks)
    n = max(1, len(tasks))
    fig, axes = style.subplots(1, n, height=3.5, fig_width=min(2.9 * n, style.CONTENT_WIDTH_IN))
    axes = axes.ravel()
    xs = [100 * f for f in ev.scope.fractions]
    for ax, task in zip(axes, tasks):
        s = summary[summary["task"] == task]
        for variant in LOTTERY_VARIANTS:
            have = s[(s["variant"] == variant) & (s["n"] > 0)].sort_values("fraction")
            color = SUBNETWORK_COLORS[variant]
            if len(have):
                x = 100 * have["fraction"].to_numpy()
                ax.fill_between(x, have["min"], have["max"], color=color, alpha=0.25, lw=0)
                ax.plot(x, have["mean"], color=color, marker="o", lw=2)
                pts = done[(done["task"] == task) & (done["variant"] == variant)]
                ax.scatter(100 * pts["fraction"], pts["score"], color=color, edgecolor="black", lw=0.4, s=14,
                           zorder=3)
        values = list(done.loc[done["task"] == task, "score"])
        if task in ref.index:
            ax.axhline(ref.loc[task, "full"], color=style.FULL_COLOR, lw=1.2)
            ax.axhline(ref.loc[task, "majority"], color=style.MAJORITY_COLOR, lw=1.2, ls=":")
            values += [ref.loc[task, "full"], ref.loc[task, "majority"]]
        if values:  # every line in view, the references included
            lo, hi = min(values), max(values)
            pad = max(0.06 * (hi - lo), 0.02)
            ax.set_ylim(lo - pad, hi + pad)
        n_done = int((done["task"] == task).sum())
        if n_done == 0:
            n_all = int((ev.lottery["task"] == task).sum())
            ax.text(0.5, 0.5, not_yet(0, n_all).replace(" (", "\n("), transform=ax.transAxes, ha="center",
                    va="center", fontsize=10, color="dimgrey")
        ax.set_xticks(xs, [f"{x:.0f} %" for x in xs], fontsize=10)
        ax.set_xlim(min(xs, default=0) - 10, max(xs, default=100) + 10)
        ax.set_xlabel("heads removed", fontsize=10)
        metric = ref.loc[task, "metric"] if task in ref.index else (s["metric"].dropna().iloc[0]
                                                                   if s["metric"].notna().any() else "score")
        ax.set_ylabel(metric, fontsize=10)
        ax.tick_params(axis="y", labelsize=10)
        ax.set_title(f"{task}\n{_seeds_title(s)}", fontsize=10)
    handles = [Line2D([], [], color=SUBNETWORK_COLORS[v], marker="o", lw=2, label=LOTTERY_LABELS[v])
               for v in LOTTERY_VARIANTS]
    handles += [Line2D([], [], color=style.FULL_COLOR, lw=1.2, label="full model (mean)"),
                Line2D([], [], color=style.MAJORITY_COLOR, lw=1.2, ls=":", label="majority baseline")]
    style.legend_outside(fig, handles, ncol=2, fontsize=10)
    return fig


# --- component swap ---------------------------------------------------------------------------------------------

def _arm_runs(ev: Evidence, task: str, arm: str) -> pd.DataFrame:
    if arm in ("good", "random"):
        s = _done(ev.s)
        return s[(s["task"] == task) & (s["subnetwork"] == arm) & s["seed"].isin(ev.scope.beyond_seeds)]
    w = _done(ev.swap)
    return w[(w["task"] == task) & (w["variant"] == arm)]


def _arm_expected(ev: Evidence, task: str, arm: str) -> int:
    if arm in ("good", "random"):
        return len(ev.scope.beyond_seeds)
    return int(((ev.swap["task"] == task) & (ev.swap["variant"] == arm)).sum())


def swap_table(ev: Evidence) -> pd.DataFrame:
    """Per section-10 task and arm (good, good heads + random MLPs, random heads + good MLPs, random; the section's
    seeds): mean, sample std, n, and :func:`compare` against good (gap, 95 % interval, verdict), the gap also
    relative to the good mean; ``same_as_good``: swapped masks identical to the good one."""
    rows = []
    for task in ev.scope.beyond_tasks:
        good = _arm_runs(ev, task, "good")
        for arm in SWAP_ARMS:
            runs = _arm_runs(ev, task, arm)
            scores = runs["score"].to_numpy(float)
            row = {"task": task, "arm": arm, "name": ARM_NAMES[arm],
                   "metric": runs["metric"].iloc[0] if len(runs) else None, "expected": _arm_expected(ev, task, arm),
                   "n": len(scores), "mean": scores.mean() if len(scores) else np.nan,
                   "std": scores.std(ddof=1) if len(scores) > 1 else np.nan,
                   "same_as_good": int(runs["same_as_good"].fillna(0).sum()) if "same_as_good" in runs else 0}
            if arm != "good":
                c = _paired(good, runs)
                row.update({f"vs_good_{k}": v for k, v in c.as_dict().items()})
                row.update(_relative(c))
            rows.append(row)
    return pd.DataFrame(rows)


# --- removed shares ---------------------------------------------------------------------------------------------

def _shares(masks: pd.DataFrame) -> pd.DataFrame:
    m = masks.assign(heads=1 - masks["heads_kept"] / masks["heads_total"],
                     mlps=1 - masks["mlps_kept"] / masks["mlps_total"])
    return m.groupby("task", sort=False).agg(seeds=("seed", "count"), heads=("heads", "mean"),
                                             heads_std=("heads", "std"), mlps=("mlps", "mean"),
                                             mlps_std=("mlps", "std"))


def removed_shares(ev: Evidence) -> pd.DataFrame:
    """Per task of the plan: share of heads and of MLPs removed by the s-pruning good masks, mean and sample std
    over seeds, ours (``ours_*``) beside the authors' bert-base masks (``paper_*``)."""
    ours, paper = _shares(ev.masks), _shares(ev.paper.masks) if len(ev.paper.masks) else None
    rows = []
    for task in ev.scope.tasks:
        row = {"task": task}
        for side, table in (("ours", ours), ("paper", paper)):
            have = table is not None and task in table.index
            for col in ("seeds", "heads", "heads_std", "mlps", "mlps_std"):
                row[f"{side}_{col}"] = (table.loc[task, col] if have else (0 if col == "seeds" else np.nan))
        rows.append(row)
    return pd.DataFrame(rows)


def step_sizes(ev: Evidence) -> pd.DataFrame:
    """What one s-search step removes: ``floor(head_step x all heads)`` heads and one MLP, in each model."""
    rows = []
    for name, masks in ((ev.scope.model, ev.masks), (PAPER_MODEL, ev.paper.masks)):
        if not len(masks):
            continue
        heads, mlps = int(masks["heads_total"].iloc[0]), int(masks["mlps_total"].iloc[0])
        step = max(1, math.floor(ev.scope.head_step * heads))
        rows.append({"model": name, "heads": heads, "MLPs": mlps, "heads per step": step,
                     "share of heads per step": step / heads, "MLPs per step": 1, "share of MLPs per step": 1 / mlps})
    return pd.DataFrame(rows)


# --- good minus random, ours and the paper's, on one scale ---------------------------------------------------------

GAP_COLUMNS = ["task", "source", "metric", "n_good", "n_random", "expected", "n", "good", "good_std", "random",
               "random_std", "gap",
               "low", "high", "tau", "verdict", "label", "rel_gap", "rel_low", "rel_high"]


def gaps(ev: Evidence, tasks=None) -> pd.DataFrame:
    """s-pruning, re-fine-tuned: good minus random per task (default: the testable tasks the paper also has),
    three rows each: ``ours`` (:func:`compare`, paired by seed: the rule), ``ours, unpaired`` and
    ``paper, unpaired`` (:func:`compare_unpaired`: the authors published means and stds only). ``rel_*``: the gap
    and its interval over the good mean, so every task and both models sit on one scale (tolerance 0.1)."""
    if tasks is None:
        tasks = [t for t in testable_tasks(ev)[0] if t in PAPER_TASKS]
    s = _done(ev.s)
    paper = ev.paper.scores.set_index(["task", "subnetwork"]) if len(ev.paper.scores) else None
    rows = []
    for task in _glue_sorted(tasks):
        good, rand = (s[(s["task"] == task) & (s["subnetwork"] == sub)] for sub in ("good", "random"))
        g, r = good["score"].to_numpy(float), rand["score"].to_numpy(float)
        metric = good["metric"].iloc[0] if len(good) else None
        common = {"task": task, "metric": metric, "n_good": len(g), "n_random": len(r),
                  "expected": len(ev.scope.seeds), "good": g.mean() if len(g) else np.nan,
                  "good_std": g.std(ddof=1) if len(g) > 1 else np.nan,
                  "random": r.mean() if len(r) else np.nan, "random_std": r.std(ddof=1) if len(r) > 1 else np.nan}
        c = _paired(good, rand)
        rows.append({**common, "source": "ours", **c.as_dict(), **_relative(c)})
        c = compare_unpaired(common["good"], common["good_std"], len(g), common["random"],
                             common["random_std"], len(r))
        rows.append({**common, "source": "ours, unpaired", **c.as_dict(), **_relative(c)})
        if paper is not None and (task, "good") in paper.index and (task, "random") in paper.index:
            pg, pr = paper.loc[(task, "good")], paper.loc[(task, "random")]
            c = compare_unpaired(pg["mean"], pg["std"], int(pg["n"]), pr["mean"], pr["std"], int(pr["n"]))
            rows.append({"task": task, "source": "paper, unpaired", "metric": pg["metric"], "n_good": int(pg["n"]),
                         "n_random": int(pr["n"]), "expected": len(PAPER_SEEDS), "good": pg["mean"],
                         "good_std": pg["std"],
                         "random": pr["mean"], "random_std": pr["std"], **c.as_dict(), **_relative(c)})
    return pd.DataFrame(rows, columns=GAP_COLUMNS)


def gaps_figure(ev: Evidence, table: pd.DataFrame | None = None):
    """The relative gaps (good minus random, over the good mean) with their 95 % intervals, ours and the paper's,
    one row per task; the tolerance (0.1: random more than 10 % below good is "worse") as a dashed line."""
    table = gaps(ev) if table is None else table
    tasks = list(dict.fromkeys(table["task"]))
    if not tasks:
        fig, ax = style.subplots(height=1.6)
        ax = ax[0, 0]
        ax.text(0.5, 0.5, "no testable task yet (see the note below)", ha="center", va="center", fontsize=10)
        ax.set_axis_off()
        return fig
    styles = {"ours": dict(color=OURS_COLOR, marker="o", mfc=OURS_COLOR),
              "ours, unpaired": dict(color=OURS_COLOR, marker="o", mfc="white"),
              "paper, unpaired": dict(color=PAPER_COLOR, marker="s", mfc=PAPER_COLOR)}
    offsets = {"ours": -0.25, "ours, unpaired": 0.0, "paper, unpaired": 0.25}
    fig, ax = style.subplots(height=1.6 + 0.8 * len(tasks))
    ax = ax[0, 0]
    for i, task in enumerate(tasks):
        for _, r in table[table["task"] == task].iterrows():
            y = i + offsets[r["source"]]
            st = styles[r["source"]]
            if np.isfinite(r["rel_gap"]):
                if np.isfinite(r["rel_low"]):
                    ax.plot([r["rel_low"], r["rel_high"]], [y, y], color=st["color"], lw=1.6)
                elif r["source"] == "ours":  # a point estimate alone: say on how little it stands
                    ax.annotate(f"n = {int(r['n'])}, no interval", (r["rel_gap"], y), xytext=(7, 0),
                                textcoords="offset points", va="center", fontsize=9, color="dimgrey")
                ax.plot([r["rel_gap"]], [y], ls="none", marker=st["marker"], color=st["color"], mfc=st["mfc"], ms=7)
            elif r["source"] != "ours, unpaired":
                ax.text(0.01, y, f"{r['source'].split(',')[0]}: random runs {not_yet(r['n_random'], r['expected'])}",
                        va="center", ha="left", fontsize=9, color="dimgrey", transform=ax.get_yaxis_transform())
    ax.axvline(0, color="grey", lw=1)
    ax.axvline(TOLERANCE, color=style.THRESHOLD_COLOR, lw=1.2, ls="--")
    ax.set_yticks(range(len(tasks)), tasks, fontsize=10)
    ax.set_ylim(len(tasks) - 0.5, -0.5)
    ax.set_xlabel("(good - random) / good mean, s-pruning re-fine-tuned (95 % interval)", fontsize=10)
    handles = [Line2D([], [], ls="-", label={"ours": f"ours ({ev.scope.model}), paired by seed",
                                              "ours, unpaired": "ours, unpaired (as the paper's)",
                                              "paper, unpaired": f"paper ({PAPER_MODEL}), unpaired"}[k], **v)
               for k, v in styles.items()]
    handles.append(Line2D([], [], color=style.THRESHOLD_COLOR, lw=1.2, ls="--", label="tolerance: 10 % of good"))
    style.legend_outside(fig, handles, ncol=2, fontsize=10)
    return fig


# --- plain-words conclusions ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Conclusion:
    """One finding: ``topic`` and a short ``summary`` (the page's verdict box), ``detail`` (the numbers).
    ``section`` names the part of the page it concludes (a key of :data:`SECTIONS`); :func:`findings` sets it."""

    topic: str
    summary: str
    detail: str = ""
    section: str = ""

    def text(self, with_detail: bool = True) -> str:
        detail = f" {self.detail}" if with_detail and self.detail else ""
        return f"**{self.topic}**: {self.summary}{detail}"


def _num(x: float, digits: int = 3) -> str:
    return f"{x:.{digits}f}" if np.isfinite(x) else "n/a"


def _interval(low: float, high: float) -> str:
    return f"[{_num(low)}, {_num(high)}]" if np.isfinite(low) else "(no interval: needs 2 paired seeds)"


def _rel(row, prefix: str = "") -> str:
    """'gap/good 0.123 [0.050, 0.196], n = 3'"""
    return f"gap/good {_num(row['rel_gap'])} {_interval(row['rel_low'], row['rel_high'])}, n = {int(row[prefix + 'n'])}"


def _tasks_by_verdict(rows: pd.DataFrame, verdict_col: str = "verdict") -> dict[str, list[str]]:
    return {v: list(rows.loc[rows[verdict_col] == v, "task"]) for v in (ON_PAR, WORSE, INCONCLUSIVE)}


def verdict_counts(rows: pd.DataFrame) -> str:
    """``rows``: comparisons (task, verdict, n), one per task. 'on par on 2 of 3 tasks (CoLA, MRPC), worse on 1 (STS-B), inconclusive on 1 (RTE at 2 seeds)'"""
    by = _tasks_by_verdict(rows)
    parts = [f"on par on {len(by[ON_PAR])} of {len(rows)} task{'s' if len(rows) != 1 else ''}"
             + (f" ({', '.join(by[ON_PAR])})" if by[ON_PAR] else "")]
    if by[WORSE]:
        parts.append(f"worse on {len(by[WORSE])} ({', '.join(by[WORSE])})")
    if by[INCONCLUSIVE]:
        seeds = dict(zip(rows["task"], rows["n"].astype(int)))
        named = [f"{t} at {seeds[t]} seed{'s' if seeds[t] != 1 else ''}" for t in by[INCONCLUSIVE]]
        parts.append(f"inconclusive on {len(named)} ({', '.join(named)})")
    return ", ".join(parts)


def _not_testable(ev: Evidence) -> tuple[set[str], str]:
    """The section-10 tasks that can be judged, and a sentence on the others (empty if none)."""
    ok, why = testable_tasks(ev)
    left = [t for t in ev.scope.beyond_tasks if t in why]
    return set(ok), " ".join(f"{t} is left out: {why[t]}." for t in left)


def _lottery_conclusions(ev: Evidence) -> list[Conclusion]:
    topic = "Heads-only lottery curve"
    n_all, n_done = len(ev.lottery), int((ev.lottery["status"] == "done").sum())
    if not n_all:
        return [Conclusion(topic, "the plan runs none (its beyond_paper section names no task or seed).")]
    if n_done == 0:
        return [Conclusion(topic, f"does random keep up with good at matched shares of heads removed? "
                                  f"{not_yet(0, n_all)}.")]
    ok, left_out = _not_testable(ev)
    comp = lottery_comparisons(ev)
    comp = comp[comp["task"].isin(ok)]
    topic += "" if n_done == n_all else f" ({n_done} of {n_all} runs so far)"
    summary, detail = [], []
    for fraction in ev.scope.fractions:
        rows = comp[(comp["fraction"] == fraction) & (comp["other"] == "random") & (comp["n"] > 0)]
        head = f"{100 * fraction:.0f} %"
        if not len(rows):
            summary.append(f"at {head}, no seed with both a good and a random run yet")
            continue
        summary.append(f"at {head}, {verdict_counts(rows)}")
        detail.append(f"{head} of heads removed: " + ", ".join(f"{r['task']} {_rel(r)}" for _, r in rows.iterrows()))
    if not detail:
        summary = ["no seed has both a good and a random run at any share yet"]
    out = [Conclusion(topic, "random against good at matched shares of heads removed (every MLP kept): "
                      + "; ".join(summary) + "." + (f" {left_out}" if left_out else ""),
                      ("Random's gap to good: " + "; ".join(detail) + ".") if detail else "")]
    bad = comp[(comp["other"] == "bad") & (comp["n"] >= 2)]
    if len(bad):
        worse = bad[bad["verdict"] == WORSE]
        out.append(Conclusion(
            "Importance on the curve", f"bad (the most important heads removed) is worse than good at {len(worse)} "
            f"of {len(bad)} (task, share) points with two or more paired seeds: the full model's importance scores "
            + ("do pick the heads that matter." if len(worse) > len(bad) / 2 else
               "do not clearly pick the heads that matter here.")))
    return out


# (random heads + good MLPs vs good, good heads + random MLPs vs good) -> what carries the gap
CARRIERS = {(WORSE, ON_PAR): "the heads carry the gap", (ON_PAR, WORSE): "the MLPs carry the gap",
            (WORSE, WORSE): "both parts open a gap, each on its own,",
            (ON_PAR, ON_PAR): "neither part alone opens a gap"}
UNCLEAR = "no part clearly carries a gap yet"


def _one_part(part: str, row) -> str | None:
    """What one swap arm tells alone: ``part`` (heads or MLPs) drawn at random while the other part stays good."""
    if row["vs_good_verdict"] == ON_PAR:
        return f"random {part} alone cost nothing (on par with good)"
    if row["vs_good_verdict"] == WORSE:
        return f"random {part} alone open a gap"
    return None


def _carrier(hr, mr) -> str:
    """The swap's reading for one task: which part carries the good-random gap (:data:`CARRIERS`), else what each
    arm tells alone, else :data:`UNCLEAR`."""
    verdicts = (hr["vs_good_verdict"], mr["vs_good_verdict"])
    if verdicts in CARRIERS:
        return CARRIERS[verdicts]
    told = [(part, row, _one_part(part, row)) for part, row in (("heads", hr), ("MLPs", mr)) if row["n"]]
    known = [text for _, _, text in told if text]
    if not known:
        return UNCLEAR
    return ", ".join(known + [f"random {part} alone {row['vs_good_label']}" for part, row, text in told if not text])


def _swap_conclusions(ev: Evidence) -> list[Conclusion]:
    topic = "Component swap"
    expected, done = len(ev.swap), int((ev.swap["status"] == "done").sum())
    if not expected:
        return []
    if done == 0:
        return [Conclusion(topic, f"do heads or MLPs carry the good-random gap? {not_yet(0, expected)}.")]
    table = swap_table(ev)
    ok, left_out = _not_testable(ev)
    topic += "" if done == expected else f" ({done} of {expected} runs so far)"
    summary, detail = {}, []
    for task in [t for t in ev.scope.beyond_tasks if t in ok]:
        t = table[table["task"] == task].set_index("arm")
        hr, mr, rr = (t.loc[a] for a in ("random_heads_good_mlps", "good_heads_random_mlps", "random"))
        if hr["n"] == 0 and mr["n"] == 0:
            summary.setdefault(EMPTY, []).append(task)
            continue
        carrier = _carrier(hr, mr)
        summary.setdefault(carrier, []).append(task)
        same = "".join(f"; in {r['same_as_good']} of {r['n']} seeds {r['name']} is the good mask itself"
                       for r in (mr, hr) if r["same_as_good"])
        full = f"random {rr['vs_good_label']} ({_rel(rr, 'vs_good_')})" if rr["n"] else f"random {EMPTY}"
        detail.append(f"{task}: random heads + good MLPs {hr['vs_good_label']} ({_rel(hr, 'vs_good_')}), good heads "
                      f"+ random MLPs {mr['vs_good_label']} ({_rel(mr, 'vs_good_')}), {full}{same}")
    text = "; ".join(f"{who} on {', '.join(tasks)}" for who, tasks in summary.items()) or "no testable task"
    return [Conclusion(topic, text + "." + (f" {left_out}" if left_out else ""),
                       ("Gaps to good: " + ". ".join(detail) + ".") if detail else "")]


def gap_readings(ev: Evidence, table: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per task with both sides: how our gap and the paper's relate, like for like (both unpaired, relative to
    the good mean).

    ``reading``: ``not yet`` (fewer than two of our random runs), ``undecided`` (both inconclusive), ``agree``
    (the same verdict otherwise), ``spread`` (the verdicts differ, yet the interval of the difference of the two
    relative gaps, ours minus the paper's, holds 0: the effect sizes are compatible, and the width of the
    intervals, the spread of the runs, makes the difference) or ``departure`` (the verdicts differ and that
    interval excludes 0: the effect itself differs, beyond both sides' spread). The difference and its interval
    (``diff``, ``diff_low``, ``diff_high``) come from
    :func:`~lotterylib.read.compare.relative_gap_difference`, both sides unpaired (the paper's runs cannot be
    paired by seed)."""
    table = gaps(ev) if table is None else table
    rows = []
    for task in dict.fromkeys(table["task"]):
        t = table[table["task"] == task].set_index("source")
        if "paper, unpaired" not in t.index:
            continue
        ours, like, paper = t.loc["ours"], t.loc["ours, unpaired"], t.loc["paper, unpaired"]
        width = like["rel_high"] - like["rel_low"]
        row = {"task": task, "ours_verdict": ours["verdict"], "ours_label": ours["label"],
               "like_verdict": like["verdict"], "like_label": like["label"], "paper_verdict": paper["verdict"],
               "paper_label": paper["label"], "ours_rel": like["rel_gap"], "ours_rel_low": like["rel_low"],
               "ours_rel_high": like["rel_high"], "paper_rel": paper["rel_gap"], "paper_rel_low": paper["rel_low"],
               "paper_rel_high": paper["rel_high"], "ours_random_std": like["random_std"],
               "paper_random_std": paper["random_std"],
               "width_ratio": (paper["rel_high"] - paper["rel_low"]) / width if width > 0 else np.nan,
               "n_random": like["n_random"], "expected": like["expected"]}
        row["diff"], row["diff_low"], row["diff_high"] = relative_gap_difference(like, paper)
        if not np.isfinite(like["rel_low"]):
            row["reading"] = "not yet"
        elif like["verdict"] == paper["verdict"] == INCONCLUSIVE:
            row["reading"] = "undecided"
        elif like["verdict"] == paper["verdict"]:
            row["reading"] = "agree"
        elif np.isfinite(row["diff_low"]) and (row["diff_low"] > 0 or row["diff_high"] < 0):
            row["reading"] = "departure"
        else:
            row["reading"] = "spread"
        rows.append(row)
    return pd.DataFrame(rows)


READINGS = {
    "spread": ("Spread, not effect size", "separates our verdict from the paper's on {tasks}: the two gaps may be one "
               "effect (the interval of their difference holds 0); the paper's random runs' std is {ratios} ours."),
    "departure": ("A real departure", "the gap itself differs from the paper's on {tasks}, beyond both sides' spread "
                  "(the interval of their difference excludes 0)."),
    "agree": ("The same verdict as the paper's data", "on {tasks}, compared like for like."),
    "undecided": ("Undecided on both sides", "neither our runs nor the paper's tell on par from worse yet on "
                  "{tasks}."),
}


def _reading_detail(r) -> str:
    partial = f", {r['n_random']} of {r['expected']} random runs" if r["n_random"] < r["expected"] else ""
    d = (f"{r['task']}: gap/good ours {_num(r['ours_rel'])} {_interval(r['ours_rel_low'], r['ours_rel_high'])} "
         f"({r['like_label']} unpaired, {r['ours_label']} paired by seed{partial}), the paper's "
         f"{_num(r['paper_rel'])} {_interval(r['paper_rel_low'], r['paper_rel_high'])} ({r['paper_label']}); "
         f"random runs' std ours {_num(r['ours_random_std'])}, the paper's {_num(r['paper_random_std'])}")
    if np.isfinite(r["width_ratio"]):
        d += f"; the paper's interval is {r['width_ratio']:.1f} times as wide as ours"
    if np.isfinite(r["diff"]):
        d += f"; ours minus the paper's {_num(r['diff'])} {_interval(r['diff_low'], r['diff_high'])}"
    if r["reading"] == "departure" and r["paper_rel"] < 0 < r["ours_rel"]:
        d += "; the paper's random runs scored above its good ones, ours below"
    return d


def _gap_conclusions(ev: Evidence) -> list[Conclusion]:
    topic = "Good minus random, ours beside the paper's"
    table = gaps(ev)
    if not len(table):
        return [Conclusion(topic, "no testable task with both sides yet.")]
    readings = gap_readings(ev, table)
    if not len(readings):
        return [Conclusion(topic, f"the paper's side is missing ({ev.paper.missing}).")]
    missing = readings[readings["reading"] == "not yet"]
    out = []
    if len(missing):
        have, want = int(missing["n_random"].sum()), int(missing["expected"].sum())
        by_label = missing.groupby("paper_label", sort=False)["task"].agg(list)
        paper = "; ".join(f"{label} on {', '.join(tasks)}" for label, tasks in by_label.items())
        out.append(Conclusion(
            topic, f"our s-pruning random re-fine-tunes of {', '.join(missing['task'])}: {not_yet(have, want)}, too "
                   f"few for a gap there yet. The paper's own data, by the same rule: {paper}.",
            "The paper's gaps (over its good mean): " + ", ".join(
                f"{r['task']} {_num(r['paper_rel'])} ({r['paper_label']}; its random runs' std "
                f"{_num(r['paper_random_std'])})" for _, r in missing.iterrows()) + "."))
    for kind, (title, text) in READINGS.items():
        rows = readings[readings["reading"] == kind]
        if len(rows):
            ratios = ", ".join(f"{r['paper_random_std'] / r['ours_random_std']:.1f} times ({r['task']})"
                               if r["ours_random_std"] > 0 else f"above ({r['task']})" for _, r in rows.iterrows())
            out.append(Conclusion(title, text.format(tasks=", ".join(rows["task"]), ratios=ratios),
                                  ". ".join(_reading_detail(r) for _, r in rows.iterrows()) + "."))
    return out


def _removed_conclusions(ev: Evidence) -> list[Conclusion]:
    topic = "Removed shares"
    shares = removed_shares(ev).set_index("task")
    tasks = [t for t in ev.scope.beyond_tasks if t in shares.index]
    ours = shares.loc[tasks]
    if not len(tasks) or not ours["ours_seeds"].sum():
        return [Conclusion(topic, f"{EMPTY} (no s-pruning good masks yet).")]
    text = (f"on {', '.join(tasks)} our s-pruning good masks remove {100 * ours['ours_heads'].mean():.0f} % of the "
            f"heads and {100 * ours['ours_mlps'].mean():.0f} % of the MLPs")
    if ours["paper_seeds"].sum():
        text += (f", the authors' bert-base masks {100 * ours['paper_heads'].mean():.0f} % and "
                 f"{100 * ours['paper_mlps'].mean():.0f} % (mean over seeds and tasks)")
    detail = ""
    steps = {r["model"]: r for r in step_sizes(ev).to_dict("records")}
    if ev.scope.model in steps and PAPER_MODEL in steps:
        a, b = steps[ev.scope.model], steps[PAPER_MODEL]
        ratio = a["share of MLPs per step"] / b["share of MLPs per step"]
        text += (f"; every accepted search step takes {ratio:.1f} times bert-base's share of the MLPs" if ratio > 1
                 else "")
        detail = (f"One search step removes {a['heads per step']} of {a['heads']} heads here "
                  f"({100 * a['share of heads per step']:.1f} %) and {b['heads per step']} of {b['heads']} in "
                  f"bert-base ({100 * b['share of heads per step']:.1f} %), but 1 of {a['MLPs']} MLPs "
                  f"({100 * a['share of MLPs per step']:.1f} %) against 1 of {b['MLPs']} "
                  f"({100 * b['share of MLPs per step']:.1f} %).")
    return [Conclusion(topic, text + ".", detail)]


# the page's parts, in its order, and the function that draws each one's conclusions
SECTIONS = {"lottery": _lottery_conclusions, "swap": _swap_conclusions, "gaps": _gap_conclusions,
            "removed": _removed_conclusions}


def findings(ev: Evidence, section: str | None = None) -> list[Conclusion]:
    """Every conclusion the page draws, in the page's order; only those of one part of the page (a key of
    :data:`SECTIONS`) with ``section``."""
    if section is not None and section not in SECTIONS:
        raise ValueError(f"no section {section!r} on the why-small-model page; the sections are {', '.join(SECTIONS)}")
    return [replace(c, section=name) for name, draw in SECTIONS.items() if section in (None, name)
            for c in draw(ev)]


def conclusions(ev: Evidence) -> list[str]:
    """What the evidence supports and what it does not, in plain words, with the numbers; "not yet computed (k of
    N runs)" wherever runs are missing. Markdown, one statement per item."""
    return [c.text() for c in findings(ev)]


def verdict_box(ev: Evidence) -> str:
    """The conclusions' summaries as a MyST admonition (render the cell's output as MyST: cell metadata
    ``mystnb: {markdown_format: myst}``)."""
    body = "\n".join(f"- {c.text(with_detail=False)}" for c in findings(ev))
    return f"````{{admonition}} Verdict: what the evidence supports today\n:class: important\n\n{body}\n````"


def conclusions_markdown(ev: Evidence) -> str:
    """Every conclusion with its numbers, as a Markdown list."""
    return "\n".join(f"- {line}" for line in conclusions(ev))


# --- the scale the page was built at --------------------------------------------------------------------------------

def _devices(frames) -> str:
    devices = pd.concat([f.loc[f["status"] != "missing", "device"] for f in frames]).fillna("unknown device")
    if not len(devices):
        return ""
    counts = devices.value_counts()
    return " and ".join(f"{d} ({n} run{'s' if n != 1 else ''})" for d, n in counts.items())


def scale_statement(ev: Evidence) -> str:
    """One paragraph: model and structure, the section-10 tasks, seeds and fractions, how many runs exist, and
    which devices they ran on (from their provenance)."""
    sc = ev.scope
    structure = next((s for s in ev.full["structure"] if s), None) if len(ev.full) else None
    shape = (f" ({structure['n_layers']} layers x {structure['n_heads']} heads = "
             f"{structure['n_layers'] * structure['n_heads']} heads, {structure['n_layers']} MLPs)"
             if structure else "")
    counts = run_counts(ev).set_index("experiment")

    def count(name):
        r = counts.loc[name]
        extra = f", {r['recorded without a score']} without a score" if r["recorded without a score"] else ""
        return f"{r['with a score']} of {r['expected']}{extra}"

    where = _devices([ev.lottery, ev.swap])
    where_s = _devices([ev.s])
    return (f"Built from the **{sc.plan}** plan, model `{sc.model}`{shape}. Section 10 runs: tasks "
            f"{', '.join(sc.beyond_tasks) or 'none'}; seeds {', '.join(map(str, sc.beyond_seeds)) or 'none'}; heads "
            f"removed {', '.join(f'{100 * f:.0f} %' for f in sc.fractions)}. Runs with a score: heads-only lottery "
            f"curve {count('heads-only lottery curve')}; component swap {count('component swap')}; s-pruning "
            f"re-fine-tunes (all {len(sc.tasks)} tasks x {len(sc.seeds)} seeds) good "
            f"{count('s-pruning good, re-fine-tuned')}, random {count('s-pruning random, re-fine-tuned')}. "
            + (f"The section 10 runs ran on {where}. " if where else "No section 10 run has been made yet. ")
            + (f"The s-pruning re-fine-tunes ran on {where_s}." if where_s else ""))


def rerun_command(ev: Evidence) -> str:
    """The commands that compute the missing runs this page reads: the section-10 runs alone (the workflow's
    ``beyond_paper`` target, with the fine-tunes and searches they start from), then the rest of the plan's grid
    (the s-pruning re-fine-tunes the gap section compares)."""
    sc = ev.scope
    return (f"snakemake --cores 2 --rerun-incomplete --config plan={sc.plan} -- beyond_paper\n"
            f"make experiments PLAN={sc.plan}")


# --- tables as the page shows them -----------------------------------------------------------------------------------

def _styled(df: pd.DataFrame):
    return (df.style.hide(axis="index")
            .set_properties(**{"text-align": "left", "white-space": "normal"})
            .set_table_styles([{"selector": "th", "props": [("text-align", "left")]}]))


def _cell(mean: float, std: float, n: int, expected: int) -> str:
    if n == 0:
        return not_yet(0, expected)
    spread = f" ± {std:.3f}" if np.isfinite(std) else ""
    return f"{mean:.3f}{spread} (n = {n})"


def _verdict_cell(row, prefix: str = "") -> str:
    n = row[f"{prefix}n"]
    if n == 0:
        return "no paired seeds yet"
    label = row[f"{prefix}label"]
    return f"{_num(row[f'{prefix}gap'])} {_interval(row[f'{prefix}low'], row[f'{prefix}high'])}: {label}"


def run_counts_view(ev: Evidence):
    return _styled(run_counts(ev).replace({"why no score": {"": "-"}}))


def lottery_view(ev: Evidence):
    """Per task and share of heads removed: good, random, bad (mean ± std, n) and random's and bad's gap to good
    (95 % interval, verdict)."""
    summary, comp = lottery_summary(ev), lottery_comparisons(ev)
    per_cell = ev.lottery.groupby(["task", "fraction", "variant"]).size()
    rows = []
    for task in ev.scope.beyond_tasks:
        n_task = int((ev.lottery["task"] == task).sum())
        if not ((ev.lottery["task"] == task) & (ev.lottery["status"] == "done")).any():  # one row says it all
            rows.append({"task": task, "heads removed": ", ".join(f"{100 * f:.0f} %" for f in ev.scope.fractions),
                         **{v: not_yet(0, n_task // len(LOTTERY_VARIANTS)) for v in LOTTERY_VARIANTS},
                         **{f"good - {o} [95 % interval]: verdict": "no runs yet" for o in ("random", "bad")}})
            continue
        for fraction in ev.scope.fractions:
            row = {"task": task, "heads removed": f"{100 * fraction:.0f} %"}
            for variant in LOTTERY_VARIANTS:
                s = summary[(summary["task"] == task) & (summary["fraction"] == fraction)
                            & (summary["variant"] == variant)].iloc[0]
                row[variant] = _cell(s["mean"], s["std"], s["n"], int(per_cell.get((task, fraction, variant), 0)))
            for other in ("random", "bad"):
                c = comp[(comp["task"] == task) & (comp["fraction"] == fraction) & (comp["other"] == other)].iloc[0]
                row[f"good - {other} [95 % interval]: verdict"] = _verdict_cell(c)
            rows.append(row)
    return _styled(pd.DataFrame(rows))


def swap_view(ev: Evidence):
    table = swap_table(ev)
    rows = []
    for _, r in table.iterrows():
        row = {"task": r["task"], "subnetwork": r["name"], "mean ± std (n)": _cell(r["mean"], r["std"], r["n"],
                                                                                   r["expected"])}
        if r["arm"] == "good":
            row["good - this [95 % interval]: verdict"] = "the reference"
            row["gap / good"] = "-"
        else:
            row["good - this [95 % interval]: verdict"] = _verdict_cell(r, "vs_good_")
            row["gap / good"] = _num(r["rel_gap"]) if np.isfinite(r["rel_gap"]) else "no paired seeds yet"
        part = {"good_heads_random_mlps": "MLPs", "random_heads_good_mlps": "heads"}.get(r["arm"])
        row["note"] = (f"the good mask itself in {r['same_as_good']} of {r['n']} seeds (its good mask keeps all or "
                       f"none of the {part}: nothing to draw)" if r["same_as_good"] else "")
        rows.append(row)
    return _styled(pd.DataFrame(rows))


def removed_view(ev: Evidence):
    table = removed_shares(ev)
    rows = []
    for _, r in table.iterrows():
        row = {"task": r["task"]}
        for side, who in (("ours", f"ours ({ev.scope.model})"), ("paper", f"paper ({PAPER_MODEL})")):
            for col, what in (("heads", "heads removed"), ("mlps", "MLPs removed")):
                if r[f"{side}_seeds"] == 0:
                    row[f"{who}: {what}"] = "no masks" if side == "ours" else "task not in the paper's data"
                else:
                    std = r[f"{side}_{col}_std"]
                    row[f"{who}: {what}"] = (f"{100 * r[f'{side}_{col}']:.1f} %"
                                             + (f" ± {100 * std:.1f}" if np.isfinite(std) else "")
                                             + f" ({int(r[f'{side}_seeds'])} seeds)")
        rows.append(row)
    return _styled(pd.DataFrame(rows))


def steps_view(ev: Evidence):
    table = step_sizes(ev)
    for col in ("share of heads per step", "share of MLPs per step"):
        table[col] = [f"{100 * x:.1f} %" for x in table[col]]
    return _styled(table)


def gaps_view(ev: Evidence):
    table = gaps(ev)
    if not len(table):
        return _styled(pd.DataFrame({"task": ["none"], "good - random": ["no testable task yet (see the note below)"]}))
    rows = []
    for _, r in table.iterrows():
        n_text = (f"{r['n']} paired" if r["source"] == "ours" else f"{r['n_good']} good, {r['n_random']} random")
        empty = not_yet(r["n_random"], r["expected"]) if r["n_random"] == 0 else "needs 2 seeds"
        rows.append({"task": r["task"], "runs": r["source"], "metric": r["metric"], "seeds": n_text,
                     "good": _num(r["good"]),
                     "random ± std": (f"{r['random']:.3f} ± {r['random_std']:.3f}" if np.isfinite(r["random_std"])
                                      else _num(r["random"]) if np.isfinite(r["random"]) else empty),
                     "good - random [95 % interval]": (f"{_num(r['gap'])} {_interval(r['low'], r['high'])}"
                                                       if np.isfinite(r["gap"]) else empty),
                     "gap / good [interval / good]": (f"{_num(r['rel_gap'])} {_interval(r['rel_low'], r['rel_high'])}"
                                                      if np.isfinite(r["rel_gap"]) else empty),
                     "verdict": r["label"] if r["n"] else empty})
    return _styled(pd.DataFrame(rows))


def untestable_note(ev: Evidence) -> str:
    """Which tasks the gaps leave out, and why."""
    _, why = testable_tasks(ev)
    gone = {t: w for t, w in why.items()}
    not_paper = [t for t in testable_tasks(ev)[0] if t not in PAPER_TASKS]
    lines = [f"- {t}: {w}." for t, w in gone.items()] + [f"- {t}: not in the paper's data." for t in not_paper]
    if ev.paper.missing:
        lines.append(f"- The paper's side is empty: {ev.paper.missing}")
    return ("Left out of the gaps: \n" + "\n".join(lines)) if lines else "Every task of the plan is in the gaps."
