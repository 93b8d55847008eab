"""The pages on the authors' published data (``paper_survivors``, ``paper_overlap``, ``paper_stability``,
``paper_subnetworks``)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from lotterylib.config.plans import Plan
from lotterylib.read import analysis, collect
from lotterylib.report.views._common import (
    _cached,
    _masks,
    _paper_masks,
    _plan_name,
    _say,
    _scores,
)
from lotterylib.report.views.subnetworks import _against_good, _both_sides


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
