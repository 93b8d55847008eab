"""Pattern-type shares and the survival-vs-heterogeneous association (claim C10), with their sentences.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from lotterylib.read.pattern_data import head_table
from lotterylib.read.pattern_rules import (
    DEFAULT_RULES,
    TYPES,
    PatternRules,
    check_weights,
    type_codes,
)


#: The association's outcomes (:func:`verdict`): constants, compared by identity.
NOT_TESTABLE = "not testable"
NO_ASSOCIATION = "no significant association"
MORE_HETEROGENEOUS = "survivors more often heterogeneous"
LESS_HETEROGENEOUS = "survivors less often heterogeneous"


def _groups(heads: pd.DataFrame) -> dict[str, pd.Series]:
    kept = heads["kept"] if "kept" in heads else pd.Series(pd.NA, index=heads.index, dtype="boolean")
    sup = heads["super"] if "super" in heads else pd.Series(pd.NA, index=heads.index, dtype="boolean")
    return {"all heads": pd.Series(True, index=heads.index),
            "survivors": kept.fillna(False).astype(bool),
            "pruned": (~kept.astype("boolean")).fillna(False).astype(bool),
            "super-survivors": sup.fillna(False).astype(bool)}

def type_shares(heads: pd.DataFrame, by: Sequence[str] = ("task", "weights")) -> pd.DataFrame:
    """Share of each type among all heads, survivors, pruned heads and super-survivors, per ``by`` group.

    Units are (seed, head) pairs pooled over the seeds. ``all heads``: every head of every run with
    attention statistics; ``survivors`` / ``pruned``: heads kept / removed by their seed's good mask (runs
    with a mask only); ``super-survivors``: heads in the task's super-survivor mask, in every seed. Long
    format: ``by...``, ``group``, ``type``, ``count``, ``n``, ``share``; every type appears (count 0 if
    absent), so the shares of a (group, by) sum to 1; groups with no heads are left out.
    """
    by = list(by)
    missing = [c for c in by + ["type"] if c not in heads.columns]
    if missing:
        raise ValueError(f"the head table lacks columns {missing}: build it with lotterylib.read.pattern_data.head_table")
    type_codes(heads["type"].unique())  # refuses unknown type names
    rows = []
    for group, member in _groups(heads).items():
        sub = heads[member]
        if sub.empty:
            continue
        for key, part in (sub.groupby(by, sort=False) if by else [((), sub)]):
            key = key if isinstance(key, tuple) else (key,)
            counts = part["type"].value_counts()
            for kind in TYPES:
                count = int(counts.get(kind, 0))
                rows.append({**dict(zip(by, key)), "group": group, "type": kind, "count": count,
                             "n": len(part), "share": count / len(part)})
    return pd.DataFrame(rows, columns=by + ["group", "type", "count", "n", "share"])

def share_table(shares: pd.DataFrame, index: Sequence[str] = ("task", "weights", "group")) -> pd.DataFrame:
    """:func:`type_shares` as a wide table: one row per (task, weights, group), one column per type, plus n."""
    index = list(index)
    wide = shares.pivot_table(index=index, columns="type", values="share", sort=False, observed=True)
    wide = wide[[t for t in TYPES if t in wide.columns]]
    wide["n"] = shares.groupby(index, sort=False)["n"].first()
    return wide

def _table2x2(kept: np.ndarray, het: np.ndarray) -> np.ndarray:
    """[[survivor & heterogeneous, survivor & other], [pruned & heterogeneous, pruned & other]]."""
    kept, het = np.asarray(kept, dtype=bool), np.asarray(het, dtype=bool)
    return np.array([[np.sum(kept & het), np.sum(kept & ~het)], [np.sum(~kept & het), np.sum(~kept & ~het)]],
                    dtype=np.int64)

def _informative(table: np.ndarray) -> bool:
    return bool(table.sum(0).all() and table.sum(1).all())

def _cmh(tables: list[np.ndarray]) -> dict:
    """Mantel-Haenszel pooled odds ratio (95% CI) and the Cochran-Mantel-Haenszel test over 2x2 strata.

    Strata where every head survived, every head was pruned, every head is heterogeneous or none is carry no
    information about the association (they add nothing to the statistic or its variance) and are left out.
    """
    from statsmodels.stats.contingency_tables import StratifiedTable

    used = [t for t in tables if _informative(t)]
    out = {"strata": len(tables), "informative_strata": len(used), "odds_ratio": np.nan, "ci_low": np.nan,
           "ci_high": np.nan, "p_value": np.nan}
    if not used:
        return out
    n = np.array([t.sum() for t in used], dtype=float)
    r = sum(t[0, 0] * t[1, 1] / m for t, m in zip(used, n))
    s = sum(t[0, 1] * t[1, 0] / m for t, m in zip(used, n))
    strat = StratifiedTable([t.astype(np.float64) for t in used])
    out["p_value"] = float(strat.test_null_odds(correction=True).pvalue)
    if r > 0 and s > 0:
        out["odds_ratio"] = float(strat.oddsratio_pooled)
        low, high = strat.oddsratio_pooled_confint()
        out["ci_low"], out["ci_high"] = float(low), float(high)
    else:
        out["odds_ratio"] = float(np.inf) if s == 0 else 0.0
    return out

def _why_untestable(part: pd.DataFrame) -> str:
    if part.empty:
        return "no run has both attention statistics and a good mask"
    if part["kept"].all():
        return "every head survived"
    if not part["kept"].any():
        return "every head was pruned"
    if part["het"].all():
        return "every head is heterogeneous"
    if not part["het"].any():
        return "no head is heterogeneous"
    return "no seed has survivors and pruned heads of both kinds"

def association(heads: pd.DataFrame, weights: str = "finetuned") -> pd.DataFrame:
    """Is surviving s-pruning (kept in the seed's good mask) associated with being heterogeneous?

    Test: Cochran-Mantel-Haenszel (statsmodels ``StratifiedTable.test_null_odds``, continuity corrected),
    one 2x2 table (survived x heterogeneous) per seed: per task the strata are its seeds, in the pooled
    row every (task, seed). Stratifying keeps seeds and tasks with different survivor counts or type mixes
    from creating an association that no single run shows. The effect is the Mantel-Haenszel common odds
    ratio of being heterogeneous for survivors versus pruned heads (> 1: survivors are more often
    heterogeneous) with its 95% CI. Types are those of ``weights`` (each seed's fine-tuned model by default).

    One row per task with runs that have a mask, plus ``pooled``: ``runs`` ((task, seed) runs with
    attention statistics and a good mask), ``heads`` ((seed, head) pairs),
    ``survivors``, ``pruned``, ``het_survivors`` / ``het_pruned`` (counts), ``het_share_survivors``,
    ``het_share_pruned``, ``het_share_all`` (all heads of the runs with a mask), ``odds_ratio``, ``ci_low``,
    ``ci_high``, ``p_value``, ``informative_strata``, ``test`` (its name) and ``note`` (why a row cannot be
    tested).
    """
    check_weights(weights)
    needed = [c for c in ("task", "seed", "weights", "type", "kept") if c not in heads.columns]
    if needed:
        raise ValueError(f"the head table lacks columns {needed}: build it with lotterylib.read.pattern_data.head_table "
                         "(or attach_masks)")
    type_codes(heads["type"].unique())
    data = heads[(heads["weights"] == weights) & heads["kept"].notna()].copy()
    data["kept"] = data["kept"].astype(bool)
    data["het"] = data["type"] == "heterogeneous"
    columns = ["task", "runs", "heads", "survivors", "pruned", "het_survivors", "het_pruned",
               "het_share_survivors", "het_share_pruned", "het_share_all", "odds_ratio", "ci_low", "ci_high",
               "p_value", "informative_strata", "test", "note"]
    rows = []
    parts = [(task, part) for task, part in data.groupby("task", sort=False)] + [("pooled", data)]
    for task, part in parts:
        tables = [_table2x2(g["kept"], g["het"]) for _, g in part.groupby(["task", "seed"], sort=False)]
        result = _cmh(tables) if tables else _cmh([])
        surv, pruned = part[part["kept"]], part[~part["kept"]]
        rows.append({
            "task": task, "runs": part.groupby(["task", "seed"]).ngroups, "heads": len(part),
            "survivors": len(surv), "pruned": len(pruned), "het_survivors": int(surv["het"].sum()),
            "het_pruned": int(pruned["het"].sum()),
            "het_share_survivors": surv["het"].mean() if len(surv) else np.nan,
            "het_share_pruned": pruned["het"].mean() if len(pruned) else np.nan,
            "het_share_all": part["het"].mean() if len(part) else np.nan,
            "odds_ratio": result["odds_ratio"], "ci_low": result["ci_low"], "ci_high": result["ci_high"],
            "p_value": result["p_value"], "informative_strata": result["informative_strata"],
            "test": "Cochran-Mantel-Haenszel, strata = " + ("task x seed" if task == "pooled" else "seeds"),
            "note": "" if result["informative_strata"] else "not testable: " + _why_untestable(part),
        })
    return pd.DataFrame(rows, columns=columns)

def association_by_seed(heads: pd.DataFrame, weights: str = "finetuned") -> pd.DataFrame:
    """Fisher's exact test (two-sided) for each (task, seed) alone: sample odds ratio and p-value."""
    from scipy.stats import fisher_exact

    check_weights(weights)
    data = heads[(heads["weights"] == weights) & heads["kept"].notna()]
    rows = []
    for (task, seed), g in data.groupby(["task", "seed"], sort=False):
        table = _table2x2(g["kept"].astype(bool), g["type"] == "heterogeneous")
        row = {"task": task, "seed": seed, "survivors": int(table[0].sum()), "pruned": int(table[1].sum()),
               "het_survivors": int(table[0, 0]), "het_pruned": int(table[1, 0]), "odds_ratio": np.nan,
               "p_value": np.nan}
        if _informative(table):
            result = fisher_exact(table)
            row["odds_ratio"], row["p_value"] = float(result.statistic), float(result.pvalue)
        rows.append(row)
    return pd.DataFrame(rows, columns=["task", "seed", "survivors", "pruned", "het_survivors", "het_pruned",
                                       "odds_ratio", "p_value"])

def c10(plan, rules: PatternRules = DEFAULT_RULES, aggregate: str = "mean", weights: str = "finetuned") -> pd.DataFrame:
    """Claim C10 from a plan's result files: :func:`association` of :func:`head_table` (per task + pooled)."""
    return association(head_table(plan, rules, aggregate), weights)

def verdict(row: Mapping, alpha: float = 0.05) -> str:
    """One association row in words: 'not testable', 'no significant association', or the direction."""
    p, odds = row["p_value"], row["odds_ratio"]
    if not np.isfinite(p):
        return NOT_TESTABLE
    if p >= alpha:
        return NO_ASSOCIATION
    return MORE_HETEROGENEOUS if odds > 1 else LESS_HETEROGENEOUS

def c10_summary(plan, alpha: float = 0.05, **kwargs) -> dict:
    """The pooled row of :func:`c10` as a dict, plus ``verdict`` and ``agrees_with_paper`` (the paper reports
    no association: True when the pooled test is not significant at ``alpha``, None when not testable)."""
    return pooled_summary(c10(plan, **kwargs), alpha)

def pooled_summary(table: pd.DataFrame, alpha: float = 0.05) -> dict:
    """:func:`c10_summary` of a table :func:`c10` already computed."""
    pooled = {k: (v.item() if isinstance(v, np.generic) else v)
              for k, v in table[table["task"] == "pooled"].iloc[0].to_dict().items()}
    pooled["verdict"] = verdict(pooled, alpha)
    pooled["agrees_with_paper"] = None if pooled["verdict"] is NOT_TESTABLE else \
        pooled["verdict"] is NO_ASSOCIATION
    pooled["alpha"] = alpha
    return pooled

def _pct(x: float) -> str:
    return "n/a" if not np.isfinite(x) else f"{100 * x:.0f}%"

def p_text(p: float) -> str:
    """A p-value as text: "0.032", "3.2e-06", or "< 1e-16" where a double cannot tell it from 0."""
    if not np.isfinite(p):
        return "n/a"
    if p < 1e-16:
        return "< 1e-16"
    return f"{p:.2g}" if p >= 1e-3 else f"{p:.1e}"

def format_p(p: float) -> str:
    """"p = 0.032" (or "p < 1e-16") for prose."""
    text = p_text(p)
    return f"p {text}" if text.startswith("<") else f"p = {text}"

def association_sentence(table: pd.DataFrame, alpha: float = 0.05) -> str:
    """A sentence on the pooled row of :func:`association` and how many tasks agree, from the numbers."""
    if table.empty or "pooled" not in set(table["task"]) or not table.loc[table["task"] == "pooled", "heads"].iloc[0]:
        return ("The association between survival and heterogeneous patterns cannot be computed: no run has both "
                "attention statistics and an s-pruning mask yet.")
    pooled = table[table["task"] == "pooled"].iloc[0]
    tasks = table[table["task"] != "pooled"]
    verdicts = [verdict(r, alpha) for _, r in tasks.iterrows()]
    what = verdict(pooled, alpha)

    def part(label: str, none: str, count: int, share: float) -> str:
        return none if not count else f"{_pct(share)} of the {count} {label} heads are heterogeneous"

    runs = int(pooled["runs"])
    shares = (f"({runs} run{'s' if runs != 1 else ''}; heads counted once per run), "
              f"{part('surviving', 'no head survived', int(pooled['survivors']), pooled['het_share_survivors'])} and "
              f"{part('pruned', 'no head was pruned', int(pooled['pruned']), pooled['het_share_pruned'])}")
    if what is NOT_TESTABLE:
        why = pooled["note"][len("not testable: "):]
        return (f"Pooled over the tasks {shares}; the association cannot be tested ({why}), "
                "so these results neither support nor contradict the paper's claim (C10) that survivors are not "
                "more often heterogeneous.")
    ci = (f", 95% CI {pooled['ci_low']:.2f} to {pooled['ci_high']:.2f}" if np.isfinite(pooled["ci_low"]) else "")
    effect = f"Mantel-Haenszel odds ratio {pooled['odds_ratio']:.2f}{ci}, CMH {format_p(pooled['p_value'])}"
    n_sig = sum(v in (MORE_HETEROGENEOUS, LESS_HETEROGENEOUS) for v in verdicts)
    n_test = sum(v is not NOT_TESTABLE for v in verdicts)
    per_task = f" Per task, {n_sig} of {n_test} testable tasks show a significant association at {alpha:g}."
    if what is NO_ASSOCIATION:
        text = (f"Pooled over the tasks {shares} ({effect}): survivors are **not** significantly more (or less) "
                f"often heterogeneous at {alpha:g}, in line with the paper, which reports no association (C10).")
        ci_excludes_one = pooled["ci_low"] > 1 or pooled["ci_high"] < 1
        if np.isfinite(pooled["ci_low"]) and abs(alpha - 0.05) < 1e-12 and ci_excludes_one:
            text += (" The evidence is borderline, though: the 95% CI of the odds ratio (a Wald interval) excludes 1 "
                     "while the continuity-corrected test does not reach 0.05.")
        elif np.isfinite(pooled["ci_low"]):
            text += (f" A test that is not significant does not show that there is no association: the data are "
                     f"compatible with odds ratios from {pooled['ci_low']:.2f} to {pooled['ci_high']:.2f}.")
        return text + per_task
    direction = "more" if what is MORE_HETEROGENEOUS else "less"
    return (f"Pooled over the tasks {shares} ({effect}): survivors are significantly **{direction}** often "
            f"heterogeneous at {alpha:g}, " + ("unlike the paper, which reports no such association (C10)."
                                               if direction == "more" else
                                               "which the paper does not report (it reports no association, C10).")
            + per_task)

