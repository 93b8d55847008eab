"""The claims scorecard: each claim C1-C10 of the paper, tested with one written rule on the paper's own data
and on ours, on the same tasks.

**Comparisons.** Every "X is on par with Y" and "X beats Y" (C1's "reaches the full model", C2, C3, C4 and the
super-survivors) is judged by the one rule of METHOD.md section 9, :func:`lotterylib.read.compare.compare`: per task,
the runs paired by seed, the gap ``score(reference) - score(other)``, its mean and 95 % t-interval, against the
tolerance ``tau = 0.1 x mean score(reference)``: "on par", "worse" or "inconclusive at n seeds". Ours are paired
by seed. The authors published each cell's mean and standard deviation over their five seeds, not the
per-seed scores, so the paired gap's spread is unknown there: :func:`compare_summary` applies the same tolerance
and verdicts to the Welch interval of the two cells taken as independent
(:func:`lotterylib.read.compare.compare_unpaired`; runs that share a seed usually correlate positively, which would
narrow it). Every page that shows a
comparison (this one, Figure 2, the paper's Figure 2) calls :func:`comparisons`.

**Testable tasks** (METHOD.md section 8). A task is testable on one side when

1. its full model beats the majority baseline beyond its seed spread: the lower end of the 95 % t-interval of
   the full model's mean over seeds (``mean - t(0.975, n - 1) x std / sqrt(n)``, sample std, ``n >= 2``) lies
   above the majority baseline (:func:`testability`), and
2. none of its good re-fine-tunes (m- and s-pruning) is a constant predictor
   (:mod:`lotterylib.read.predictions`: from the dev predictions, or inferred from the metrics of older runs; on
   the paper's side only a cell whose every seed is constant can be seen).

A claim is judged on the tasks testable on **both** sides (the paper's data cover every task of our plans), so
the two columns of the card count the same tasks; the paper's verdict on all the tasks testable in its own
data is added to its evidence. Searches that removed nothing (or were skipped) have no subnetwork: their runs
are left out of every comparison and mean (:func:`lotterylib.read.collect.no_subnetwork_runs`), and a task where a
method has no subnetwork in any seed is not testable for that method's claims.

**Verdicts.** A claim about tasks **holds** when its per-task rule is true on at least two thirds of the testable
tasks (:data:`HOLDS_SHARE`), **does not hold** otherwise, and is **not testable** with fewer than
:data:`MIN_TASKS` testable tasks with the results it needs (a comparison needs two paired seeds).

Per-task rules (the claims' comparisons are in :data:`TESTS`):

- C1: the m-pruned good subnetwork, re-fine-tuned, is on par with the full model.
- C2: m-pruning, re-fine-tuned: random is worse than good, and bad is worse than random.
- C3: s-pruning, re-fine-tuned: random is on par with good.
- C4: re-fine-tuned bad subnetworks are worse than good ones (both methods); the majority baseline is worse than
  s-bad; m-bad is worse than s-bad. Each part is counted on its own; the claim holds when all three hold.
- C5: the m-pruned good subnetwork keeps fewer of the m-prunable weights than the s-pruned one (means).
- C6: at a search step most live heads have low importance: more than half of them score below 0.5
  (normalised as the authors did). Holds when that is true at :data:`HOLDS_SHARE` of all (task, seed, step).
- C7: heads: the early and middle thirds of the layers keep a larger share of heads than the last third; MLPs:
  the middle third keeps more MLPs than the early and the last thirds. Per task; both parts must hold.
- C8: the good s-pruning masks are unstable across seeds: Fleiss' kappa over seeds (heads, as the authors
  computed it) is at most :data:`KAPPA_UNSTABLE` ("fair" agreement or less; the paper printed 0.15-0.32).
- C9: per pair of tasks, the mean number of heads both keep (same seed index) exceeds the 95th percentile of
  a null that re-places each mask's survivors at random.
- C10: attention types from the rules of :mod:`lotterylib.read.pattern_rules`; survival (kept in a seed's good mask) vs
  "heterogeneous", Cochran-Mantel-Haenszel over (task, seed) tables: the claim holds unless survivors are
  significantly (p < 0.05) more often heterogeneous.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from lotterylib.read import analysis
from lotterylib.read import collect
from lotterylib.read import predictions
from lotterylib.read.compare import LEVEL, ON_PAR, WORSE, Comparison, compare, compare_unpaired
from lotterylib.config.plans import Plan
from lotterylib.store import layout as L



class Verdict(StrEnum):
    """A claim's verdict: data, compared by identity (``finding.verdict is HOLDS``); its value is the text the
    pages print."""

    HOLDS = "holds"
    FAILS = "does not hold"
    UNTESTABLE = "not testable at this scale"
    #: The rule lacks results the plan's grid has not computed yet (a comparison claim only): not a finding.
    PENDING = "not yet computed"


HOLDS, FAILS, UNTESTABLE, PENDING = Verdict.HOLDS, Verdict.FAILS, Verdict.UNTESTABLE, Verdict.PENDING
HOLDS_SHARE = 2 / 3
MIN_TASKS = 2
KAPPA_UNSTABLE = 0.40
#: The paper's printed range of Fleiss' kappa (sec. 5.1; lotterylib.report.paper_figures.PAPER_PRINTED["kappa_range"]).
PAPER_KAPPA = (0.15, 0.32)
#: Significance level of the tests shown beside the rules (Cochran's Q, the C10 association).
ALPHA = 0.05
LOW_IMPORTANCE = 0.5

CLAIMS: dict[str, str] = {
    "C1": "m-pruned good subnetworks keep >= 90 % of the full score and, re-fine-tuned, reach the full model",
    "C2": "m-pruning: good > random > bad after re-fine-tuning",
    "C3": "s-pruning: random subnetworks re-fine-tuned are on par with good ones",
    "C4": "bad subnetworks are worse but far from useless; s-pruning's bad beat m-pruning's",
    "C5": "m-pruning compresses more than s-pruning",
    "C6": "most heads have low importance at any pruning iteration",
    "C7": "important heads sit in the early and middle layers, important MLPs in the middle",
    "C8": "good subnetworks are unstable across seeds (Fleiss' kappa 0.15-0.32)",
    "C9": "tasks share more surviving heads than chance",
    "C10": "surviving heads are not more often 'heterogeneous' (potentially meaningful) attention",
}

#: What the paper printed for each claim (its number where it gave one), with where.
PAPER_SAYS: dict[str, str] = {
    "C1": "re-fine-tuned good m-subnetworks reach the full model on 8 of 9 GLUE tasks (sec. 4, Fig. 2b)",
    "C2": "good > random > bad after re-fine-tuning, m-pruning (Fig. 2b)",
    "C3": "random s-subnetworks re-fine-tune about as well as good ones (Fig. 2a)",
    "C4": "bad subnetworks re-fine-tuned stay well above the majority baseline; s-bad beat m-bad (Table 2)",
    "C5": "m-pruning keeps fewer weights than s-pruning on 7 of 9 tasks (Fig. 2, subplot titles)",
    "C6": "most heads have low importance at every pruning iteration (Fig. 3)",
    "C7": "surviving heads in the early and middle layers, MLPs in the middle (Fig. 1)",
    "C8": "Fleiss' kappa 0.15-0.32 across tasks: slight to fair agreement of the seeds (sec. 5.1)",
    "C9": "tasks share more surviving heads than chance (Fig. 5)",
    "C10": "survivors are not more often heterogeneous than other heads (sec. 5.2)",
}

#: Each claim's per-task rule, in words (the page prints this table).
RULES: dict[str, str] = {
    "C1": "re-fine-tuned m-pruned good is on par with the full model (the comparison rule)",
    "C2": "re-fine-tuned m-pruning: random worse than good, and bad worse than random (the comparison rule)",
    "C3": "re-fine-tuned s-pruning: random on par with good (the comparison rule)",
    "C4": "re-fine-tuned bad worse than good (both methods); majority baseline worse than s-bad; m-bad worse than "
          "s-bad (the comparison rule): each on 2/3 of tasks",
    "C5": "good m-pruned subnetwork keeps a smaller share of the m-prunable weights than the good s-pruned one",
    "C6": f"more than half of the live heads score below {LOW_IMPORTANCE} (normalised), per (task, seed, step)",
    "C7": "heads: early and middle thirds of the layers keep more than the last; MLPs: middle more than both others",
    "C8": f"Fleiss' kappa of the good head masks over seeds <= {KAPPA_UNSTABLE} (at most 'fair' agreement)",
    "C9": "per task pair: mean heads kept by both (same seed index) > 95th percentile of a random re-placement null",
    "C10": "survivors are not more often 'heterogeneous' than pruned heads (association test, lotterylib.read.pattern_stats)",
}

# --- cells and the comparisons each claim makes ------------------------------------------------------------

#: A score series: (method, subnetwork, stage); the full model and the majority baseline are series too.
FULL = ("full", "full", "full")
MAJORITY = ("majority", "majority", "majority")


def series_name(key: tuple[str, str, str]) -> str:
    """``("s", "good", "retrained")`` -> ``"s good"``; the full model and majority baseline by name."""
    if key == FULL:
        return "full model"
    if key == MAJORITY:
        return "majority baseline"
    method, sub, stage = key
    return f"{method} {sub}" + (" (pruned)" if stage == "pruned" else "")


@dataclass(frozen=True)
class Check:
    """One comparison a claim makes: ``other`` judged against ``reference``; ``expect``: the verdict the claim
    predicts (None: shown without a claim)."""

    reference: tuple[str, str, str]
    other: tuple[str, str, str]
    expect: str | None

    @property
    def name(self) -> str:
        return f"{series_name(self.other)} vs {series_name(self.reference)}"


def _re(method: str, sub: str) -> tuple[str, str, str]:
    return (method, sub, "retrained")


TESTS: dict[str, tuple[Check, ...]] = {
    "C1": (Check(FULL, _re("m", "good"), ON_PAR),),
    "C2": (Check(_re("m", "good"), _re("m", "random"), WORSE), Check(_re("m", "random"), _re("m", "bad"), WORSE)),
    "C3": (Check(_re("s", "good"), _re("s", "random"), ON_PAR),),
    "C4": (Check(_re("m", "good"), _re("m", "bad"), WORSE), Check(_re("s", "good"), _re("s", "bad"), WORSE),
           Check(_re("s", "bad"), MAJORITY, WORSE), Check(_re("s", "bad"), _re("m", "bad"), WORSE)),
    "super": (Check(_re("super", "good"), _re("super", "random"), None),
              Check(_re("super", "good"), _re("super", "bad"), None)),
}
#: C4's three parts, each a list of indices into TESTS["C4"].
C4_PARTS: dict[str, tuple[int, ...]] = {"bad worse than good (m and s)": (0, 1),
                                        "majority baseline worse than s-bad": (2,),
                                        "m-bad worse than s-bad": (3,)}


def compare_summary(reference_mean: float, reference_std: float, other_mean: float, other_std: float,
                    n: int) -> Comparison:
    """The rule for two cells known only by their mean and sample std over ``n`` seeds (the paper's published
    data): :func:`lotterylib.read.compare.compare_unpaired`, the same tolerance and verdicts on the Welch interval.

    >>> c = compare_summary(0.84, 0.009, 0.70, 0.014, 5)
    >>> c.verdict, round(c.gap, 3), round(c.tau, 3)
    ('worse', 0.14, 0.084)
    """
    return compare_unpaired(reference_mean, reference_std, n, other_mean, other_std, n)


def _series(runs: pd.DataFrame, task: str, key: tuple[str, str, str]) -> pd.Series:
    method, sub, stage = key
    hit = runs[(runs["task"] == task) & (runs["method"] == method) & (runs["subnetwork"] == sub)
               & (runs["stage"] == stage)]
    return hit.set_index("seed")["score"]


def _stats(summary: pd.DataFrame, reference: pd.DataFrame, task: str, key) -> tuple[float, float, int]:
    """(mean, sample std, n seeds) of one series from the summary tables; n = 0 where there is none."""
    ref = reference[reference["task"] == task]
    if key in (FULL, MAJORITY):
        if not len(ref):
            return float("nan"), float("nan"), 0
        r = ref.iloc[0]
        return ((float(r["full"]), float(r["full std"]), int(r["n"])) if key == FULL
                else (float(r["majority"]), 0.0, int(r["n"])))
    cell = _cell(summary, task, *key)
    return (float("nan"), float("nan"), 0) if cell is None else (float(cell["mean"]), float(cell["std"]),
                                                                  int(cell["n"]))


def judge(summary: pd.DataFrame, reference: pd.DataFrame, task: str, test: Check,
          runs: pd.DataFrame | None = None) -> Comparison:
    """One test on one task: paired by seed from ``runs`` where given (ours), else from the summaries (the
    paper's published means and stds, :func:`compare_summary`)."""
    if runs is not None:
        return compare(_series(runs, task, test.reference), _series(runs, task, test.other))
    (ma, sa, na), (mb, sb, nb) = (_stats(summary, reference, task, k) for k in (test.reference, test.other))
    return compare_summary(ma, sa, mb, sb, min(na, nb))


def comparisons(summary: pd.DataFrame, reference: pd.DataFrame, claims=("C1", "C2", "C3", "C4", "super"),
                runs: pd.DataFrame | None = None, tasks=None) -> pd.DataFrame:
    """THE comparison table of a side: one row per (claim, test, task) with the :class:`Comparison` fields
    (``n``, means, ``gap``, ``low``, ``high``, ``tau``, ``verdict``, ``label``), the ``expected`` verdict and
    ``paired`` (True: by seed; False: from published means and stds).

    ``runs`` (per seed: task, seed, method, subnetwork, stage, score; the full model and majority baseline as
    the series :data:`FULL` and :data:`MAJORITY`) makes every comparison paired by seed; without it the
    summaries are used. The scorecard, Figure 2 and the paper's Figure 2 page all read their verdicts here.
    """
    tasks = list(reference["task"]) if tasks is None else list(tasks)
    rows = []
    for claim in claims:
        for i, test in enumerate(TESTS[claim]):
            for task in tasks:
                c = judge(summary, reference, task, test, runs)
                rows.append({"claim": claim, "test": i, "comparison": test.name, "task": task,
                             "reference": series_name(test.reference), "other": series_name(test.other),
                             "expected": test.expect or "", "paired": runs is not None, **c.as_dict()})
    columns = ["claim", "test", "comparison", "task", "reference", "other", "expected", "paired", "n",
               "reference_mean", "other_mean", "gap", "low", "high", "tau", "verdict", "label"]
    return pd.DataFrame(rows, columns=columns)


# --- testability -------------------------------------------------------------------------------------------

def beats_majority(full_mean: float, full_std: float, n: int, majority: float,
                   level: float = LEVEL) -> tuple[float, bool]:
    """(lower end of the ``level`` t-interval of the full model's mean, whether it lies above ``majority``).

    >>> low, ok = beats_majority(0.557, 0.014, 5, 0.527)
    >>> round(low, 3), ok
    (0.54, True)
    >>> beats_majority(0.28, 0.05, 5, 0.56)[1], beats_majority(0.9, float("nan"), 1, 0.5)[1]
    (False, False)
    """
    if n < 2 or not np.isfinite(full_std) or not np.isfinite(full_mean):
        return float("nan"), False
    low = full_mean - float(stats.t.ppf(0.5 + level / 2, n - 1)) * full_std / math.sqrt(n)
    return low, bool(low > majority)


def testability(reference: pd.DataFrame, constant: dict[str, str] | None = None) -> pd.DataFrame:
    """Per task: whether it is testable (module docstring) and why not.

    ``reference``: task, full, full std, majority, n; ``constant``: per task, its constant good re-fine-tunes in
    words (:func:`lotterylib.read.predictions.constant_good`, :func:`lotterylib.read.predictions.paper_constant`).
    Columns: task, n, full, full std, majority, lower end, beats majority, constant good re-fine-tunes,
    testable, why.
    """
    constant = constant or {}
    rows = []
    for _, r in reference.iterrows():
        n = int(r["n"])
        low, beats = beats_majority(float(r["full"]), float(r["full std"]), n, float(r["majority"]))
        why = []
        if n < 2:
            why.append(f"{n} seed{'s' if n != 1 else ''} of the full model (2 needed for its spread)")
        elif not beats:
            why.append(f"full model does not beat the majority baseline beyond its seed spread (95 % interval's "
                       f"lower end {low:.3f} <= majority {r['majority']:.3f})")
        if r["task"] in constant:
            why.append(f"constant good re-fine-tunes: {constant[r['task']]}")
        rows.append({"task": r["task"], "n": n, "full": r["full"], "full std": r["full std"],
                     "majority": r["majority"], "lower end": low, "beats majority": beats,
                     "constant good re-fine-tunes": constant.get(r["task"], ""), "testable": not why,
                     "why": "; ".join(why)})
    return pd.DataFrame(rows, columns=["task", "n", "full", "full std", "majority", "lower end", "beats majority",
                                       "constant good re-fine-tunes", "testable", "why"])


def testable_tasks(reference: pd.DataFrame, constant: dict[str, str] | None = None) -> list[str]:
    """Tasks whose full model beats the majority baseline beyond its seed spread and whose good re-fine-tunes
    are not constant predictors (:func:`testability`)."""
    t = testability(reference, constant)
    return list(t.loc[t["testable"], "task"])


# --- verdicts from per-task outcomes -----------------------------------------------------------------------

@dataclass
class Finding:
    """The outcome of one rule on one side (the paper's data or ours)."""

    verdict: Verdict
    evidence: str  # the numbers, in words
    table: pd.DataFrame = field(default_factory=pd.DataFrame)  # the per-task (or per-pair) detail
    extra: dict = field(default_factory=dict)  # secondary numbers the pages show (lotterylib.report.statistics)

    def as_dict(self) -> dict:
        return {"verdict": str(self.verdict), "evidence": self.evidence}


def _share_verdict(ok: pd.Series, what: str, unit: str = "tasks", why_not: dict | None = None) -> tuple[str, str]:
    """Verdict and sentence from a per-task boolean series (NaN = not testable there). ``why_not``: per task
    where the rule is false, a short reason (shown instead of the bare list)."""
    ok = ok.dropna().astype(bool)
    n, k = len(ok), int(ok.sum())
    if n < MIN_TASKS:
        noun = unit if n != 1 else unit.rstrip("s")
        return UNTESTABLE, f"{n} testable {noun} with the results this rule needs ({MIN_TASKS} needed)"
    verdict = HOLDS if k >= math.ceil(HOLDS_SHARE * n - 1e-9) else FAILS
    if k == n or k == 0 and not why_not:
        return verdict, f"{what} on {k} of {n} {unit}"
    if why_not:
        failed = ok.index[~ok]
        return verdict, (f"{what} on {k} of {n} {unit}; not on "
                         + ", ".join(f"{t} ({why_not.get(t, 'no')})" for t in failed))
    listed, word = (ok.index[~ok], "not on") if k >= n / 2 else (ok.index[ok], "on")
    return verdict, f"{what} on {k} of {n} {unit} ({word} {', '.join(listed.astype(str))})"


# --- the tables -------------------------------------------------------------------------------------------

def our_runs(plan: Plan | str) -> pd.DataFrame:
    """Per seed: every re-fine-tuned and pruned subnetwork score (no-op searches left out), the full model
    (:data:`FULL`) and the majority baseline (:data:`MAJORITY`): task, seed, method, subnetwork, stage, score,
    weights_kept_share."""
    scores = collect.subnetwork_scores(plan, include_super=True)
    full = collect.full_scores(plan)
    cols = ["task", "seed", "method", "subnetwork", "stage", "score", "weights_kept_share"]
    parts = [scores[cols]] if len(scores) else []
    if len(full):
        for key, value in ((FULL, "score"), (MAJORITY, "majority")):
            parts.append(full.assign(method=key[0], subnetwork=key[1], stage=key[2], score=full[value],
                                     weights_kept_share=np.nan)[cols])
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=cols)


def summarize_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per (task, method, subnetwork, stage): ``mean``, ``std`` (sample), ``n`` (seeds), ``size``."""
    cells = runs[~runs["method"].isin([FULL[0], MAJORITY[0]])] if len(runs) else runs
    if not len(cells):
        return pd.DataFrame(columns=["task", "method", "subnetwork", "stage", "mean", "std", "n", "size"])
    if "weights_kept_share" not in cells:
        cells = cells.assign(weights_kept_share=np.nan)
    return cells.groupby(["task", "method", "subnetwork", "stage"], sort=False).agg(
        mean=("score", "mean"), std=("score", "std"), n=("score", "count"),
        size=("weights_kept_share", "mean")).reset_index()


def our_summary(plan: Plan | str) -> pd.DataFrame:
    return summarize_runs(our_runs(plan))


def our_reference(plan: Plan | str) -> pd.DataFrame:
    full = collect.full_scores(plan)
    if not len(full):
        return pd.DataFrame(columns=["task", "metric", "full", "full std", "majority", "n"])
    return full.groupby("task", sort=False).agg(
        metric=("metric", "first"), full=("score", "mean"), **{"full std": ("score", "std")},
        majority=("majority", "mean"), n=("seed", "count")).reset_index()


def paper_summary() -> pd.DataFrame:
    """The published cells of Figure 2 and of the super-survivors: task, method, subnetwork, stage, mean, std
    (sample), n (5), size (unknown)."""
    from lotterylib.report.paper_figures import fig2_scores, super_scores

    s = pd.concat([fig2_scores(), super_scores()], ignore_index=True)
    return s.assign(n=5, size=np.nan)[["task", "method", "subnetwork", "stage", "mean", "std", "n", "size"]]


def paper_reference() -> pd.DataFrame:
    from lotterylib.report.paper_figures import fig2_reference

    return fig2_reference().assign(n=5)


def _cell(summary: pd.DataFrame, task: str, method: str, sub: str, stage: str) -> pd.Series | None:
    hit = summary[(summary["task"] == task) & (summary["method"] == method) & (summary["subnetwork"] == sub)
                  & (summary["stage"] == stage)]
    return hit.iloc[0] if len(hit) else None


def _pruned(summary: pd.DataFrame, task: str, method: str) -> bool:
    """Whether the good subnetwork of ``method`` removed anything on ``task`` (unknown size: assumed so). A search
    whose first step already fails keeps the full model: its good, random and bad "subnetworks" are all the full
    model, and no claim about subnetworks can be tested on that task."""
    cell = _cell(summary, task, method, "good", "pruned")
    return cell is None or not np.isfinite(cell["size"]) or cell["size"] < 1 - 1e-9


def _gate(summary, reference, methods, testable) -> dict[str, str]:
    """Per task of ``reference``: why it is not testable for a claim about ``methods`` ('' where it is)."""
    known = testability(reference).set_index("task")["why"].to_dict()
    out = {}
    for task in reference["task"]:
        if testable is None:
            why = known.get(task, "")
        else:
            why = "" if task in testable else "not testable on both sides (see the exclusions)"
        unpruned = [m for m in methods if not _pruned(summary, task, m)]
        if unpruned and not why:
            why = f"{'/'.join(unpruned)}-pruning removed nothing (its first step failed the 90 % rule)"
        out[task] = why
    return out


def _per_task(summary, reference, rule, methods: tuple[str, ...] = (), testable=None) -> pd.DataFrame:
    rows = []
    gate = _gate(summary, reference, methods, testable)
    for _, ref in reference.iterrows():
        row = {"task": ref["task"], "testable": not gate[ref["task"]]}
        if gate[ref["task"]]:
            row["note"] = gate[ref["task"]]
        row.update(rule(summary, ref))
        if not row["testable"]:
            row["ok"] = np.nan
        rows.append(row)
    return pd.DataFrame(rows)


def _tested(claim: str, summary, reference, runs, testable, methods) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The claim's comparisons on every task, and one row per task: testable, note, ok (all tests as the claim
    expects; NaN where not testable or where a test has fewer than two paired seeds)."""
    table = comparisons(summary, reference, (claim,), runs)
    gate = _gate(summary, reference, methods, testable)
    rows = []
    for task in reference["task"]:
        sub = table[table["task"] == task]
        row = {"task": task, "testable": not gate[task], "note": gate[task]}
        if not gate[task] and (sub["n"] < 2).any():
            short = sub[sub["n"] < 2]
            row["note"] = "; ".join(f"{c}: {n} paired seed{'s' if n != 1 else ''} (2 needed)"
                                    for c, n in zip(short["comparison"], short["n"]))
        row["ok"] = (np.nan if row["note"] else bool((sub["verdict"] == sub["expected"]).all()))
        rows.append(row)
    per_task = pd.DataFrame(rows, columns=["task", "testable", "note", "ok"])
    table = table.merge(per_task, on="task", how="left")
    return table, per_task


def _outcomes(table: pd.DataFrame, tests: tuple[int, ...] | None = None) -> dict[str, str]:
    """Per task, the verdicts that differ from the expected ones, in words ('random vs good: on par')."""
    sub = table if tests is None else table[table["test"].isin(tests)]
    off = sub[sub["verdict"] != sub["expected"]]
    return {task: "; ".join(f"{c}: {lab}" for c, lab in zip(g["comparison"], g["label"]))
            for task, g in off.groupby("task", sort=False)}


def _waiting(table: pd.DataFrame) -> str:
    """What an untestable comparison claim still lacks: the comparisons with fewer than two paired seeds on the
    tasks that are testable."""
    short = table[table["testable"] & (table["n"] < 2)]
    return (f"; fewer than two paired seeds yet for {', '.join(dict.fromkeys(short['comparison']))}"
            if len(short) else "")


def _compared(claim: str, what: str, summary, reference, runs, testable, methods) -> Finding:
    table, per_task = _tested(claim, summary, reference, runs, testable, methods)
    verdict, text = _share_verdict(per_task.set_index("task")["ok"], what, why_not=_outcomes(table))
    return Finding(verdict, text + (_waiting(table) if verdict == UNTESTABLE else ""), table)


# --- C1-C5: scores ------------------------------------------------------------------------------------------

def c1(summary: pd.DataFrame, reference: pd.DataFrame, runs: pd.DataFrame | None = None,
       testable: list[str] | None = None) -> Finding:
    """Re-fine-tuned m-good on par with the full model; the table adds the pruned good's share of the full
    score (>= 90 % by the search's construction)."""
    f = _compared("C1", "re-fine-tuned good subnetworks on par with the full model", summary, reference, runs,
                  testable, ("m",))
    share = {t: (c["mean"] / r) if c is not None else np.nan
             for t, r in zip(reference["task"], reference["full"])
             for c in [_cell(summary, t, "m", "good", "pruned")]}
    f.table["pruned good / full"] = f.table["task"].map(share)
    return f


def c2(summary, reference, runs=None, testable=None) -> Finding:
    return _compared("C2", "random worse than good and bad worse than random", summary, reference, runs, testable,
                     ("m",))


def c3(summary, reference, runs=None, testable=None) -> Finding:
    return _compared("C3", "random on par with good", summary, reference, runs, testable, ("s",))


def c4(summary, reference, runs=None, testable=None) -> Finding:
    table, per_task = _tested("C4", summary, reference, runs, testable, ("m", "s"))
    results = {}
    for part, tests in C4_PARTS.items():
        sub = table[table["test"].isin(tests)]
        ok = sub.groupby("task", sort=False).apply(
            lambda g: bool((g["verdict"] == g["expected"]).all()), include_groups=False)
        ok = ok.where(per_task.set_index("task")["ok"].notna().reindex(ok.index))
        results[part] = _share_verdict(ok, part, why_not=_outcomes(sub))
    if any(v == UNTESTABLE for v, _ in results.values()):
        return Finding(UNTESTABLE, next(iter(results.values()))[1] + _waiting(table), table)
    verdict = HOLDS if all(v == HOLDS for v, _ in results.values()) else FAILS
    return Finding(verdict, "; ".join(text for _, text in results.values()), table)


def c5(summary: pd.DataFrame, reference: pd.DataFrame, runs=None, testable=None) -> Finding:
    def rule(s, ref):
        m, st = (_cell(s, ref["task"], meth, "good", "pruned") for meth in ("m", "s"))
        if m is None or st is None or not (np.isfinite(m["size"]) and np.isfinite(st["size"])):
            return {"ok": np.nan}
        return {"m kept": m["size"], "s kept": st["size"], "m seeds": int(m["n"]), "s seeds": int(st["n"]),
                "ok": bool(m["size"] < st["size"])}

    t = _per_task(summary, reference, rule, methods=("m", "s"), testable=testable)
    verdict, text = _share_verdict(t.set_index("task")["ok"], "m-pruning keeps fewer prunable weights")
    return Finding(verdict, text, t)


# --- C6-C9: masks and importance ------------------------------------------------------------------------------

def c6(importance: pd.DataFrame) -> Finding:
    """``importance``: rows of (task, seed, step, kind, score), as :func:`lotterylib.read.collect.importance_scores`."""
    heads = importance[importance["kind"] == "head"] if len(importance) else importance
    if not len(heads):
        return Finding(UNTESTABLE, "no s-pruning traces yet")
    per_step = heads.groupby(["task", "seed", "step"])["score"].apply(
        lambda x: float((x < LOW_IMPORTANCE).mean())).rename("share below 0.5").reset_index()
    per_step["ok"] = per_step["share below 0.5"] > 0.5
    k, n = int(per_step["ok"].sum()), len(per_step)
    verdict = HOLDS if k >= math.ceil(HOLDS_SHARE * n - 1e-9) else FAILS
    mlps = importance[importance["kind"] == "mlp"]
    extra = {"pooled head share": float((heads["score"] < LOW_IMPORTANCE).mean()),
             "median head share": float(per_step["share below 0.5"].median()),
             "pooled MLP share": float((mlps["score"] < LOW_IMPORTANCE).mean()) if len(mlps) else float("nan"),
             "evaluations": n, "tasks": tuple(dict.fromkeys(heads["task"]))}
    return Finding(verdict, f"most live heads score below {LOW_IMPORTANCE} at {k} of {n} (task, seed, step); "
                            f"pooled over them, {extra['pooled head share']:.0%} of the head scores are below it "
                            f"(median share per step {extra['median head share']:.0%})", per_step, extra)


def c7(masks: dict, testable: list[str] | None = None) -> Finding:
    """``masks``: {task: {"head_mask": (S, L, H), "mlp_mask": (S, L)}}."""
    rows = []
    for task, m in masks.items():
        if testable is not None and task not in testable:
            continue
        heads = analysis.share_per_layer(m["head_mask"])
        mlps = np.asarray(m["mlp_mask"], dtype=float).mean(0)
        depth = analysis.layer_groups(len(heads))
        h = {d: float(heads[depth == d].mean()) for d in ("early", "middle", "late")}
        p = {d: float(mlps[depth == d].mean()) for d in ("early", "middle", "late")}
        rows.append({"task": task, **{f"heads {d}": v for d, v in h.items()}, **{f"MLPs {d}": v for d, v in p.items()},
                     "heads early/middle > late": bool(min(h["early"], h["middle"]) > h["late"]),
                     "MLPs middle > early, late": bool(p["middle"] > max(p["early"], p["late"]))})
    t = pd.DataFrame(rows)
    if not len(t):
        return Finding(UNTESTABLE, "no s-pruning masks yet", t)
    vh, th = _share_verdict(t.set_index("task")["heads early/middle > late"], "heads: early and middle > late")
    vm, tm = _share_verdict(t.set_index("task")["MLPs middle > early, late"], "MLPs: middle > early and late")
    if UNTESTABLE in (vh, vm):
        return Finding(UNTESTABLE, th, t)
    return Finding(HOLDS if vh == vm == HOLDS else FAILS, f"{th}; {tm}", t)


def c8(masks: dict, testable: list[str] | None = None) -> Finding:
    rows = []
    for task, m in masks.items():
        heads = np.asarray(m["head_mask"])
        if (testable is not None and task not in testable) or len(heads) < 2:
            continue
        q = analysis.cochrans_q_over_seeds(heads)
        kappa = analysis.fleiss_kappa_over_seeds(heads)
        rows.append({"task": task, "seeds": len(heads), "kappa": kappa, "Cochran's Q": q.statistic, "p": q.pvalue,
                     "ok": bool(np.isfinite(kappa) and kappa <= KAPPA_UNSTABLE)})
    t = pd.DataFrame(rows)
    if not len(t):
        return Finding(UNTESTABLE, "needs the masks of at least two seeds per task", t)
    verdict, text = _share_verdict(t.set_index("task")["ok"], f"kappa <= {KAPPA_UNSTABLE}")
    lo, hi = PAPER_KAPPA
    extra = {"kappa min": float(t["kappa"].min()), "kappa max": float(t["kappa"].max()),
             "inside paper's range": int(((t["kappa"] >= lo) & (t["kappa"] <= hi)).sum()),
             "Cochran's Q rejects": int((t["p"] < ALPHA).sum()), "tasks": tuple(t["task"])}
    return Finding(verdict, f"{text}; kappa {t['kappa'].min():.2f} to {t['kappa'].max():.2f} (heads)", t, extra)


def c9(masks: dict, testable: list[str] | None = None, n_perm: int = 1000) -> Finding:
    heads = {t: np.asarray(m["head_mask"]) for t, m in masks.items() if testable is None or t in testable}
    if len(heads) < 2:
        return Finding(UNTESTABLE, f"{len(heads)} task(s) with s-pruning masks (two needed)")
    n = min(len(h) for h in heads.values())
    heads = {t: h[:n] for t, h in heads.items()}
    mean, _ = analysis.overlap_matrix(heads, kind="count")
    null_mean, null_p95 = analysis.overlap_null_matrix(heads, n_perm=n_perm, seed=0, kind="count")
    tasks = list(heads)
    rows = [{"pair": f"{a} / {b}", "observed": mean.loc[a, b], "chance mean": null_mean.loc[a, b],
             "chance 95th pct": null_p95.loc[a, b], "ok": bool(mean.loc[a, b] > null_p95.loc[a, b])}
            for i, a in enumerate(tasks) for b in tasks[i + 1:]]
    t = pd.DataFrame(rows)
    verdict, text = _share_verdict(t.set_index("pair")["ok"], "overlap above the chance 95th percentile",
                                   unit="task pairs")
    return Finding(verdict, f"{text} ({n} seed index{'es' if n > 1 else ''})", t,
                   {"tasks": tuple(tasks), "seed indices": n, "n_perm": n_perm})


def c10(plan: Plan | str) -> Finding:
    """Survival vs 'heterogeneous' attention: :func:`lotterylib.read.pattern_stats.c10` (CMH test over seeds, pooled)."""
    from lotterylib.read import pattern_stats

    table = pattern_stats.c10(plan)
    summary = pattern_stats.pooled_summary(table, ALPHA)
    if summary["verdict"] is pattern_stats.NOT_TESTABLE:
        return Finding(UNTESTABLE, summary.get("note") or "no run has attention statistics and a mask yet", table)
    verdict = FAILS if summary["verdict"] is pattern_stats.MORE_HETEROGENEOUS else HOLDS
    share = lambda x: "n/a" if not np.isfinite(x) else f"{x:.0%}"  # noqa: E731
    evidence = (f"heterogeneous: {share(summary['het_share_survivors'])} of {summary['survivors']} surviving vs "
                f"{share(summary['het_share_pruned'])} of {summary['pruned']} pruned heads "
                f"({summary['runs']} run{'s' if summary['runs'] != 1 else ''}); "
                f"Mantel-Haenszel odds ratio {summary['odds_ratio']:.2f}, "
                f"CMH {p_phrase(summary['p_value']) if np.isfinite(summary['p_value']) else 'p n/a'}: {summary['verdict']}")
    tasks = (tuple(t for t, h in zip(table["task"], table["heads"]) if t != "pooled" and h)
             if {"task", "heads"} <= set(table.columns) else ())
    return Finding(verdict, evidence, table, {"tasks": tasks, "p": summary["p_value"],
                                              "odds ratio": summary["odds_ratio"]})


def paper_c10() -> Finding:
    return Finding(HOLDS, "reported (sec. 5.2): survivors are not more often heterogeneous; the CNN that typed the "
                          "maps and its ~400 labelled maps were not published, so the rule cannot be re-run on it",
                   extra={"printed": True})


# --- the whole card -----------------------------------------------------------------------------------------

def _paper_masks() -> dict:
    from lotterylib.report.paper_figures import paper_masks

    return paper_masks()


def paper_importance(masks: dict) -> pd.DataFrame:
    """The published importance of the final pruning iteration, for the heads that survived it, in the layout
    of :func:`lotterylib.read.collect.importance_scores` (step "final")."""
    rows = []
    for task, m in masks.items():
        if m.get("head_importance") is None:
            continue
        for seed, scores, keep in zip(m["seeds"], m["head_importance"], m["head_mask"]):
            rows += [{"task": task, "seed": seed, "step": "final", "kind": "head", "score": float(v)}
                     for v in np.asarray(scores)[np.asarray(keep) > 0]]
    return pd.DataFrame(rows, columns=["task", "seed", "step", "kind", "score"])


def paper_c5() -> Finding:
    """The paper published no m-pruning masks: its C5 evidence is the count it printed."""
    from lotterylib.report.paper_figures import PAPER_PRINTED

    k, n = PAPER_PRINTED["c5_tasks_m_smaller"]["value"]
    return Finding(HOLDS if k >= math.ceil(HOLDS_SHARE * n) else FAILS,
                   f"printed: m-pruning keeps fewer weights on {k} of {n} tasks (m-pruning masks were not published)",
                   extra={"printed": True})


def _claims(summary, reference, runs, tasks, masks, importance, n_perm) -> dict[str, Finding]:
    """C1-C9 on one side, on ``tasks``."""
    return {"C1": c1(summary, reference, runs, tasks), "C2": c2(summary, reference, runs, tasks),
            "C3": c3(summary, reference, runs, tasks), "C4": c4(summary, reference, runs, tasks),
            "C5": c5(summary, reference, runs, tasks),
            "C6": c6(importance[importance["task"].isin(tasks)] if len(importance) else importance),
            "C7": c7(masks, tasks), "C8": c8(masks, tasks), "C9": c9(masks, tasks, n_perm=n_perm)}


@dataclass
class Side:
    """One side's score data. ``runs``: per seed (ours; the comparisons are paired by seed), None for the
    paper (published means and stds only); ``testability``: :func:`testability` of its tasks."""

    summary: pd.DataFrame
    reference: pd.DataFrame
    runs: pd.DataFrame | None
    testability: pd.DataFrame

    @property
    def testable(self) -> list[str]:
        return list(self.testability.loc[self.testability["testable"], "task"])


def sides(plan: Plan | str, with_paper: bool | None = True) -> dict[str, Side]:
    """``{"ours": Side, "paper": Side}``; ``with_paper=None``: the paper's side only where its data is found."""
    from lotterylib.read.paper import PaperDataNotFound

    runs = our_runs(plan)
    reference = our_reference(plan)
    constant = predictions.constant_good(predictions.run_constancy(plan))
    out = {"ours": Side(summarize_runs(runs), reference, runs, testability(reference, constant))}
    if with_paper or with_paper is None:
        try:
            ps, pr = paper_summary(), paper_reference()
        except PaperDataNotFound:
            if with_paper:
                raise
            return out
        out["paper"] = Side(ps, pr, None, testability(pr, predictions.paper_constant(ps, pr)))
    return out


def common_tasks(data: dict[str, Side]) -> list[str]:
    """Tasks testable on every side (our order)."""
    tasks = data["ours"].testable
    return [t for t in tasks if all(t in side.testable for side in data.values())]


def both_sides(plan: Plan | str, claims=("C1", "C2", "C3", "C4", "super"),
               with_paper: bool | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(comparisons of every side, testability of every side), each with a ``side`` column: what a page shows
    with :func:`side_by_side`. The paper's side is left out where its data is not found (``with_paper=None``)."""
    data = sides(plan, with_paper)
    comp = [comparisons(d.summary, d.reference, claims, d.runs).assign(side=name) for name, d in data.items()]
    test = [d.testability.assign(side=name) for name, d in data.items()]
    return pd.concat(comp, ignore_index=True), pd.concat(test, ignore_index=True)


@dataclass
class Scorecard:
    """Everything the scorecard page shows, computed once.

    ``findings``: {claim: {"ours": Finding, "paper": Finding}}, on the tasks testable on both sides;
    ``paper_all``: {claim: Finding} of the paper's data on every task testable in it; ``comparisons``: the
    comparison tables of both sides (``side`` column); ``testability``: per side and task; ``tasks``: the tasks
    judged on both sides; ``no_subnetwork``: our searches without a subnetwork; ``constant``: our
    constant-predictor counts (task x variant); ``constant_runs``: per run; ``super_sizes``: our super-survivor
    masks' sizes.
    """

    findings: dict
    paper_all: dict
    comparisons: pd.DataFrame
    testability: pd.DataFrame
    tasks: list
    no_subnetwork: pd.DataFrame
    constant: pd.DataFrame
    constant_runs: pd.DataFrame
    super_sizes: pd.DataFrame


def expected_retrains(plan: Plan | str, claim: str, tasks, nothing: pd.DataFrame | None = None) -> tuple[int, int]:
    """(on file, expected): the re-fine-tunes comparison claim ``claim`` compares (:data:`TESTS`) on ``tasks`` over
    the plan's seeds, searches without a subnetwork left out (they have no subnetwork to re-fine-tune).
    ``nothing``: :func:`lotterylib.read.collect.no_subnetwork_runs` of the plan, when already read."""
    plan = Plan.of(plan)
    if nothing is None:
        nothing = collect.no_subnetwork_runs(plan)
    skip = {(r.task, int(r.seed), r.method) for r in nothing.itertuples()}
    arms = {arm for check in TESTS[claim] for arm in (check.reference, check.other)
            if isinstance(arm, tuple) and arm[0] in ("m", "s")}
    on_file = expected = 0
    for task in tasks:
        for seed in plan.seeds:
            for method, sub, _ in arms:
                if (task, int(seed), method) in skip:
                    continue
                expected += 1
                on_file += L.retrain_file(plan.name, task, seed, method, sub).exists()
    return on_file, expected


def _pending(plan: Plan | str, claim: str, finding: Finding, tasks, nothing: pd.DataFrame | None = None) -> Finding:
    """A comparison claim is judged on the plan's whole grid: while the grid has not computed every re-fine-tune it
    compares on the judged tasks, its verdict is "not yet computed", whatever the runs on file suggest so far (a
    verdict at 2 of 5 seeds is not the predeclared test). The evidence says how many runs are on file and what
    they show so far."""
    if not tasks:
        return finding
    plan = Plan.of(plan)
    on_file, expected = expected_retrains(plan, claim, tasks, nothing)
    if on_file >= expected:
        return finding
    return Finding(PENDING, f"{on_file} of the {expected} re-fine-tunes it compares are on file "
                            f"(`make experiments PLAN={plan.name}` computes the rest); so far: {finding.evidence}",
                   finding.table, finding.extra)


def build(plan: Plan | str, n_perm: int = 1000, with_paper: bool = True) -> Scorecard:
    """The scorecard of ``plan``: both sides judged on the tasks testable on both (module docstring)."""
    plan = Plan.of(plan)
    data = sides(plan, with_paper)
    tasks = common_tasks(data)
    ours = data["ours"]
    masks = collect.s_masks(plan)
    found = _claims(ours.summary, ours.reference, ours.runs, tasks, masks, collect.importance_scores(plan), n_perm)
    found["C10"] = c10(plan)
    nothing = collect.no_subnetwork_runs(plan)
    for claim in ("C1", "C2", "C3", "C4"):
        found[claim] = _pending(plan, claim, found[claim], tasks, nothing)
    out = {k: {"ours": v} for k, v in found.items()}
    paper_all = {}
    if "paper" in data:
        p = data["paper"]
        pm = _paper_masks()
        importance = paper_importance(pm)
        paper = _claims(p.summary, p.reference, None, tasks, pm, importance, n_perm)
        paper_all = _claims(p.summary, p.reference, None, p.testable, pm, importance, n_perm)
        paper["C5"] = paper_all["C5"] = paper_c5()
        paper["C10"] = paper_all["C10"] = paper_c10()
        for k, v in paper.items():
            out[k]["paper"] = v
    comp = pd.concat([comparisons(d.summary, d.reference, runs=d.runs).assign(side=name) for name, d in data.items()],
                     ignore_index=True)
    test = pd.concat([d.testability.assign(side=name) for name, d in data.items()], ignore_index=True)
    constant_runs = predictions.run_constancy(plan)
    return Scorecard(out, paper_all, comp, test, tasks, nothing,
                     predictions.constant_counts(constant_runs, ours.reference["task"]), constant_runs,
                     collect.super_masks(plan))


def findings(plan: Plan | str, n_perm: int = 1000, with_paper: bool = True) -> dict[str, dict[str, Finding]]:
    """{claim: {"paper": Finding, "ours": Finding}} for C1-C10 (:func:`build`)."""
    return build(plan, n_perm, with_paper).findings


def card(results: dict[str, dict[str, Finding]]) -> pd.DataFrame:
    """One row per claim: the claim, what the paper printed, the paper's data under our rule (or, where the rule
    cannot be re-run on it, its printed number, marked so), ours, and our verdict. ``paper verdict`` is empty
    where the paper's side is a printed number (so the verdict grid colours only verdicts of the same rule)."""
    rows = []
    for claim, text in CLAIMS.items():
        sides = results.get(claim, {})
        paper, ours = sides.get("paper"), sides.get("ours")
        printed = bool(paper and paper.extra.get("printed"))
        rows.append({"claim": claim, "statement": text, "the paper says": PAPER_SAYS[claim],
                     "paper's data, same rule": ("rule not applicable: " if printed else f"{paper.verdict}: ")
                     + paper.evidence if paper else "paper's data not found",
                     "ours": ours.evidence if ours else "", "verdict": ours.verdict if ours else UNTESTABLE,
                     "paper verdict": "" if paper is None else f"printed: {paper.verdict}" if printed
                     else paper.verdict})
    return pd.DataFrame(rows)


def as_records(results: dict[str, dict[str, Finding]]) -> dict:
    """JSON-ready verdicts (for a closing note or a test)."""
    return {k: {side: f.as_dict() for side, f in v.items()} for k, v in results.items()}


# --- the page's tables, formatted -----------------------------------------------------------------------------

def _num(x: float) -> str:
    """Three decimals, without a negative zero."""
    text = f"{x:.3f}"
    return "0.000" if text == "-0.000" else text


def interval_text(row) -> str:
    """'gap 0.012 [-0.004, 0.028]' from a comparison row, or why there is no interval."""
    n = int(row["n"])
    if n == 0:
        return "no paired runs yet"
    if n == 1:
        return f"{_num(row['gap'])} (one seed: no interval)"
    return f"{_num(row['gap'])} [{_num(row['low'])}, {_num(row['high'])}]"


def verdict_text(row) -> str:
    """A comparison's verdict for a reader: the label, '(as claimed)' where it is the claim's, 'no runs yet'."""
    if int(row["n"]) == 0:
        return "no runs yet"
    return row["label"] + (" (as claimed)" if row["expected"] and row["verdict"] == row["expected"] else "")


def side_by_side(table: pd.DataFrame, claims=None, tasks=None, testable: pd.DataFrame | None = None) -> pd.DataFrame:
    """The comparisons of both sides next to each other, formatted (3 decimals, no nan): one row per (comparison,
    task); per side the seeds ``n``, the gap with its 95 % interval, ``tau`` and the verdict (or why a task is not
    testable there). ``table``: :attr:`Scorecard.comparisons` (a ``side`` column: ours, paper)."""
    t = table if claims is None else table[table["claim"].isin(claims)]
    if tasks is not None:
        t = t[t["task"].isin(tasks)]
    why = ({} if testable is None else
           {(r["side"], r["task"]): r["why"] for _, r in testable.iterrows() if not r["testable"]})
    sides = list(dict.fromkeys(t["side"]))
    keys = list(dict.fromkeys(zip(t["claim"], t["comparison"], t["task"])))
    rows = []
    for claim, comp, task in keys:
        row = {"claim": claim, "comparison": comp, "task": task}
        for side in sides:
            hit = t[(t["side"] == side) & (t["claim"] == claim) & (t["comparison"] == comp) & (t["task"] == task)]
            who = "ours" if side == "ours" else "paper"
            if not len(hit):
                row.update({f"{who}: n": "", f"{who}: gap [95 % interval]": "not in this side's data",
                            f"{who}: tau": "", f"{who}: verdict": ""})
                continue
            r = hit.iloc[0]
            verdict = verdict_text(r)
            if (side, task) in why:
                verdict += " - task not testable"
            row.update({f"{who}: n": str(int(r["n"])), f"{who}: gap [95 % interval]": interval_text(r),
                        f"{who}: tau": _num(r["tau"]) if int(r["n"]) else "", f"{who}: verdict": verdict})
        row["claimed"] = t[(t["claim"] == claim) & (t["comparison"] == comp)]["expected"].iloc[0] or "(no claim)"
        rows.append(row)
    return pd.DataFrame(rows)


def testability_view(table: pd.DataFrame) -> pd.DataFrame:
    """:attr:`Scorecard.testability`, formatted for the page."""
    out = pd.DataFrame({
        "side": table["side"], "task": table["task"], "seeds": table["n"].astype(int).astype(str),
        "full model (mean ± std)": [f"{_num(m)} ± {_num(s)}" if np.isfinite(s) else f"{_num(m)} (one seed)"
                                    for m, s in zip(table["full"], table["full std"])],
        "majority": table["majority"].map(_num),
        "95 % interval's lower end": [_num(x) if np.isfinite(x) else "needs 2 seeds" for x in table["lower end"]],
        "constant good re-fine-tunes": table["constant good re-fine-tunes"].replace("", "none seen"),
        "testable": np.where(table["testable"], "yes", "no"),
        "why not": table["why"]})
    return out


def super_sizes_view(sizes: pd.DataFrame) -> pd.DataFrame:
    """Task x subnetwork sizes of the super-survivor masks ('heads / MLPs kept') and how random and bad were
    sized."""
    if not len(sizes):
        return pd.DataFrame(columns=["task", "good", "random", "bad", "random and bad sized"])
    cells = sizes.assign(cell=sizes["heads_kept"].astype(str) + " / " + sizes["mlps_kept"].astype(str))
    wide = cells.pivot(index="task", columns="subnetwork", values="cell").reindex(
        index=list(dict.fromkeys(sizes["task"])), columns=["good", "random", "bad"]).fillna("no mask yet")
    resize = sizes.groupby("task", sort=False)["resize"].agg(lambda r: ", ".join(sorted(set(r))))
    wide["random and bad sized"] = resize.map({"matched": "matched to good (default)",
                                               "authors": "authors' resizing (option)"}).fillna(resize)
    return wide.reset_index().rename(columns={"good": "good (heads / MLPs)", "random": "random (heads / MLPs)",
                                              "bad": "bad (heads / MLPs)"})


def no_subnetwork_view(table: pd.DataFrame) -> pd.DataFrame:
    """Our searches without a subnetwork: task, seed, method, why (the reason shortened to its first clause)."""
    return pd.DataFrame({"task": table["task"], "seed": table["seed"].astype(str),
                         "method": table["method"].map({"m": "m-pruning", "s": "s-pruning"}),
                         "why": [r.split(", so ")[0] for r in table["reason"]]})


def claim_table(finding: Finding) -> pd.DataFrame:
    """A claim's per-task (or per-comparison) evidence formatted for the page: numbers with 3 decimals, no
    nan (an empty cell says why), no index."""
    t = finding.table.copy()
    if not len(t):
        return t
    if "label" in t:  # a comparison table
        out = pd.DataFrame({
            "task": t["task"], "comparison": t["comparison"], "seeds": t["n"].astype(int).astype(str),
            "reference mean": [_num(x) if n else "" for x, n in zip(t["reference_mean"], t["n"])],
            "other mean": [_num(x) if n else "" for x, n in zip(t["other_mean"], t["n"])],
            "gap [95 % interval]": [interval_text(r) for _, r in t.iterrows()],
            "tau": [_num(x) if n else "" for x, n in zip(t["tau"], t["n"])],
            "verdict": [verdict_text(r) for _, r in t.iterrows()], "claimed": t["expected"],
            "counted": [("yes" if ok else f"no: {note}") for ok, note in zip(t["testable"] & (t["note"] == ""),
                                                                             t["note"])]})
        if "pruned good / full" in t:
            out.insert(7, "pruned good / full", [_num(x) if np.isfinite(x) else "no pruned score"
                                                 for x in t["pruned good / full"]])
        return out
    def note(i: int) -> str:
        """The row's note, or "" (a missing note is NaN in a table with some notes)."""
        value = t["note"].iloc[i] if "note" in t else ""
        return value if isinstance(value, str) else ""

    why_empty = (lambda i: f"not computed: {note(i)}" if note(i) else "not computed (no runs)")
    for col in t.columns:
        if col == "ok":
            t[col] = [("not counted" + (f": {note(i)}" if note(i) else "")
                       if v is None or (isinstance(v, float) and not np.isfinite(v)) else _cell_text(v))
                      for i, v in enumerate(t[col])]
        elif col == "note":  # words: a row without a note has nothing to say (the page shows "–")
            t[col] = [note(i) for i in range(len(t))]
        elif col in P_COLUMNS:
            t[col] = [p_cell(v) if np.isfinite(v) else why_empty(i) for i, v in enumerate(t[col].astype(float))]
        else:
            t[col] = [why_empty(i) if _missing(v) else _cell_text(v) for i, v in enumerate(t[col])]
    return t.rename(columns=HEADERS)


#: Readable headers for the evidence tables' columns.
HEADERS: dict[str, str] = {
    "ok": "rule met", "note": "note", "testable": "testable", "share below 0.5": "share of live heads below 0.5",
    "m kept": "m-pruning: share of prunable weights kept", "s kept": "s-pruning: share of prunable weights kept",
    "m seeds": "m-pruning seeds", "s seeds": "s-pruning seeds", "kappa": "Fleiss' kappa (heads)",
    "Cochran's Q": "Cochran's Q (heads)", "p": "p (Cochran's Q)", "chance mean": "chance: mean",
    "chance 95th pct": "chance: 95th percentile", "observed": "heads kept by both (mean over seeds)",
    "het_survivors": "heterogeneous survivors", "het_pruned": "heterogeneous pruned heads",
    "het_share_survivors": "heterogeneous share: survivors", "het_share_pruned": "heterogeneous share: pruned",
    "het_share_all": "heterogeneous share: all heads", "odds_ratio": "Mantel-Haenszel odds ratio",
    "ci_low": "odds ratio: 95 % CI low", "ci_high": "odds ratio: 95 % CI high", "p_value": "p (CMH test)",
    "informative_strata": "informative seeds (strata)", "runs": "runs", "heads": "heads (seed x head)"}
#: Columns holding p-values.
P_COLUMNS = ("p", "p_value")


def p_cell(p: float) -> str:
    """A p-value for a table: '< 0.001' below it, else three decimals.

    >>> p_cell(0.00002), p_cell(0.0412)
    ('< 0.001', '0.041')
    """
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def p_phrase(p: float) -> str:
    """A p-value for prose: 'p < 0.001' or 'p = 0.041'."""
    return f"p {p_cell(p)}" if p < 0.001 else f"p = {p_cell(p)}"


def _missing(v) -> bool:
    return v is None or (isinstance(v, (float, np.floating)) and not np.isfinite(v))


def _cell_text(v) -> str:
    if _missing(v):
        return ""
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, (float, np.floating)):
        return f"{float(v):.1f}" if abs(v) >= 10 else _num(float(v))
    return str(v)


# --- verdict boxes, the answer, the card with anchors ---------------------------------------------------------

#: The results page that shows each claim's evidence (ours) and the paper-data page for the paper's side.
CLAIM_PAGE: dict[str, str] = {"C1": "fig2_subnetworks", "C2": "fig2_subnetworks", "C3": "fig2_subnetworks",
                              "C4": "table2_bad", "C5": "fig2_subnetworks", "C6": "fig3_importance",
                              "C7": "fig1_survivors", "C8": "stability", "C9": "fig5_overlap",
                              "C10": "attention_patterns"}
PAPER_PAGE: dict[str, str] = {"C1": "paper_subnetworks", "C2": "paper_subnetworks", "C3": "paper_subnetworks",
                              "C4": "paper_subnetworks", "C5": "paper_subnetworks", "C7": "paper_survivors",
                              "C8": "paper_stability", "C9": "paper_overlap"}
#: Page (notebook stem) -> the claims its verdict box reports; () for a page whose subject is not one claim.
PAGES: dict[str, tuple[str, ...]] = {
    "fig1_survivors": ("C7",), "fig2_subnetworks": ("C1", "C2", "C3", "C5"), "table2_bad": ("C4",),
    "fig3_importance": ("C6",), "fig5_overlap": ("C9",), "stability": ("C8",), "attention_patterns": ("C10",),
    "paper_survivors": ("C7",), "paper_stability": ("C8",), "paper_overlap": ("C9",),
    "paper_subnetworks": ("C1", "C2", "C3", "C4", "C5"), "why_small_model": ("C3",), "traces": (),
    "scorecard": ()}


def anchor(claim: str) -> str:
    """The HTML id of a claim's row on the scorecard page: ``claim-c3``."""
    if claim not in CLAIMS:
        raise KeyError(f"unknown claim {claim!r}: the claims are {', '.join(CLAIMS)}")
    return f"claim-{claim.lower()}"


def _link(page: str, claim: str | None = None, here: str | None = None) -> str:
    """A raw HTML href (so the strict build resolves nothing) from page ``here`` to ``page`` (at ``claim``'s
    row); every results page is a sibling in book/figures/."""
    target = "" if page == here else f"{page}.html"
    return target + (f"#{anchor(claim)}" if claim else "")


@dataclass(frozen=True)
class ClaimRow:
    """One claim as the card and the verdict boxes show it: data, not matched strings."""

    claim: str
    statement: str
    paper_says: str  # what the paper printed
    paper_data: str  # the paper's data under our rule, or its printed number
    paper_verdict: Verdict | None  # None: no paper data
    paper_same_rule: bool  # False: the paper's side is a printed number, the rule could not be re-run
    ours: str
    verdict: Verdict
    why: str  # one line
    page: str  # the page with our evidence

    @property
    def anchor(self) -> str:
        return anchor(self.claim)

    @property
    def link(self) -> str:
        """From any results page to this row of the scorecard."""
        return _link("scorecard", self.claim)


def _why(claim: str, verdict: Verdict, ours: Finding | None, tasks: list) -> str:
    """One line: why the verdict."""
    if ours is None:
        return "no result of this plan feeds the rule yet"
    if verdict is UNTESTABLE:
        return "too few tasks have the results the rule needs"
    if verdict is PENDING:
        return "the plan's grid has not computed the re-fine-tunes it compares yet"
    if claim == "C10":
        return ("survivors are significantly more often heterogeneous (CMH test)" if verdict is FAILS
                else "survivors are not significantly more often heterogeneous (CMH test)")
    if claim == "C6":
        return f"its rule is met at {'at least' if verdict is HOLDS else 'fewer than'} two thirds of the evaluations"
    units = ("the task pairs of the tasks testable on both sides" if claim == "C9"
             else f"the {len(tasks)} tasks testable on both sides")
    return f"its rule ({RULES[claim]}) is met on {'at least' if verdict is HOLDS else 'fewer than'} two thirds of {units}"


def claim_rows(sc: "Scorecard") -> list[ClaimRow]:
    """One :class:`ClaimRow` per claim (C1-C10), from a built scorecard."""
    out = []
    for claim, text in CLAIMS.items():
        sides_ = sc.findings.get(claim, {})
        paper, ours = sides_.get("paper"), sides_.get("ours")
        printed = bool(paper and paper.extra.get("printed"))
        verdict = ours.verdict if ours else UNTESTABLE
        out.append(ClaimRow(claim, text, PAPER_SAYS[claim], paper.evidence if paper else "paper's data not found",
                            paper.verdict if paper else None, not printed, ours.evidence if ours else "",
                            verdict, _why(claim, verdict, ours, sc.tasks), CLAIM_PAGE[claim]))
    return out


_BUILT: dict = {}


def cached_build(plan: Plan | str, n_perm: int = 1000, with_paper: bool = True) -> "Scorecard":
    """:func:`build`, computed once per process for a plan given by name (a page's verdict box and its statistics
    share it); a :class:`Plan` object is built afresh."""
    if not isinstance(plan, str):
        return build(plan, n_perm, with_paper)
    key = (plan, n_perm, with_paper)
    if key not in _BUILT:
        _BUILT[key] = build(plan, n_perm, with_paper)
    return _BUILT[key]


def tally(rows: list[ClaimRow]) -> dict[Verdict, list[str]]:
    """{verdict: [claims]} of our side, every verdict present."""
    out = {v: [] for v in Verdict}
    for r in rows:
        out[r.verdict].append(r.claim)
    return out


def tally_text(rows: list[ClaimRow]) -> str:
    """'3 of 10 claims hold, 4 do not, 3 are not testable at this scale'."""
    t = tally(rows)
    k, f, u, p = len(t[HOLDS]), len(t[FAILS]), len(t[UNTESTABLE]), len(t[PENDING])
    parts = [f"{k} of {len(rows)} claims {'hold' if k != 1 else 'holds'}", f"{f} do{'es' if f == 1 else ''} not"]
    if u or not p:
        parts.append(f"{u} {'is' if u == 1 else 'are'} not testable at this scale")
    if p:
        parts.append(f"{p} {'is' if p == 1 else 'are'} not yet computed")
    return ", ".join(parts)


def _box(title: str, lines: list[str]) -> str:
    """A MyST admonition of class ``verdict`` (renders as ``<div class="admonition verdict">``). The cell showing
    it needs the metadata ``mystnb: {markdown_format: myst}`` so its Markdown output is parsed as MyST."""
    body = "\n".join(f"- {line}" for line in lines)
    return f"````{{admonition}} {title}\n:class: verdict\n\n{body}\n````"


def _claim_line(r: ClaimRow, here: str, paper_side: bool = False, paper_all: Finding | None = None) -> str:
    link = f'<a href="{_link("scorecard", r.claim, here)}">scorecard row {r.claim}</a>'
    if paper_side:
        data = (f"{paper_all.verdict} under our rule on every task testable in its data: {paper_all.evidence}"
                if paper_all is not None else r.paper_data)
        return (f"**{r.claim}** ({r.statement}). **The paper says:** {r.paper_says}. **Its data, our rule:** {data}. "
                f"**Ours:** {r.verdict}. ({link})")
    return (f"**{r.claim}** ({r.statement}). **The paper says:** {r.paper_says}. **Ours:** {r.ours}. "
            f"**Verdict: {r.verdict}**, because {r.why}. ({link})")


def _title(rows: list[ClaimRow], paper_side: bool, paper_all: dict) -> str:
    if paper_side:
        parts = [f"{r.claim} {paper_all[r.claim].verdict if r.claim in paper_all else 'no data'}" for r in rows]
        return "Verdict on the paper's data, our rules: " + "; ".join(parts)
    return "Verdict: " + "; ".join(f"{r.claim} {r.verdict}" for r in rows)


def _traces_lines(plan: Plan | str) -> tuple[str, list[str]]:
    """What the traces page finds: how many searches found a subnetwork, and their sizes."""
    summaries = collect.search_summaries(plan)
    nothing = collect.no_subnetwork_runs(plan)
    if not len(summaries):
        return "Verdict: no pruning search has finished yet", ["No search of this plan has finished."]
    lines, found = [], []
    for method, name in (("m", "m-pruning"), ("s", "s-pruning")):
        runs = summaries[summaries["method"] == method]
        if not len(runs):
            continue
        k = len(runs) - (int((nothing["method"] == method).sum()) if len(nothing) else 0)
        found.append(f"{name} {k} of {len(runs)}")
        sizes = ""
        if method == "s" and {"heads_kept", "mlps_kept"} <= set(runs.columns):
            sizes = (f"; on average they keep {runs['heads_kept'].mean():.1f} heads and {runs['mlps_kept'].mean():.1f} "
                     "MLPs (every search counted)")
        elif method == "m" and {"weights_kept", "weights_total"} <= set(runs.columns):
            share = (runs["weights_kept"] / runs["weights_total"]).mean()
            sizes = f"; on average they keep {share:.0%} of the m-prunable weights (every search counted)"
        lines.append(f"**{name}**: {k} of {len(runs)} searches (task x seed) found a subnetwork{sizes}.")
    lines.append("A search without a subnetwork (skipped, or its first step already failed the 90 % rule) is left "
                 f'out of every comparison (<a href="{_link("scorecard")}">the scorecard</a>).')
    return "Verdict: searches that found a subnetwork: " + ", ".join(found), lines


def _why_small_lines(plan: Plan | str, rows: list[ClaimRow]) -> tuple[str, list[str]]:
    from lotterylib.report import beyond

    c3 = next(r for r in rows if r.claim == "C3")
    lines = [_claim_line(c3, "why_small_model")]
    lines += [c.text(with_detail=False) for c in beyond.findings(beyond.gather(plan))]
    return f"Verdict: C3 {c3.verdict} here; what the section-10 experiments find", lines


def verdict_markdown(plan: Plan | str, page: str, n_perm: int = 1000) -> str:
    """The verdict box that opens results page ``page`` (a notebook stem, e.g. ``"fig5_overlap"``): a MyST
    admonition of class ``verdict`` with, per claim of the page (:data:`PAGES`), the claim, the paper's number,
    ours, the verdict, one line of why and a link to the claim's row of the scorecard
    (``scorecard.html#claim-c3``). Paper-data pages give the paper's data under our rules; ``traces`` and
    ``why_small_model`` say what the page finds; ``scorecard`` gives the tally. Display it with
    ``display(Markdown(...))`` in a cell whose metadata is ``mystnb: {markdown_format: myst}``.
    """
    if page not in PAGES:
        raise ValueError(f"unknown page {page!r}: verdict boxes exist for {', '.join(PAGES)}")
    if page == "traces":
        return _box(*_traces_lines(plan))
    sc = cached_build(plan, n_perm)
    rows = claim_rows(sc)
    if page == "scorecard":
        t = tally(rows)
        lines = [f"**{tally_text(rows)}**, judged on the tasks testable on both sides: "
                 f"{', '.join(sc.tasks) or 'none yet'}."]
        lines += [f"**{v}**: " + (", ".join(f'<a href="#{anchor(c)}">{c}</a>' for c in t[v]) or "none")
                  for v in Verdict if t[v] or v is not PENDING]
        return _box("Verdict: " + tally_text(rows), lines)
    if page == "why_small_model":
        return _box(*_why_small_lines(plan, rows))
    chosen = [r for r in rows if r.claim in PAGES[page]]
    paper_side = page.startswith("paper_")
    lines = [_claim_line(r, page, paper_side, sc.paper_all.get(r.claim)) for r in chosen]
    return _box(_title(chosen, paper_side, sc.paper_all), lines)


def answer_markdown(plan: Plan | str, n_perm: int = 1000) -> str:
    """Our answer in three sentences (what holds, what does not, what is not testable), generated from the
    verdicts, and the scorecard's tally linked to it (a MyST ``{doc}`` link, resolved from book/intro.md)."""
    rows = claim_rows(cached_build(plan, n_perm))
    t = tally(rows)
    by = {r.claim: r for r in rows}

    def names(claims: list[str]) -> str:
        return "; ".join(f"{c} ({by[c].statement})" for c in claims)

    name = plan if isinstance(plan, str) else plan.name
    holds = (f"On the {name} plan's model, these claims of the paper hold: {names(t[HOLDS])}." if t[HOLDS]
             else f"On the {name} plan's model, none of the paper's claims holds by our rules.")
    fails = f"These do not: {names(t[FAILS])}." if t[FAILS] else "No claim fails its rule."
    sentences = [holds, fails]
    if t[UNTESTABLE]:
        sentences.append(f"Not testable at this scale: {names(t[UNTESTABLE])}.")
    if t[PENDING]:
        sentences.append(f"Not yet computed (the plan's grid has not run the re-fine-tunes they compare): "
                         f"{names(t[PENDING])}.")
    if not t[UNTESTABLE] and not t[PENDING]:
        sentences.append("Every claim could be tested.")
    progress = collect.grid_progress(plan)
    if not collect.grid_complete(progress):
        supers = (f" and {progress['super_done']} of its {progress['super_total']} super-survivor re-fine-tunes"
                  if progress["supers_asked"] else "")
        sentences.append(f"The plan's grid is not complete yet: these verdicts rest on {progress['done']} of "
                         f"its {progress['total']} result files{supers}; the scorecard gives each claim's n, "
                         f"and {{doc}}`Re-run it yourself <rerun>` computes the rest.")
    return (f"{' '.join(sentences)}\n\n**{tally_text(rows)}** "
            f"({{doc}}`the claims scorecard <figures/scorecard>` has one row per claim with its evidence).\n")


def repo_root() -> Path:
    """The repository root, found from the installed package (not from the working directory)."""
    import lotterylib

    return Path(lotterylib.__file__).resolve().parent.parent


def write_answer(plan: Plan | str, path: str | Path | None = None, n_perm: int = 1000) -> Path:
    """Write :func:`answer_markdown` to ``path`` (default ``<repo>/book/figures/answer.md``, which book/intro.md
    includes), atomically; returns the path."""
    path = Path(path) if path is not None else repo_root() / "book" / "figures" / "answer.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(answer_markdown(plan, n_perm))
    tmp.replace(path)
    return path


def card_html(sc: "Scorecard") -> str:
    """The card as an HTML table: one row per claim with the id :func:`anchor` (``claim-c3``), the claim, what
    the paper printed, the paper's data under our rule (or its printed number, said so), ours, the verdict with
    its one-line why, and a link back to the page with the evidence. Text is escaped."""
    e = html.escape
    head = ("<tr><th>claim</th><th>the paper says</th><th>the paper's data, our rule</th><th>ours</th>"
            "<th>verdict</th><th>evidence</th></tr>")
    body = []
    for r in claim_rows(sc):
        if r.paper_verdict is None:
            paper = e(r.paper_data)
        elif r.paper_same_rule:
            paper = f"<b>{e(str(r.paper_verdict))}</b>: {e(r.paper_data)}"
        else:
            paper = f"rule not applicable; {e(r.paper_data)}"
        body.append(f'<tr id="{r.anchor}"><td><b>{r.claim}</b>: {e(r.statement)}</td><td>{e(r.paper_says)}</td>'
                    f"<td>{paper}</td><td>{e(r.ours)}</td><td><b>{e(str(r.verdict))}</b>: {e(r.why)}</td>"
                    f'<td><a href="{_link(r.page)}">{e(r.page)}</a></td></tr>')
    return f'<table class="scorecard-card"><thead>{head}</thead><tbody>{"".join(body)}</tbody></table>'


def details_html(summary: str, table) -> str:
    """A collapsible section (``<details>``) holding a table (a pandas Styler, a DataFrame or HTML text)."""
    if hasattr(table, "hide"):  # a Styler
        inner = table.to_html()
    elif hasattr(table, "to_html"):
        inner = table.to_html(index=False)
    else:
        inner = str(table)
    return f"<details><summary>{html.escape(summary)}</summary>\n{inner}\n</details>"
