"""The scorecard's rules: each verdict follows its written rule, flips when the data does, and the paper's own
published data passes through the same rules."""

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lotterylib.report import scorecard as sc
from lotterylib.read.compare import ON_PAR, WORSE


def _reference(full=(0.8, 0.9, 0.7), majority=(0.5, 0.5, 0.5), tasks=("A", "B", "C")):
    return pd.DataFrame({"task": list(tasks), "metric": "acc", "full": list(full)[:len(tasks)], "full std": 0.01,
                         "majority": list(majority)[:len(tasks)], "n": 5})


def _summary(cells: dict, tasks=("A", "B", "C"), std=0.02, n=5, sizes=None):
    """cells: {(method, sub, stage): score as a fraction of the task's full score}."""
    ref = _reference(tasks=tasks).set_index("task")
    rows = []
    for task in tasks:
        for (method, sub, stage), frac in cells.items():
            size = (sizes or {}).get((method, sub, stage), np.nan)
            rows.append({"task": task, "method": method, "subnetwork": sub, "stage": stage,
                         "mean": frac * ref.loc[task, "full"], "std": std, "n": n, "size": size})
    return pd.DataFrame(rows)


def test_c1_reaching_the_full_model_is_on_par_by_the_comparison_rule():
    cells = {("m", "good", "pruned"): 0.92, ("m", "good", "retrained"): 0.97}
    finding = sc.c1(_summary(cells), _reference())
    assert finding.verdict == sc.HOLDS and (finding.table["verdict"] == ON_PAR).all()
    cells[("m", "good", "retrained")] = 0.6  # 40 % below the full model: worse, not on par
    finding = sc.c1(_summary(cells), _reference())
    assert finding.verdict == sc.FAILS and "0 of 3" in finding.evidence
    assert (finding.table["verdict"] == WORSE).all()


def test_untrained_tasks_are_not_testable_and_too_few_tasks_give_no_verdict():
    cells = {("m", "good", "pruned"): 0.92, ("m", "good", "retrained"): 0.97}
    ref = _reference(full=(0.8, 0.4, 0.3))  # B and C do not beat the majority baseline
    finding = sc.c1(_summary(cells), ref)
    assert finding.verdict == sc.UNTESTABLE
    assert finding.table.set_index("task")["ok"].isna().tolist() == [False, True, True]


def test_c2_ordering_and_c3_on_par_follow_the_comparison_rule_and_need_their_seeds():
    order = {("m", "good", "retrained"): 1.0, ("m", "random", "retrained"): 0.8, ("m", "bad", "retrained"): 0.5}
    assert sc.c2(_summary(order), _reference()).verdict == sc.HOLDS
    order[("m", "random", "retrained")] = 1.0  # random on par with good: not worse
    finding = sc.c2(_summary(order), _reference())
    assert finding.verdict == sc.FAILS and "m random vs m good: on par" in finding.evidence
    on_par = {("s", "good", "retrained"): 1.0, ("s", "random", "retrained"): 0.99}
    assert sc.c3(_summary(on_par), _reference()).verdict == sc.HOLDS
    on_par[("s", "random", "retrained")] = 0.5
    assert sc.c3(_summary(on_par), _reference()).verdict == sc.FAILS
    noisy = sc.c3(_summary({**on_par, ("s", "random", "retrained"): 0.92}, std=0.2), _reference())
    assert noisy.verdict == sc.FAILS and "inconclusive at 5 seeds" in noisy.evidence
    finding = sc.c3(_summary(on_par, n=1, std=np.nan), _reference())
    assert finding.verdict == sc.UNTESTABLE and finding.table["note"].str.contains("2 needed").all()


def test_c4_needs_all_three_parts_and_c5_compares_sizes():
    ref = _reference(majority=(0.2, 0.2, 0.2))
    cells = {("m", "good", "retrained"): 1.0, ("m", "bad", "retrained"): 0.5,
             ("s", "good", "retrained"): 1.0, ("s", "bad", "retrained"): 0.8}
    assert sc.c4(_summary(cells), ref).verdict == sc.HOLDS
    cells[("s", "bad", "retrained")] = 0.3  # below m-bad
    finding = sc.c4(_summary(cells), ref)
    assert finding.verdict == sc.FAILS and "m-bad worse than s-bad on 0 of 3" in finding.evidence
    sizes = {("m", "good", "pruned"): 0.3, ("s", "good", "pruned"): 0.6}
    assert sc.c5(_summary({k: 1.0 for k in sizes}, sizes=sizes), _reference()).verdict == sc.HOLDS
    sizes = {("m", "good", "pruned"): 0.7, ("s", "good", "pruned"): 0.6}
    assert sc.c5(_summary({k: 1.0 for k in sizes}, sizes=sizes), _reference()).verdict == sc.FAILS


def test_c6_share_of_low_importance():
    low = pd.DataFrame({"task": "A", "seed": 1, "step": np.repeat([1, 2], 10), "kind": "head",
                        "score": np.tile(np.r_[np.full(8, 0.1), 0.9, 1.0], 2)})
    assert sc.c6(low).verdict == sc.HOLDS
    assert sc.c6(low.assign(score=1 - low["score"])).verdict == sc.FAILS
    assert sc.c6(low.iloc[:0]).verdict == sc.UNTESTABLE


def _masks(n_tasks=3, seeds=5, layers=6, heads=12, rng=None, shared=None, keep=0.5):
    rng = rng or np.random.default_rng(0)
    out = {}
    for t in range(n_tasks):
        h = rng.random((seeds, layers, heads)) < keep
        if shared is not None:
            h = h | shared
        out[f"T{t}"] = {"head_mask": h.astype(float), "mlp_mask": (rng.random((seeds, layers)) < 0.7).astype(float)}
    return out


def test_c7_depth_rules():
    m = _masks()
    for v in m.values():
        v["head_mask"][:, 4:] = 0  # the last third keeps no head
        v["mlp_mask"][:] = 0
        v["mlp_mask"][:, 2:4] = 1  # only the middle MLPs survive
    assert sc.c7(m).verdict == sc.HOLDS
    for v in m.values():
        v["mlp_mask"][:] = 1 - v["mlp_mask"]
    finding = sc.c7(m)
    assert finding.verdict == sc.FAILS and "MLPs: middle > early and late on 0 of 3" in finding.evidence


def test_c8_stability_and_c9_overlap_against_chance():
    rng = np.random.default_rng(1)
    unstable = _masks(rng=rng)
    assert sc.c8(unstable).verdict == sc.HOLDS  # independent seeds: kappa near 0
    stable = {t: {"head_mask": np.repeat(v["head_mask"][:1], 5, 0), "mlp_mask": v["mlp_mask"]}
              for t, v in unstable.items()}
    assert sc.c8(stable).verdict == sc.FAILS  # identical seeds: kappa 1
    assert sc.c9(_masks(rng=rng), n_perm=200).verdict == sc.FAILS  # independent tasks: chance overlap
    shared = np.zeros((5, 6, 12), dtype=bool)
    shared[:, :, :4] = True
    assert sc.c9(_masks(rng=rng, shared=shared, keep=0.2), n_perm=200).verdict == sc.HOLDS
    assert sc.c9({"T0": unstable["T0"]}).verdict == sc.UNTESTABLE


PAPER = Path(__file__).resolve().parents[2] / "shared" / "paper_reference"


@pytest.mark.skipif(not (Path(os.environ.get("LOTTERY_PAPER_DIR", PAPER)) / "masks").is_dir(),
                    reason="the authors' data is absent: set LOTTERY_PAPER_DIR or provide ../shared/paper_reference")
def test_the_papers_data_through_the_same_rules(monkeypatch):
    monkeypatch.setenv("LOTTERY_OFFLINE", "1")
    ps, pr = sc.paper_summary(), sc.paper_reference()
    assert sc.testable_tasks(pr) == ["CoLA", "SST-2", "MRPC", "QQP", "STS-B", "MNLI", "QNLI", "RTE"]  # not WNLI
    c2 = sc.c2(ps, pr)  # bad is within 10 % of random on SST-2 and MRPC: on par, not worse
    assert c2.verdict == sc.FAILS and "MRPC (m bad vs m random: on par)" in c2.evidence
    assert not c2.table["paired"].any() and (c2.table["n"] == 5).all()
    assert sc.c1(ps, pr).verdict == sc.HOLDS
    masks = sc._paper_masks()
    c8 = sc.c8(masks, sc.testable_tasks(pr))
    assert c8.table["kappa"].round(2).between(0.15, 0.32).all()  # the printed range
    assert sc.paper_importance(masks)["step"].eq("final").all()


@pytest.mark.parametrize("said,verdict", [("NO_ASSOCIATION", sc.HOLDS), ("LESS_HETEROGENEOUS", sc.HOLDS),
                                          ("MORE_HETEROGENEOUS", sc.FAILS), ("NOT_TESTABLE", sc.UNTESTABLE)])
def test_c10_verdict_follows_the_association_test(monkeypatch, said, verdict):
    """The association's outcome is a constant of pattern_stats, compared by identity (no matched text)."""
    from lotterylib.read import pattern_stats

    summary = {"verdict": getattr(pattern_stats, said), "het_share_survivors": 0.7, "het_share_pruned": 0.3, "survivors": 50, "pruned": 22,
               "runs": 1, "odds_ratio": 5.0, "p_value": 0.01, "note": "not testable: every head was pruned"}
    monkeypatch.setattr(pattern_stats, "c10", lambda plan: pd.DataFrame())
    monkeypatch.setattr(pattern_stats, "pooled_summary", lambda table, alpha=0.05: summary)
    finding = sc.c10("smoke")
    assert finding.verdict is verdict and isinstance(finding.verdict, sc.Verdict)
    if verdict != sc.UNTESTABLE:
        assert "70% of 50 surviving" in finding.evidence and "(1 run)" in finding.evidence


def test_a_search_that_removed_nothing_makes_its_task_untestable():
    cells = {("m", "good", "pruned"): 1.0, ("m", "good", "retrained"): 1.0, ("m", "random", "retrained"): 1.0,
             ("m", "bad", "retrained"): 1.0}
    nothing = {("m", "good", "pruned"): 1.0}  # size: every weight kept
    finding = sc.c2(_summary(cells, sizes=nothing), _reference())
    assert finding.verdict == sc.UNTESTABLE and finding.table["note"].str.contains("removed nothing").all()
    some = {("m", "good", "pruned"): 0.6}
    assert sc.c2(_summary(cells, sizes=some), _reference()).verdict == sc.FAILS  # equal means: no ordering


# --- testability, the comparison rule on published summaries, one function for every page ---------------------

def test_testability_needs_the_full_model_beyond_its_seed_spread_and_no_constant_good_runs():
    low, ok = sc.beats_majority(0.557, 0.014, 5, 0.527)  # our RTE: 0.557 - 2.776 x 0.014 / sqrt(5) = 0.540
    assert ok and low == pytest.approx(0.557 - 2.7764451 * 0.014 / 5 ** 0.5)
    assert not sc.beats_majority(0.54, 0.03, 5, 0.527)[1]  # above the baseline, but within the spread
    assert not sc.beats_majority(0.9, float("nan"), 1, 0.5)[1]  # one seed: no spread to judge by
    ref = _reference(full=(0.8, 0.52, 0.7)).assign(**{"full std": [0.01, 0.03, 0.01]})
    t = sc.testability(ref, constant={"C": "s good: 1 of 5 (seed 86; inferred)"}).set_index("task")
    assert t["testable"].tolist() == [True, False, False]
    assert "beyond its seed spread" in t.loc["B", "why"] and "constant good" in t.loc["C", "why"]
    assert sc.testable_tasks(ref, {"C": "x"}) == ["A"]
    # a claim judged on a given task list leaves the others out, saying so
    cells = {("m", "good", "pruned"): 0.92, ("m", "good", "retrained"): 0.97}
    finding = sc.c1(_summary(cells), _reference(), testable=["A", "B"])
    assert finding.table.set_index("task")["ok"].isna().tolist() == [False, False, True]


def test_compare_summary_is_the_welch_interval_of_independent_runs():
    from scipy import stats

    c = sc.compare_summary(0.80, 0.03, 0.70, 0.04, 5)
    a, b = 0.03 ** 2 / 5, 0.04 ** 2 / 5
    df = (a + b) ** 2 / (a ** 2 / 4 + b ** 2 / 4)
    half = stats.t.ppf(0.975, df) * (a + b) ** 0.5  # hypot(0.03, 0.04) / sqrt(5)
    assert c.n == 5 and c.gap == pytest.approx(0.10) and c.tau == pytest.approx(0.08)
    assert (c.low, c.high) == (pytest.approx(0.10 - half), pytest.approx(0.10 + half))
    assert c.verdict == "inconclusive" and c.other_mean == pytest.approx(0.70)
    assert sc.compare_summary(0.8, 0.01, 0.5, 0.01, 5).verdict == WORSE
    assert sc.compare_summary(0.8, 0.01, 0.79, 0.01, 5).verdict == ON_PAR
    assert sc.compare_summary(0.8, np.nan, 0.79, 0.01, 1).n == 1


def test_paired_runs_and_summaries_go_through_the_same_rule():
    rows = [{"task": "A", "seed": s, "method": m, "subnetwork": sub, "stage": "retrained", "score": v}
            for s, (g, r) in enumerate([(0.80, 0.79), (0.82, 0.80), (0.81, 0.81)])
            for m, sub, v in (("s", "good", g), ("s", "random", r))]
    runs = pd.DataFrame(rows)
    ref = _reference(tasks=("A",))
    paired = sc.comparisons(sc.summarize_runs(runs), ref, ("C3",), runs).iloc[0]
    from lotterylib.read.compare import compare

    direct = compare([0.80, 0.82, 0.81], [0.79, 0.80, 0.81])
    assert paired["paired"] and paired["verdict"] == direct.verdict and paired["high"] == pytest.approx(direct.high)


def test_the_scorecard_and_the_paper_subnetworks_page_give_identical_verdicts():
    """Both call scorecard.comparisons: the paper page's C3 check and the scorecard's C3 on one table."""
    from lotterylib.report import paper_figures as pf

    tasks = ("A", "B", "C")
    ref = _reference(tasks=tasks)
    stds = {"A": (0.01, 0.01), "B": (0.01, 0.2), "C": (0.01, 0.01)}
    means = {"A": (0.80, 0.79), "B": (0.90, 0.80), "C": (0.70, 0.40)}
    rows = []
    for t in tasks:
        for sub, i in (("good", 0), ("random", 1)):
            for stage in ("pruned", "retrained"):
                rows.append({"task": t, "method": "s", "subnetwork": sub, "stage": stage, "mean": means[t][i],
                             "std": stds[t][i], "paper figure mean": means[t][0], "paper figure std": stds[t][0]})
    scores = pd.DataFrame(rows)
    summary = scores.assign(n=5, size=np.nan)
    card = sc.c3(summary, ref).table.set_index("task")["label"]
    import lotterylib.report.paper_figures as module

    saved = module.PAPER_TASKS
    module.PAPER_TASKS = tasks
    try:
        page = pf.random_retrained_check(scores, ref.drop(columns="n")).set_index("task")["verdict"]
    finally:
        module.PAPER_TASKS = saved
    assert page.to_dict() == card.to_dict() == {"A": "on par", "B": "inconclusive at 5 seeds", "C": "worse"}


def test_side_by_side_tables_show_numbers_and_reasons_never_nan():
    runs = pd.DataFrame([{"task": "A", "seed": s, "method": "s", "subnetwork": sub, "stage": "retrained",
                          "score": v} for s, v in enumerate((0.8, 0.82, 0.81)) for sub in ("good",)])
    ref = _reference(tasks=("A", "B"))
    ours = sc.comparisons(sc.summarize_runs(runs), ref, ("C3",), runs).assign(side="ours")
    cells = {("s", "good", "retrained"): 1.0, ("s", "random", "retrained"): 0.99}
    paper = sc.comparisons(_summary(cells, tasks=("A", "B")), ref, ("C3",)).assign(side="paper")
    test = pd.concat([sc.testability(ref).assign(side=s) for s in ("ours", "paper")])
    view = sc.side_by_side(pd.concat([ours, paper]), testable=test)
    text = view.to_string()
    assert "nan" not in text.lower() and "no paired runs yet" in text and "no runs yet" in text
    row = view.set_index("task").loc["A"]
    assert row["paper: verdict"] == "on par (as claimed)" and row["paper: n"] == "5"
    assert len(row["paper: gap [95 % interval]"].split("[")[1].split(",")[0].strip()) == len("-0.000")
    table = sc.claim_table(sc.c3(_summary(cells, tasks=("A", "B")), ref))
    assert "nan" not in table.to_string().lower() and list(table.columns)[0] == "task"


def test_book_tables_hide_the_index_and_escape_text():
    from lotterylib.report import plots

    html = plots.table(pd.DataFrame({"evidence": ["kappa <= 0.4; p < 1e-16"], "x": [0.12345]})).to_html()
    assert "&lt;= 0.4" in html and "0.123" in html and "0.12345" not in html
    assert sc._num(-0.0004) == "0.000"


def test_verdicts_are_an_enum_and_printed_paper_numbers_are_not_coloured_as_same_rule():
    assert sc.HOLDS is sc.Verdict.HOLDS and str(sc.FAILS) == "does not hold"
    results = {"C5": {"ours": sc.Finding(sc.HOLDS, "3 of 4"), "paper": sc.paper_c5()},
               "C8": {"ours": sc.Finding(sc.FAILS, "x"), "paper": sc.Finding(sc.HOLDS, "y")}}
    card = sc.card(results).set_index("claim")
    assert card.loc["C5", "paper verdict"].startswith("printed: ")  # no verdict colour under "same rule"
    assert card.loc["C5", "paper's data, same rule"].startswith("rule not applicable")
    assert card.loc["C8", "paper verdict"] == sc.HOLDS


def test_claim_tables_format_p_values_and_say_why_a_cell_is_empty():
    t = pd.DataFrame({"task": ["A", "B"], "seeds": [5, 5], "kappa": [0.31, np.nan], "Cochran's Q": [27.44075, np.nan],
                      "p": [0.00002, np.nan], "ok": [True, np.nan], "note": ["", "one seed"]})
    shown = sc.claim_table(sc.Finding(sc.HOLDS, "", t))
    assert "p (Cochran's Q)" in shown.columns and "Fleiss' kappa (heads)" in shown.columns
    assert shown["p (Cochran's Q)"].iloc[0] == "< 0.001" and shown["Cochran's Q (heads)"].iloc[0] == "27.4"
    assert shown["Fleiss' kappa (heads)"].iloc[1] == "not computed: one seed"
    assert shown["rule met"].iloc[1] == "not counted: one seed"
    assert not shown.isin(["nan", ""]).drop(columns="note").any().any()


def test_a_counted_row_without_a_note_does_not_read_as_not_computed():
    # _per_task writes a note only for rows it leaves out, so a counted row's note is NaN in the table
    t = pd.DataFrame({"task": ["A", "B"], "testable": [True, False], "m kept": [0.4, 0.3], "s kept": [0.5, 0.2],
                      "ok": [True, np.nan], "note": [np.nan, "not testable on both sides"]})
    shown = sc.claim_table(sc.Finding(sc.HOLDS, "", t))
    assert shown["note"].tolist() == ["", "not testable on both sides"]
    assert shown["rule met"].tolist() == ["yes", "not counted: not testable on both sides"]


def test_a_claim_whose_runs_the_grid_has_not_computed_is_pending_not_untestable(tmp_path, monkeypatch):
    from lotterylib.store import layout as L

    monkeypatch.setenv("LOTTERY_RESULTS", str(tmp_path))
    untestable = sc.Finding(sc.UNTESTABLE, "1 testable task with the results this rule needs (2 needed)")

    def write(task, seed, method, sub):
        path = L.retrain_file("smoke", task, seed, method, sub)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("{}")

    for seed in (1337, 42):
        write("MRPC", seed, "s", "good")
    write("MRPC", 1337, "s", "random")
    assert sc.expected_retrains("smoke", "C3", ["MRPC"]) == (3, 4)  # s good and s random x 2 seeds
    pending = sc._pending("smoke", "C3", untestable, ["MRPC"])
    assert pending.verdict is sc.PENDING and "3 of the 4 re-fine-tunes" in pending.evidence
    assert untestable.evidence in pending.evidence  # what the runs on file show so far
    # a verdict on part of the grid is not the predeclared test: it waits for the rest too
    assert sc._pending("smoke", "C3", sc.Finding(sc.HOLDS, "x"), ["MRPC"]).verdict is sc.PENDING
    write("MRPC", 42, "s", "random")
    assert sc._pending("smoke", "C3", untestable, ["MRPC"]) is untestable  # the grid is complete: a real limit
    holds = sc.Finding(sc.HOLDS, "x")
    assert sc._pending("smoke", "C3", holds, ["MRPC"]) is holds

    rows = [sc.ClaimRow("C2", "", "", "", None, False, "", sc.PENDING, "", ""),
            sc.ClaimRow("C3", "", "", "", None, False, "", sc.HOLDS, "", "")]
    assert sc.tally_text(rows) == "1 of 2 claims holds, 0 do not, 1 is not yet computed"
