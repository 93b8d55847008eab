"""The paper's figures rebuilt from the authors' published data (the chapter ``notebooks/figures/paper_*``).

Everything here reads the authors' files through :mod:`lotterylib.read.paper` (never the network: every loader is
called with ``allow_download=False``) and computes with the same :mod:`lotterylib.read.analysis` functions that
analyse our own runs. The only numbers typed in are in :data:`PAPER_PRINTED`: what the paper (or the
authors' own notebooks and scripts) printed, each with its source, quoted so that the pages can put our
recomputation beside it. Architecture constants of bert-base-uncased (:data:`BERT_BASE`) are model
configuration, not results.

Conventions (as in the paper and the authors' code): masks 1 = kept; a seed axis first; "std" is the sample
standard deviation over the five seeds (ddof = 1).
"""

from __future__ import annotations

import math
from itertools import combinations

import numpy as np
import pandas as pd

from lotterylib.read import analysis
from lotterylib.read.paper import (PAPER_COMMIT, PAPER_REPO, PAPER_SEEDS, PAPER_TASKS, TABLE2_TYPO, load_paper_masks,
                    load_paper_results, load_table2)
from lotterylib.model.structure import ModelStructure
from lotterylib.method.subnetworks import structured_weight_count

# --- what the paper and the authors printed ----------------------------------------------------------

AUTHORS_STATS_NOTEBOOK = (f"{PAPER_REPO}, experiment_analysis/statistics_on_pruning.ipynb at commit "
                          "529f8453680e4d8b9461892419a5cf4b5a2135b0, printed cell outputs (masks/heads_mlps)")
AUTHORS_SIZE_SCRIPT = (f"{PAPER_REPO}, the script that draws Figure 2 (experiment_analysis): "
                       "'task_weight_pct.append((total_after_prune / total_before_prune) - 0.21)' "
                       "with the comment 'Remove embedding %'")

#: Numbers printed by the paper, or by the authors' notebooks and scripts, quoted for comparison.
#: Each entry: ``value`` and ``source``. Nothing else on the chapter's pages is typed in.
PAPER_PRINTED: dict[str, dict] = {
    "kappa_range": {
        "value": (0.15, 0.32),
        "source": "paper, section 5.1: Fleiss' kappa of the 'good' s-pruning masks over the 5 seeds, range over tasks",
    },
    "fig1b_qnli_layer0": {
        "value": (1.0, 0.4, 0.4, 1.0, 0.6, 1.0, 0.6, 0.2, 1.0, 1.0, 0.8, 1.0),
        "source": "paper, Figure 1b (QNLI heads), layer 0, heads 0-11: share of the 5 seeds in which the head survives",
    },
    "table2_m_bad_cola": {
        "value": TABLE2_TYPO["printed"],
        "source": "paper, Table 2, row 'bad' subnetwork (m-pruning), column CoLA",
    },
    "fig2_size_offset": {
        "value": 0.21,
        "source": AUTHORS_SIZE_SCRIPT,
    },
    "c1_tasks_reaching_full": {
        "value": (8, 9),
        "source": "paper, section 4 and Figure 2b: re-fine-tuned m-pruned 'good' subnetworks reach the full model's "
                  "dev score on 8 of the 9 GLUE tasks",
    },
    "c5_tasks_m_smaller": {
        "value": (7, 9),
        "source": "paper, Figure 2 (subplot titles): m-pruning's good subnetworks keep fewer weights than "
                  "s-pruning's on 7 of the 9 tasks",
    },
    "authors_kappa_heads": {
        "value": {"CoLA": 0.22813420962464326, "MNLI": 0.2575725895259203, "MRPC": 0.21528139476292904,
                  "QNLI": 0.30152363649730873, "QQP": 0.19122512161909952, "RTE": 0.1799227762377962,
                  "SST-2": 0.32452024723070516, "STS-B": 0.22154005502120921, "WNLI": -0.25000037252910756},
        "source": AUTHORS_STATS_NOTEBOOK + ", cell 'fleiss_kappa_tasks_separate(heads)'",
    },
    "authors_kappa_heads_hans": {
        "value": 0.15001104022155096,
        "source": AUTHORS_STATS_NOTEBOOK + ", same cell, task HANS (masks found on HANS, not published)",
    },
    "authors_cochran_p_heads": {
        "value": {"CoLA": 2.113894110905964e-11, "MNLI": 0.39484537126862373, "MRPC": 0.013837912255726509,
                  "QNLI": 0.0329959709332481, "QQP": 2.970583205868185e-07, "RTE": 2.6922221869717934e-36,
                  "SST-2": 3.417832305517236e-08, "STS-B": 0.05786884035446416, "WNLI": 2.42151439227382e-123},
        "source": AUTHORS_STATS_NOTEBOOK + ", cell 'print_p_value_tasks_separate(heads)'",
    },
    "authors_similar_pairs_heads": {
        "value": {"CoLA": 3, "MNLI": 9, "MRPC": 7, "QNLI": 6, "QQP": 4, "RTE": 2, "SST-2": 2, "STS-B": 9,
                  "WNLI": 0},
        "source": AUTHORS_STATS_NOTEBOOK + ", same cell: 'Total mask pairs where Null hypothesis is not "
                  "rejected' (of 10)",
    },
    "authors_cochran_p_mlps": {
        "value": {"CoLA": 0.3232398928813502, "MNLI": 0.8224157057672481, "MRPC": 0.6833711942656508,
                  "QNLI": 0.9824769036935782, "QQP": 0.9735009788392561, "RTE": 0.25477265448360564,
                  "SST-2": 0.8979161202208832, "STS-B": 0.47205433276263287, "WNLI": float("nan")},
        "source": AUTHORS_STATS_NOTEBOOK + ", cell 'print_p_value_tasks_separate(mlps, mask=\"mlp_mask\")'",
    },
    "authors_similar_pairs_mlps": {
        "value": {"CoLA": 9, "MNLI": 10, "MRPC": 9, "QNLI": 10, "QQP": 10, "RTE": 9, "SST-2": 10, "STS-B": 10,
                  "WNLI": 0},
        "source": AUTHORS_STATS_NOTEBOOK + ", same cell (of 10)",
    },
}

#: The authors' figure code orders tasks alphabetically (``sorted(tasks)``), as in the paper's Figure 5.
FIG5_ORDER: tuple[str, ...] = tuple(sorted(PAPER_TASKS))


def data_statement() -> str:
    """One sentence naming the data every page of the chapter is built from."""
    return (f"Built from the authors' published data: `{PAPER_REPO}` at commit `{PAPER_COMMIT[:7]}` "
            f"(bert-base-uncased, {len(PAPER_TASKS)} GLUE tasks x {len(PAPER_SEEDS)} seeds "
            f"{', '.join(map(str, PAPER_SEEDS))}), read from the local copy; no network.")


def printed(key: str):
    """The value of one :data:`PAPER_PRINTED` entry."""
    return PAPER_PRINTED[key]["value"]


# --- masks ---------------------------------------------------------------------------------------

def paper_masks(variant: str = "heads_mlps", root=None, tasks=PAPER_TASKS) -> dict[str, dict]:
    """The authors' masks stacked over the 5 seeds, per task, from the local copy only."""
    return load_paper_masks(variant, tasks=tasks, root=root, allow_download=False)


def kept_per_seed(masks_by_task: dict) -> pd.DataFrame:
    """One row per (task, seed): heads, MLPs and components kept (of 144, 12 and 156 for bert-base)."""
    rows = []
    for task, m in masks_by_task.items():
        mlps = m["mlp_mask"] if m.get("mlp_mask") is not None else [None] * len(m["head_mask"])
        for seed, heads, mlp in zip(m["seeds"], m["head_mask"], mlps):
            c = analysis.kept_counts(heads, mlp)
            rows.append({"task": task, "seed": seed, "heads_kept": c["heads_kept"], "mlps_kept": c["mlps_kept"],
                         "components_kept": c["components_kept"]})
    return pd.DataFrame(rows, columns=["task", "seed", "heads_kept", "mlps_kept", "components_kept"])


def kept_table(kept: pd.DataFrame) -> pd.DataFrame:
    """Task x seed table of 'heads / MLPs' kept, with the mean and sample std over seeds."""
    cells = kept.assign(cell=kept["heads_kept"].astype(str) + " / " + kept["mlps_kept"].astype(str))
    wide = cells.pivot(index="task", columns="seed", values="cell")
    wide = wide.reindex(index=list(dict.fromkeys(kept["task"])), columns=list(dict.fromkeys(kept["seed"])))
    wide.columns = [f"seed {s}" for s in wide.columns]
    stats = kept.groupby("task", sort=False).agg(heads_mean=("heads_kept", "mean"), heads_std=("heads_kept", "std"),
                                                 mlps_mean=("mlps_kept", "mean"), mlps_std=("mlps_kept", "std"))
    wide["heads (mean ± std)"] = [f"{a:.1f} ± {b:.1f}" for a, b in zip(stats["heads_mean"], stats["heads_std"])]
    wide["MLPs (mean ± std)"] = [f"{a:.1f} ± {b:.1f}" for a, b in zip(stats["mlps_mean"], stats["mlps_std"])]
    wide.index.name = "task (heads / MLPs kept)"
    return wide


def survival_row_check(masks_by_task: dict, task: str = "QNLI", layer: int = 0) -> pd.DataFrame:
    """Our survival share of one layer's heads beside the paper's Figure 1b row (QNLI, layer 0)."""
    mean, std = analysis.survival_frequency(masks_by_task[task]["head_mask"])
    paper_row = np.asarray(printed("fig1b_qnli_layer0"), dtype=float)
    if (task, layer) != ("QNLI", 0):
        raise ValueError("the paper's printed Figure 1b row is QNLI, layer 0: call with task='QNLI', layer=0")
    return pd.DataFrame({"head": np.arange(len(paper_row)), "paper (Fig. 1b)": paper_row,
                         "ours": mean[layer], "ours std": std[layer],
                         "match": np.isclose(mean[layer], paper_row, atol=1e-9)})


def super_survivor_check(masks_by_task: dict, published_super: dict) -> pd.DataFrame:
    """Our super-survivors (kept in all 5 seeds) against the authors' ``heads_mlps_super`` masks."""
    rows = []
    for task, m in masks_by_task.items():
        heads, mlps = analysis.super_survivors(m["head_mask"]), analysis.super_survivors(m["mlp_mask"])
        pub = published_super[task]
        pub_heads, pub_mlps = pub["head_mask"][0], pub["mlp_mask"][0]
        same_every_seed = all(np.array_equal(pub["head_mask"][0], h) for h in pub["head_mask"])
        rows.append({"task": task, "heads (ours)": int(heads.sum()), "heads (published)": int(pub_heads.sum()),
                     "MLPs (ours)": int(mlps.sum()), "MLPs (published)": int(pub_mlps.sum()),
                     "same components": bool(np.array_equal(heads, pub_heads) and np.array_equal(mlps, pub_mlps)),
                     "published mask same in every seed folder": same_every_seed})
    return pd.DataFrame(rows)


# --- stability across seeds (section 5.1) ---------------------------------------------------------

UNITS = ("heads", "mlps", "heads+mlps")


def _units(m: dict, unit: str) -> np.ndarray:
    if unit == "heads":
        arr = m["head_mask"]
    elif unit == "mlps":
        arr = m["mlp_mask"]
    elif unit == "heads+mlps":
        arr = analysis.components(m["head_mask"], m["mlp_mask"])
    else:
        raise ValueError(f"unit {unit!r} is unknown: use one of {UNITS}")
    arr = np.asarray(arr)
    return arr.reshape(arr.shape[0], -1)


def stability_table(masks_by_task: dict, unit: str = "heads", alpha: float = 0.05) -> pd.DataFrame:
    """Per task: Fleiss' kappa and Cochran's Q over the seeds, and how many seed pairs count as similar.

    ``similar`` is our rule (pairwise Cochran's Q p-value > alpha; identical masks get p = 1). ``similar
    (authors' rule)`` is the authors' notebook: p >= alpha, where statsmodels returns nan for two identical
    masks (no component differs, 0/0), and nan >= alpha is False, so identical pairs never count.
    """
    rows = []
    for task, m in masks_by_task.items():
        x = _units(m, unit)
        pairs = analysis.pairwise_seed_tests(x, seeds=m["seeds"], alpha=alpha)
        identical = np.array([np.array_equal(x[i], x[j]) for i, j in combinations(range(len(x)), 2)])
        q = analysis.cochrans_q_over_seeds(x)
        rows.append({"task": task, "unit": unit, "components": x.shape[1], "seeds": x.shape[0],
                     "kappa": analysis.fleiss_kappa_over_seeds(x), "Q": q.statistic, "p": q.pvalue,
                     "pairs": len(pairs), "similar": int(pairs["similar"].sum()),
                     "identical pairs": int(identical.sum()),
                     "similar (authors' rule)": int(((pairs["pvalue"] >= alpha) & ~identical).sum()),
                     "mean Jaccard of similar pairs": float(pairs.loc[pairs["similar"], "jaccard"].mean())
                     if pairs["similar"].any() else float("nan"),
                     "mean Jaccard of all pairs": float(pairs["jaccard"].mean())})
    return pd.DataFrame(rows)


def pair_details(masks_by_task: dict, task: str, unit: str = "heads", alpha: float = 0.05) -> pd.DataFrame:
    """Every pair of seeds of one task: the pairwise test with the counts it actually compares.

    Cochran's Q for two seeds is McNemar's test without continuity correction: it only compares ``only a``
    (kept by seed a alone) with ``only b``; components kept by both never enter it.
    """
    m = masks_by_task[task]
    x = _units(m, unit).astype(bool)
    pairs = analysis.pairwise_seed_tests(x, seeds=m["seeds"], alpha=alpha)
    idx = list(combinations(range(len(x)), 2))
    pairs.insert(2, "kept a", [int(x[i].sum()) for i, _ in idx])
    pairs.insert(3, "kept b", [int(x[j].sum()) for _, j in idx])
    pairs.insert(4, "both", [int((x[i] & x[j]).sum()) for i, j in idx])
    pairs.insert(5, "only a", [int((x[i] & ~x[j]).sum()) for i, j in idx])
    pairs.insert(6, "only b", [int((~x[i] & x[j]).sum()) for i, j in idx])
    return pairs


def in_paper_range(kappa: float) -> bool:
    """Whether kappa, at the paper's two decimals, lies in the printed range 0.15-0.32."""
    lo, hi = printed("kappa_range")
    return bool(np.isfinite(kappa) and lo <= round(kappa, 2) <= hi)


def kappa_comparison(heads: pd.DataFrame, both: pd.DataFrame) -> pd.DataFrame:
    """Per task: our kappa (heads only, as the authors computed it; heads + MLPs), the authors' printed one,
    and whether ours lies in the paper's range. ``heads``/``both``: :func:`stability_table` for those units.
    """
    authors = printed("authors_kappa_heads")
    lo, hi = printed("kappa_range")
    out = pd.DataFrame({"task": heads["task"], "kappa, heads (ours)": heads["kappa"].to_numpy()})
    out["kappa, heads (authors' notebook)"] = [authors.get(t, float("nan")) for t in out["task"]]
    out["same as authors"] = np.isclose(out["kappa, heads (ours)"], out["kappa, heads (authors' notebook)"],
                                        atol=1e-6)
    out["kappa, heads + MLPs (ours)"] = both.set_index("task").loc[out["task"], "kappa"].to_numpy()
    out[f"heads in paper's {lo}-{hi}"] = [in_paper_range(k) for k in out["kappa, heads (ours)"]]
    out[f"heads + MLPs in paper's {lo}-{hi}"] = [in_paper_range(k) for k in out["kappa, heads + MLPs (ours)"]]
    out["verdict"] = ["match" if ok else "no match" for ok in out[f"heads in paper's {lo}-{hi}"]]
    return out


def authors_pairs_comparison(table: pd.DataFrame, unit: str) -> pd.DataFrame:
    """Our Cochran's Q p-values and similar-pair counts beside the authors' printed ones (heads or MLPs)."""
    key = {"heads": "heads", "mlps": "mlps"}.get(unit)
    if key is None:
        raise ValueError("the authors printed Cochran's Q for 'heads' and 'mlps' only")
    p_auth, n_auth = printed(f"authors_cochran_p_{key}"), printed(f"authors_similar_pairs_{key}")
    out = table[["task", "p", "similar", "identical pairs", "similar (authors' rule)"]].copy()
    out.insert(2, "p (authors' notebook)", [p_auth.get(t, float("nan")) for t in out["task"]])
    out["similar (authors' notebook)"] = [n_auth.get(t) for t in out["task"]]
    same_p = [(math.isnan(b) and not math.isnan(a)) or math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-300)
              for a, b in zip(out["p"], out["p (authors' notebook)"])]
    out["p same (nan: statsmodels 0/0)"] = same_p
    out["pairs same under authors' rule"] = out["similar (authors' rule)"] == out["similar (authors' notebook)"]
    return out


def degenerate_seeds(masks_by_task: dict, task: str = "WNLI") -> pd.DataFrame:
    """Kept counts of one task per seed, with whether the seed pruned everything or kept every head."""
    m = masks_by_task[task]
    heads, mlps = np.asarray(m["head_mask"]), np.asarray(m["mlp_mask"])
    return pd.DataFrame({"seed": m["seeds"], "heads kept": heads.reshape(len(heads), -1).sum(1).astype(int),
                         "MLPs kept": mlps.sum(1).astype(int),
                         "pruned everything": ~heads.reshape(len(heads), -1).any(1) & ~mlps.any(1),
                         "kept every head": heads.reshape(len(heads), -1).all(1)})


def kappa_one_dissenter(n_seeds: int) -> float:
    """Fleiss' kappa when every component is rated the same way by all seeds but one (the WNLI case).

    Each component: n-1 raters agree, 1 disagrees -> observed agreement P = ((n-1)(n-2)) / (n(n-1)) = (n-2)/n;
    category shares 1/n and (n-1)/n -> chance agreement Pe = (1 + (n-1)^2) / n^2; kappa = (P - Pe) / (1 - Pe).
    """
    p_obs = (n_seeds - 2) / n_seeds
    p_e = (1 + (n_seeds - 1) ** 2) / n_seeds ** 2
    return (p_obs - p_e) / (1 - p_e)


# --- overlap across tasks (Figure 5) --------------------------------------------------------------

def overlap_tables(masks_by_task: dict, order=FIG5_ORDER, n_perm: int = 1000, seed: int = 0) -> dict:
    """Figure 5 as the authors computed it, plus a chance level and a normalised version.

    Heads kept in both tasks, pairing runs with the same seed, mean and sample std over the seeds
    (``count``); the chance level re-places each run's survivors at random (``null_mean``, ``null_p95``);
    ``jaccard``: |a & b| / |a | b|, mean over seeds (nan where neither run keeps a head).
    """
    heads = {t: masks_by_task[t]["head_mask"] for t in order if t in masks_by_task}
    mean, std = analysis.overlap_matrix(heads, kind="count")
    null_mean, null_p95 = analysis.overlap_null_matrix(heads, n_perm=n_perm, seed=seed, kind="count")
    with np.errstate(invalid="ignore"):
        jac, jac_std = analysis.overlap_matrix(heads, kind="jaccard")
    return {"mean": mean, "std": std, "null_mean": null_mean, "null_p95": null_p95, "jaccard": jac,
            "jaccard_std": jac_std}


def overlap_pairs(tables: dict) -> pd.DataFrame:
    """One row per pair of different tasks (lower triangle): observed overlap against chance."""
    mean = tables["mean"]
    tasks = list(mean.index)
    rows = []
    for i, a in enumerate(tasks):
        for b in tasks[:i]:
            obs, null = mean.loc[a, b], tables["null_mean"].loc[a, b]
            rows.append({"pair": f"{a} / {b}", "shared heads (mean)": obs, "std": tables["std"].loc[a, b],
                         "chance mean": null, "chance 95th pct": tables["null_p95"].loc[a, b],
                         "observed / chance": obs / null if null > 0 else float("nan"),
                         "above chance": bool(obs > tables["null_p95"].loc[a, b]),
                         "Jaccard (mean)": tables["jaccard"].loc[a, b]})
    return pd.DataFrame(rows)


# --- Figure 2 from the published dev scores -------------------------------------------------------

#: (method, subnetwork, stage) -> (results setting of the real scores, setting the paper's figure drew).
#: The authors' Figure 2a code reads 'head_mlp_retrained' for "random subnetwork (retrained)".
FIG2_SERIES: dict[tuple[str, str, str], tuple[str, str]] = {
    ("s", "good", "pruned"): ("head_mlp", "head_mlp"),
    ("s", "good", "retrained"): ("head_mlp_retrained", "head_mlp_retrained"),
    ("s", "random", "pruned"): ("head_mlp_random", "head_mlp_random"),
    ("s", "random", "retrained"): ("head_mlp_random_retrained", "head_mlp_retrained"),
    ("s", "bad", "pruned"): ("head_mlp_bad_1", "head_mlp_bad_1"),
    ("s", "bad", "retrained"): ("head_mlp_bad_1_retrained", "head_mlp_bad_1_retrained"),
    ("m", "good", "pruned"): ("global_magnitude", "global_magnitude"),
    ("m", "good", "retrained"): ("global_magnitude_retrained", "global_magnitude_retrained"),
    ("m", "random", "pruned"): ("global_random", "global_random"),
    ("m", "random", "retrained"): ("global_random_retrained", "global_random_retrained"),
    ("m", "bad", "pruned"): ("global_bad", "global_bad"),
    ("m", "bad", "retrained"): ("global_bad_retrained", "global_bad_retrained"),
}


def _reported(setting: str, root) -> pd.DataFrame:
    df = load_paper_results(setting, root=root, allow_download=False)
    return df[df["reported"]].set_index("task")


def fig2_scores(root=None) -> pd.DataFrame:
    """One row per (task, method, subnetwork, stage): mean and sample std over the 5 seeds of the metric the
    paper reports, from the setting holding the real scores, plus what the paper's figure drew there.
    """
    cache: dict[str, pd.DataFrame] = {}
    rows = []
    for (method, sub, stage), (real, drawn) in FIG2_SERIES.items():
        for setting in (real, drawn):
            if setting not in cache:
                cache[setting] = _reported(setting, root)
        for task in PAPER_TASKS:
            r, d = cache[real].loc[task], cache[drawn].loc[task]
            rows.append({"task": task, "method": method, "subnetwork": sub, "stage": stage, "metric": r["metric"],
                         "mean": r["mean"], "std": r["std"], "setting": real,
                         "paper figure mean": d["mean"], "paper figure std": d["std"], "paper figure setting": drawn,
                         "paper figure differs": real != drawn})
    return pd.DataFrame(rows)


#: Super-survivors, re-fine-tuned: subnetwork -> results setting. The authors' random ("midling": components
#: neither always kept nor always pruned) and bad ("bizzaro": components pruned in every seed) were resized at
#: random to at most the super-survivor size: our ``resize="authors"`` option, not our default.
SUPER_SERIES: dict[str, str] = {"good": "head_mlp_super_retrained", "random": "head_mlp_super_midling_retrained",
                                "bad": "head_mlp_super_bizzaro_retrained"}


def super_scores(root=None) -> pd.DataFrame:
    """One row per (task, subnetwork) of the re-fine-tuned super-survivor variants (method ``super``): mean and
    sample std over the 5 seeds of the reported metric, and the setting it comes from."""
    rows = []
    for sub, setting in SUPER_SERIES.items():
        res = _reported(setting, root)
        rows += [{"task": task, "method": "super", "subnetwork": sub, "stage": "retrained",
                  "metric": res.loc[task, "metric"], "mean": res.loc[task, "mean"], "std": res.loc[task, "std"],
                  "setting": setting} for task in PAPER_TASKS]
    return pd.DataFrame(rows)


def fig2_reference(root=None) -> pd.DataFrame:
    """Per task: the full fine-tuned model (mean, sample std) and the majority-class baseline."""
    full, major = _reported("no_mask", root), _reported("freq_baseline", root)
    return pd.DataFrame({"task": list(PAPER_TASKS), "metric": [full.loc[t, "metric"] for t in PAPER_TASKS],
                         "full": [full.loc[t, "mean"] for t in PAPER_TASKS],
                         "full std": [full.loc[t, "std"] for t in PAPER_TASKS],
                         "majority": [major.loc[t, "mean"] for t in PAPER_TASKS]})


def fig2_paper_values(method: str = "s", root=None) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    """The paper's side of our Fig. 2 (:func:`lotterylib.report.plots.fig2_like_paper`): (per-bar scores, per-task
    reference) for ``method`` m, s (:func:`fig2_scores`) or super (:func:`super_scores`), and
    :func:`fig2_reference`; (None, None) where the authors' data is not in the local copy."""
    from lotterylib.read.paper import PaperDataNotFound

    try:
        scores = super_scores(root) if method == "super" else fig2_scores(root)
        return scores, fig2_reference(root)
    except (PaperDataNotFound, FileNotFoundError):
        return None, None


def fig2_wide(scores: pd.DataFrame, method: str) -> pd.DataFrame:
    """Task x (subnetwork, stage) table of 'mean ± std' for one method."""
    sub = scores[scores["method"] == method]
    cells = sub.assign(cell=[f"{m:.3f} ± {s:.3f}" for m, s in zip(sub["mean"], sub["std"])])
    wide = cells.pivot(index="task", columns=["subnetwork", "stage"], values="cell")
    cols = [(s, st) for s in ("good", "random", "bad") for st in ("pruned", "retrained")]
    return wide.reindex(index=list(PAPER_TASKS), columns=pd.MultiIndex.from_tuples(cols))


def random_retrained_check(scores: pd.DataFrame, reference: pd.DataFrame | None = None) -> pd.DataFrame:
    """s-pruning, re-fine-tuned: good, the real random scores, the random bar the paper's Figure 2a drew, and
    the verdict of the one comparison rule (METHOD.md section 9, :func:`lotterylib.report.scorecard.comparisons`: the
    same function the scorecard calls) on the published means and stds.

    ``reference``: :func:`fig2_reference` (read from the default folder when omitted).
    """
    from lotterylib.report.scorecard import comparisons

    reference = fig2_reference() if reference is None else reference
    summary = scores[scores["method"] == "s"].assign(n=len(PAPER_SEEDS))
    verdicts = comparisons(summary, reference.assign(n=len(PAPER_SEEDS)), claims=("C3",)).set_index("task")
    s = scores[(scores["method"] == "s") & (scores["stage"] == "retrained")].set_index(["task", "subnetwork"])
    rows = []
    for task in PAPER_TASKS:
        good, rand = s.loc[(task, "good")], s.loc[(task, "random")]
        v = verdicts.loc[task]
        rows.append({"task": task, "good": good["mean"], "good std": good["std"],
                     "random (real)": rand["mean"], "random std": rand["std"],
                     "random as drawn in Fig. 2a": rand["paper figure mean"],
                     "drawn bar = good bar": bool(np.isclose(rand["paper figure mean"], good["mean"])),
                     "random - good": rand["mean"] - good["mean"],
                     "gap (good - random)": v["gap"], "95 % low": v["low"], "95 % high": v["high"],
                     "tau": v["tau"], "n": int(v["n"]), "verdict": v["label"]})
    return pd.DataFrame(rows)


# --- subnetwork sizes -----------------------------------------------------------------------------

#: bert-base-uncased (the model of every published mask): configuration constants.
BERT_BASE = {"vocab_size": 30522, "max_position_embeddings": 512, "type_vocab_size": 2, "hidden_size": 768,
             "n_layers": 12, "n_heads": 12, "head_dim": 64, "intermediate_size": 3072}
#: Output units of the classifier per task (regression for STS-B, 3 classes for MNLI, else 2).
NUM_LABELS = {task: {"STS-B": 1, "MNLI": 3}.get(task, 2) for task in PAPER_TASKS}


def bert_base_structure() -> ModelStructure:
    """lotterylib's structure description of bert-base (no model needed)."""
    c = BERT_BASE
    return ModelStructure("bert", "bert.encoder.layer", c["n_layers"], c["n_heads"], c["head_dim"],
                          c["hidden_size"], c["intermediate_size"])


def bert_base_param_count(num_labels: int) -> int:
    """All parameters of BertForSequenceClassification (bert-base-uncased) with ``num_labels`` outputs.

    Embeddings (word, position, token type, LayerNorm) + 12 encoder layers + pooler + classifier;
    109,483,778 for two labels.
    """
    c = BERT_BASE
    h, f = c["hidden_size"], c["intermediate_size"]
    embeddings = (c["vocab_size"] + c["max_position_embeddings"] + c["type_vocab_size"]) * h + 2 * h
    layer = 4 * (h * h + h) + 2 * h + (h * f + f) + (f * h + h) + 2 * h  # Q, K, V, attn out, LN, MLP in/out, LN
    pooler = h * h + h
    return embeddings + c["n_layers"] * layer + pooler + (h * num_labels + num_labels)


def authors_removed_params(head_mask, mlp_mask) -> int:
    """Parameters the authors' code removes for an s-pruning mask (their Figure 2 size count).

    ``prune_heads`` (Hugging Face) drops a head's rows of Q, K, V (weights and biases) and its columns of the
    attention output weight; their ``prune_mlp`` drops the layer's intermediate and output dense layers
    (weights and biases).
    """
    c = BERT_BASE
    h, d, f = c["hidden_size"], c["head_dim"], c["intermediate_size"]
    heads, mlps = np.asarray(head_mask) > 0, np.asarray(mlp_mask) > 0
    per_head = 3 * (d * h + d) + h * d
    per_mlp = h * f + f + f * h + h
    return int(per_head * (~heads).sum() + per_mlp * (~mlps).sum())


def paper_size_convention(head_mask, mlp_mask, num_labels: int = 2) -> float:
    """The paper's "% of weights" of an s-pruning mask, as its Figure 2 titles compute it:
    (parameters left / all parameters of the classification model) - 0.21 (the authors' embedding share).
    """
    total = bert_base_param_count(num_labels)
    return (total - authors_removed_params(head_mask, mlp_mask)) / total - printed("fig2_size_offset")


def s_sizes(masks_by_task: dict) -> pd.DataFrame:
    """One row per (task, seed): the size of the s-pruning subnetwork in four units.

    ``paper %``: the paper's convention (:func:`paper_size_convention`); ``heads``, ``MLPs``, ``heads+MLPs``:
    share kept; ``prunable weights``: share of the m-prunable encoder weights kept
    (:func:`lotterylib.method.subnetworks.structured_weight_count` on bert-base).
    """
    structure = bert_base_structure()
    rows = []
    for task, m in masks_by_task.items():
        for seed, heads, mlps in zip(m["seeds"], m["head_mask"], m["mlp_mask"]):
            kept, total = structured_weight_count(structure, heads, mlps)
            c = analysis.kept_counts(heads, mlps)
            rows.append({"task": task, "seed": seed,
                         "paper %": paper_size_convention(heads, mlps, NUM_LABELS[task]),
                         "heads": c["heads_share"], "MLPs": c["mlps_share"], "heads+MLPs": c["components_share"],
                         "prunable weights": kept / total})
    return pd.DataFrame(rows)


def size_summary(sizes: pd.DataFrame) -> pd.DataFrame:
    """Per task: mean and sample std over seeds of every size unit (percent)."""
    units = ["paper %", "prunable weights", "heads", "MLPs", "heads+MLPs"]
    g = sizes.groupby("task", sort=False)[units]
    mean, std = g.mean() * 100, g.std() * 100
    out = pd.DataFrame(index=mean.index)
    out["paper's title: % of weights"] = [f"{m:.0f}% (std {s:.0f}%)" for m, s in zip(mean["paper %"], std["paper %"])]
    for unit, label in (("prunable weights", "prunable encoder weights kept"), ("heads", "heads kept"),
                        ("MLPs", "MLPs kept"), ("heads+MLPs", "heads + MLPs kept")):
        out[label] = [f"{m:.1f}% ± {s:.1f}" for m, s in zip(mean[unit], std[unit])]
    return out


def size_anchors() -> pd.DataFrame:
    """What the paper's unit says for the full encoder and for an encoder with nothing left (2 labels)."""
    structure = bert_base_structure()
    shape = (BERT_BASE["n_layers"], BERT_BASE["n_heads"])
    rows = []
    for name, heads, mlps in (("every head and MLP kept", np.ones(shape), np.ones(shape[0])),
                              ("no head and no MLP kept", np.zeros(shape), np.zeros(shape[0]))):
        kept, total = structured_weight_count(structure, heads, mlps)
        rows.append({"subnetwork": name, "paper's % of weights": 100 * paper_size_convention(heads, mlps, 2),
                     "prunable encoder weights kept (%)": 100 * kept / total})
    return pd.DataFrame(rows)


def subnetwork_head_counts(root=None) -> pd.DataFrame:
    """Mean heads and MLPs kept by the published good, random and bad masks (random is Bernoulli)."""
    rows = []
    for name, variant in (("good", "heads_mlps"), ("random", "heads_mlps_random"), ("bad", "heads_mlps_bad_1")):
        kept = kept_per_seed(paper_masks(variant, root))
        g = kept.groupby("task", sort=False)
        for task, heads_mean, heads_std, mlps_mean in zip(g.groups, g["heads_kept"].mean(), g["heads_kept"].std(),
                                                            g["mlps_kept"].mean()):
            rows.append({"task": task, "subnetwork": name, "heads kept": f"{heads_mean:.1f} ± {heads_std:.1f}",
                         "MLPs kept": f"{mlps_mean:.1f}"})
    out = pd.DataFrame(rows).pivot(index="task", columns="subnetwork", values=["heads kept", "MLPs kept"])
    return out.reindex(index=list(PAPER_TASKS), columns=pd.MultiIndex.from_product(
        [["heads kept", "MLPs kept"], ["good", "random", "bad"]]))


# --- Table 2 --------------------------------------------------------------------------------------

TABLE2_SOURCES = {"bad_subnetwork_s_pruning": "head_mlp_bad_1_retrained",
                  "bad_subnetwork_m_pruning": "global_bad_retrained"}


def _truncate(x: float, digits: int = 2) -> float:
    """Truncate toward zero at ``digits`` decimals (Table 2 prints truncated values)."""
    factor = 10 ** digits
    return math.floor(x * factor + 1e-9) / factor if x >= 0 else -math.floor(-x * factor + 1e-9) / factor


def table2_check(root=None) -> pd.DataFrame:
    """The two 'bad' rows of Table 2: printed cells against the results files, truncated to 2 decimals.

    Rows: model x task. ``results`` is the mean over seeds in the file named by :data:`TABLE2_SOURCES`.
    """
    table = load_table2(root)
    rows = []
    for model, setting in TABLE2_SOURCES.items():
        res = _reported(setting, root)
        printed_row = table.set_index("model").loc[model]
        for task in PAPER_TASKS:
            value = float(res.loc[task, "mean"])
            rows.append({"model": model, "task": task, "printed": float(printed_row[task]), "results file": value,
                         "truncated": _truncate(value), "match": math.isclose(_truncate(value),
                                                                              float(printed_row[task]))})
    return pd.DataFrame(rows)


def table2_averages(root=None) -> pd.DataFrame:
    """Printed 'average' of the two 'bad' rows against the mean of the results files, with the typo and without."""
    table = load_table2(root).set_index("model")
    rows = []
    for model, setting in TABLE2_SOURCES.items():
        res = _reported(setting, root)
        values = {t: float(res.loc[t, "mean"]) for t in PAPER_TASKS}
        row = {"model": model, "printed average": float(table.loc[model, "average"]),
               "mean of results files": float(np.mean(list(values.values())))}
        if model == TABLE2_TYPO["model"]:
            with_typo = dict(values, **{TABLE2_TYPO["column"]: TABLE2_TYPO["printed"]})
            row["mean with the printed 0.24"] = float(np.mean(list(with_typo.values())))
        rows.append(row)
    return pd.DataFrame(rows)


def marked_table2(corrected: pd.DataFrame) -> pd.DataFrame:
    """The corrected Table 2 as strings, the corrected cell shown as 'value (printed: 0.24)'."""
    out = corrected.drop(columns="corrected").copy()
    for col in out.columns[1:]:
        out[col] = out[col].map(lambda v: f"{v:.2f}")
    col = TABLE2_TYPO["column"]
    for i in corrected.index[corrected["corrected"]]:
        out.loc[i, col] = f"{corrected.loc[i, col]:.4f} (printed: {TABLE2_TYPO['printed']:.2f}) *"
    return out
