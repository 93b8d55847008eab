"""The scorecard's rules: each verdict follows its written rule, flips when the data does, and the paper's own
published data passes through the same rules."""

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lotterylib import scorecard as sc


def _reference(full=(0.8, 0.9, 0.7), majority=(0.5, 0.5, 0.5), tasks=("A", "B", "C")):
    return pd.DataFrame({"task": list(tasks), "metric": "acc", "full": list(full), "full std": 0.01,
                         "majority": list(majority), "n": 5})


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


def test_c1_reaching_the_full_model_follows_the_95_percent_rule():
    cells = {("m", "good", "pruned"): 0.92, ("m", "good", "retrained"): 0.97}
    assert sc.c1(_summary(cells), _reference()).verdict == sc.HOLDS
    cells[("m", "good", "retrained")] = 0.93
    finding = sc.c1(_summary(cells), _reference())
    assert finding.verdict == sc.FAILS and "0 of 3" in finding.evidence


def test_untrained_tasks_are_not_testable_and_too_few_tasks_give_no_verdict():
    cells = {("m", "good", "pruned"): 0.92, ("m", "good", "retrained"): 0.97}
    ref = _reference(full=(0.8, 0.4, 0.3))  # B and C do not beat the majority baseline
    finding = sc.c1(_summary(cells), ref)
    assert finding.verdict == sc.UNTESTABLE
    assert finding.table.set_index("task")["ok"].isna().tolist() == [False, True, True]


def test_c2_ordering_and_c3_on_par_need_their_seeds():
    order = {("m", "good", "retrained"): 1.0, ("m", "random", "retrained"): 0.9, ("m", "bad", "retrained"): 0.7}
    assert sc.c2(_summary(order), _reference()).verdict == sc.HOLDS
    order[("m", "random", "retrained")] = 0.6
    assert sc.c2(_summary(order), _reference()).verdict == sc.FAILS
    on_par = {("s", "good", "retrained"): 1.0, ("s", "random", "retrained"): 0.99}
    assert sc.c3(_summary(on_par), _reference()).verdict == sc.HOLDS
    assert sc.c3(_summary(on_par, std=0.001), _reference()).verdict == sc.FAILS
    assert sc.c3(_summary(on_par, n=1, std=np.nan), _reference()).verdict == sc.UNTESTABLE


def test_c4_needs_all_three_parts_and_c5_compares_sizes():
    cells = {("m", "good", "retrained"): 1.0, ("m", "bad", "retrained"): 0.5,
             ("s", "good", "retrained"): 1.0, ("s", "bad", "retrained"): 0.8}
    assert sc.c4(_summary(cells), _reference()).verdict == sc.HOLDS
    cells[("s", "bad", "retrained")] = 0.4  # below m-bad and below the majority baseline
    finding = sc.c4(_summary(cells), _reference())
    assert finding.verdict == sc.FAILS and "s-bad > m-bad on 0 of 3" in finding.evidence
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
    assert sc.c2(ps, pr).verdict == sc.HOLDS
    masks = sc._paper_masks()
    c8 = sc.c8(masks, sc.testable_tasks(pr))
    assert c8.table["kappa"].round(2).between(0.15, 0.32).all()  # the printed range
    assert sc.paper_importance(masks)["step"].eq("final").all()


@pytest.mark.parametrize("said,verdict", [("no significant association", sc.HOLDS),
                                          ("survivors less often heterogeneous", sc.HOLDS),
                                          ("survivors more often heterogeneous", sc.FAILS),
                                          ("not testable", sc.UNTESTABLE)])
def test_c10_verdict_follows_the_association_test(monkeypatch, said, verdict):
    from lotterylib import patterns

    summary = {"verdict": said, "het_share_survivors": 0.7, "het_share_pruned": 0.3, "survivors": 50, "pruned": 22,
               "runs": 1, "odds_ratio": 5.0, "p_value": 0.01, "note": "not testable: every head was pruned"}
    monkeypatch.setattr(patterns, "c10", lambda plan: pd.DataFrame())
    monkeypatch.setattr(patterns, "pooled_summary", lambda table: summary)
    finding = sc.c10("smoke")
    assert finding.verdict == verdict
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
