"""One number per statistic: every claim statistic a page shows, computed once (from the scorecard's findings,
:func:`lotterylib.report.scorecard.cached_build`) and returned with the exact sentence the pages print, the unit
it counts (heads, or heads and MLPs, task pairs, ...) and the tasks it counts.

The scorecard's rows and every figure page read these functions, so they cannot disagree: a page that shows
"k of n" prints :attr:`Statistic.text` (or :meth:`Statistic.markdown`), never a count of its own.

| function | claim | what | unit | tasks |
| --- | --- | --- | --- | --- |
| :func:`claim_count` | any | the count behind a claim's verdict | the claim's unit | testable on both sides |
| :func:`c1_pruned_share` | C1 | pruned m-good keeps >= the plan's ``search.fraction`` of the full score | tasks | same |
| :func:`c5_compression` | C5 | m-pruning keeps fewer m-prunable weights than s-pruning | tasks | same |
| :func:`c6_low_importance` | C6 | share of live heads (and MLPs) scoring below 0.5 | heads, MLPs | same |
| :func:`c8_kappa` | C8 | Fleiss' kappa over seeds | heads | same |
| :func:`c8_cochran` | C8 | Cochran's Q over seeds rejects equal keep rates | heads | same |
| :func:`c9_overlap` | C9 | task pairs above the chance 95th percentile | heads, task pairs | same |
| :func:`paper_c9_overlap` | C9 | the same on the paper's data | heads, task pairs | testable in its data |
| :func:`c10_association` | C10 | survivors vs heterogeneous attention | heads | runs with attention and a mask |
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from lotterylib.config.plans import Plan
from lotterylib.report import scorecard as sc


@dataclass(frozen=True)
class Statistic:
    """One statistic as the pages show it."""

    claim: str
    name: str
    side: str  # "ours" or "paper"
    count: int | None  # k of "k of n" (None where the statistic is not a count)
    total: int | None  # n
    value: float | None  # the number where it is not a count (a share, a kappa, ...)
    unit: str  # what is counted: "tasks", "task pairs (heads kept by both)", "heads", ...
    tasks: tuple[str, ...]  # the tasks it counts
    text: str  # the sentence the pages print, unit and tasks stated

    def markdown(self) -> str:
        return self.text


def _tasks_text(tasks, what: str = "tasks testable on both sides") -> str:
    return f"{len(tasks)} {what}: {', '.join(tasks)}" if len(tasks) else f"no {what}"


def _finding(plan, claim: str, side: str = "ours", n_perm: int = 1000, all_paper: bool = False) -> sc.Finding:
    card = sc.cached_build(plan, n_perm)
    found = card.paper_all.get(claim) if all_paper else card.findings.get(claim, {}).get(side)
    if found is None:
        raise KeyError(f"no finding for {claim} on the {side} side of the scorecard")
    return found


def _counted(finding: sc.Finding, key: str = "task") -> tuple[int, int]:
    """(k, n) of a finding's per-unit ``ok`` column, as its verdict counted them (one row per unit)."""
    t = finding.table
    if not len(t) or "ok" not in t:
        return 0, 0
    ok = t.drop_duplicates(key)["ok"] if key in t else t["ok"]
    ok = ok.dropna().astype(bool)
    return int(ok.sum()), len(ok)


def _empty(f: sc.Finding, claim: str, name: str, side: str, unit: str, tasks) -> Statistic:
    """A statistic that cannot be computed yet: the finding's reason, with the unit and tasks."""
    return Statistic(claim, name, side, None, None, None, unit, tuple(tasks),
                     f"{claim}: {f.evidence} [unit: {unit}; {_tasks_text(tasks)}].")


UNITS = {"C1": "tasks", "C2": "tasks", "C3": "tasks", "C4": "tasks", "C5": "tasks",
         "C6": "(task, seed, step) evaluations of the live heads", "C7": "tasks", "C8": "tasks (heads)",
         "C9": "task pairs (heads kept by both)", "C10": "heads (seed x head), pooled"}


def claim_count(plan: Plan | str, claim: str, side: str = "ours", n_perm: int = 1000) -> Statistic:
    """The count behind a claim's verdict on one side (the scorecard's row): k units of n meet the claim's rule.
    Text: the claim's evidence, with the unit and the tasks judged. C10 is not a count (``count`` None)."""
    f = _finding(plan, claim, side, n_perm)
    tasks = tuple(sc.cached_build(plan, n_perm).tasks)
    key = "pair" if claim == "C9" else ("task" if claim != "C6" else None)
    k, n = (None, None) if claim == "C10" or f.extra.get("printed") else _counted(f, key or "")
    if claim == "C10":
        tasks = tuple(f.extra.get("tasks", ()))
        where = _tasks_text(tasks, "tasks with attention statistics and good masks")
    else:
        where = _tasks_text(tasks)
    text = f"{claim} ({side}): {f.evidence} [unit: {UNITS[claim]}; {where}]"
    return Statistic(claim, "verdict count", side, k, n, None, UNITS[claim], tasks, text)


def c1_pruned_share(plan: Plan | str, n_perm: int = 1000) -> Statistic:
    """Tasks whose pruned m-good subnetwork keeps at least the plan's ``search.fraction`` (the 90 % rule) of the
    full model's score (mean over seeds), on the tasks testable on both sides."""
    plan = Plan.of(plan)
    f = _finding(plan, "C1", "ours", n_perm)
    tasks = tuple(sc.cached_build(plan, n_perm).tasks)
    per_task = f.table.drop_duplicates("task").set_index("task")["pruned good / full"].reindex(list(tasks))
    fractions = {t: plan.settings(t).search.fraction for t in tasks}
    ok = {t: bool(v >= fractions[t] - 1e-12) for t, v in per_task.items() if np.isfinite(v)}
    levels = sorted(set(fractions.values()))
    level = " / ".join(f"{x:.0%}" for x in levels) if levels else "the plan's fraction"
    k, n = sum(ok.values()), len(ok)
    text = (f"The pruned m-good subnetwork keeps at least {level} of the full model's score (the plan's "
            f"search.fraction) on {k} of {n} tasks [unit: tasks, mean over seeds; {_tasks_text(tasks)}].")
    return Statistic("C1", "pruned good share", "ours", k, n, None, "tasks", tasks, text)


def c5_compression(plan: Plan | str, n_perm: int = 1000) -> Statistic:
    """C5: tasks where the good m-subnetwork keeps a smaller share of the m-prunable weights than the s-one."""
    f = _finding(plan, "C5", "ours", n_perm)
    tasks = tuple(sc.cached_build(plan, n_perm).tasks)
    k, n = _counted(f)
    text = (f"m-pruning keeps a smaller share of the m-prunable encoder weights than s-pruning on {k} of {n} tasks "
            f"[unit: share of m-prunable weights, mean over seeds; {_tasks_text(tasks)}].")
    return Statistic("C5", "m smaller than s", "ours", k, n, None, "tasks", tasks, text)


def c6_low_importance(plan: Plan | str, n_perm: int = 1000) -> Statistic:
    """C6: the share of live head importance scores below 0.5 (normalised), pooled over every (task, seed, step)
    of the tasks testable on both sides, its median per step, and the same pooled share for the MLPs."""
    f = _finding(plan, "C6", "ours", n_perm)
    tasks = tuple(sc.cached_build(plan, n_perm).tasks)
    e = f.extra
    if not e:
        return _empty(f, "C6", "low importance", "ours", "heads", tasks)
    k, n = _counted(f, "")
    mlp = (f"; MLPs: {e['pooled MLP share']:.0%} below {sc.LOW_IMPORTANCE}" if np.isfinite(e["pooled MLP share"])
           else "")
    text = (f"Heads: {e['pooled head share']:.0%} of the live heads' importance scores are below "
            f"{sc.LOW_IMPORTANCE} (pooled over {e['evaluations']} task x seed x step evaluations; median share per "
            f"evaluation {e['median head share']:.0%}; more than half below it at {k} of {n}){mlp} "
            f"[unit: live heads, scores normalised as the authors did; {_tasks_text(tasks)}].")
    return Statistic("C6", "low importance", "ours", k, n, e["pooled head share"], "heads", tasks, text)


def c8_kappa(plan: Plan | str, n_perm: int = 1000) -> Statistic:
    """C8: Fleiss' kappa of the good s-pruning head masks over seeds: its range, how many tasks are at most
    :data:`~lotterylib.report.scorecard.KAPPA_UNSTABLE` and how many inside the paper's 0.15-0.32."""
    f = _finding(plan, "C8", "ours", n_perm)
    e = f.extra
    tasks = tuple(e.get("tasks", ()))
    if not e:
        return _empty(f, "C8", "kappa", "ours", "heads", tasks)
    k, n = _counted(f)
    lo, hi = sc.PAPER_KAPPA
    inside = e["inside paper's range"]
    text = (f"Fleiss' kappa of the heads over seeds ranges from {e['kappa min']:.2f} to {e['kappa max']:.2f}; at "
            f"most {sc.KAPPA_UNSTABLE} on {k} of {n} tasks, inside the paper's {lo}-{hi} on "
            f"{inside} [unit: heads (MLPs not counted); {_tasks_text(tasks)}].")
    return Statistic("C8", "kappa", "ours", k, n, None, "heads", tasks, text)


def c8_cochran(plan: Plan | str, n_perm: int = 1000) -> Statistic:
    """C8: on how many tasks Cochran's Q over the seeds' head masks rejects equal keep rates (p < 0.05)."""
    f = _finding(plan, "C8", "ours", n_perm)
    e = f.extra
    tasks = tuple(e.get("tasks", ()))
    if not e:
        return _empty(f, "C8", "Cochran's Q", "ours", "heads", tasks)
    n = len(f.table)
    rejects = e["Cochran's Q rejects"]
    text = (f"Cochran's Q over the seeds rejects equal keep rates (p < {sc.ALPHA}) on {rejects} of "
            f"{n} tasks [unit: heads (MLPs not counted); {_tasks_text(tasks)}].")
    return Statistic("C8", "Cochran's Q", "ours", e["Cochran's Q rejects"], n, None, "heads", tasks, text)


def _c9(f: sc.Finding, side: str, where: str) -> Statistic:
    e = f.extra
    tasks = tuple(e.get("tasks", ()))
    if not e:
        return _empty(f, "C9", "overlap", side, "task pairs", tasks)
    k, n = _counted(f, "pair")
    text = (f"{k} of {n} task pairs share more heads than the 95th percentile of chance ({e['n_perm']} random "
            f"re-placements per seed index, {e['seed indices']} seed index{'es' if e['seed indices'] != 1 else ''}) "
            f"[unit: heads kept by both tasks, same seed index; {_tasks_text(tasks, where)}].")
    return Statistic("C9", "overlap", side, k, n, None, "task pairs", tasks, text)


def c9_overlap(plan: Plan | str, n_perm: int = 1000) -> Statistic:
    """C9 on our masks, on the tasks testable on both sides."""
    return _c9(_finding(plan, "C9", "ours", n_perm), "ours", "tasks testable on both sides")


def paper_c9_overlap(plan: Plan | str, n_perm: int = 1000) -> Statistic:
    """C9 on the paper's masks, on every task testable in its data (the scorecard's last table; the paper-overlap
    page)."""
    return _c9(_finding(plan, "C9", "paper", n_perm, all_paper=True), "paper", "tasks testable in the paper's data")


def c10_association(plan: Plan | str, n_perm: int = 1000) -> Statistic:
    """C10: heterogeneous shares of surviving and pruned heads and the CMH test (pooled over task x seed)."""
    f = _finding(plan, "C10", "ours", n_perm)
    tasks = tuple(f.extra.get("tasks", ()))
    text = (f"{f.evidence[:1].upper()}{f.evidence[1:]} [unit: heads (seed x head) of the fine-tuned models; "
            f"{_tasks_text(tasks, 'tasks with attention statistics and good masks')}].")
    return Statistic("C10", "association", "ours", None, None, f.extra.get("p"), "heads", tasks, text)


def all_statistics(plan: Plan | str, n_perm: int = 1000) -> dict[str, Statistic]:
    """Every statistic above, by function name."""
    return {"c1_pruned_share": c1_pruned_share(plan, n_perm), "c5_compression": c5_compression(plan, n_perm),
            "c6_low_importance": c6_low_importance(plan, n_perm), "c8_kappa": c8_kappa(plan, n_perm),
            "c8_cochran": c8_cochran(plan, n_perm), "c9_overlap": c9_overlap(plan, n_perm),
            "paper_c9_overlap": paper_c9_overlap(plan, n_perm), "c10_association": c10_association(plan, n_perm)}


def table(plan: Plan | str, n_perm: int = 1000) -> pd.DataFrame:
    """The statistics as a table (claim, statistic, k, n, unit, tasks, sentence)."""
    return pd.DataFrame([{"claim": s.claim, "statistic": s.name, "side": s.side,
                          "k": "" if s.count is None else str(s.count), "n": "" if s.total is None else str(s.total),
                          "unit": s.unit, "tasks": ", ".join(s.tasks), "sentence": s.text}
                         for s in all_statistics(plan, n_perm).values()])
