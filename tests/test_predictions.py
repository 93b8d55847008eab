"""Constant predictors (from predictions and inferred from metrics), and searches that removed nothing: found,
listed, and left out of every mean and comparison. Built on a small results tree written here (smoke plan
layout: MRPC and RTE, seeds 1337 and 42)."""

import json

import numpy as np
import pandas as pd
import pytest

from lotterylib.read import collect
from lotterylib.read import predictions
from lotterylib.report import scorecard as sc

MAJORITY = {"acc": 0.684}
N_DEV = 408


def _write(path, payload):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload))


def _finetune(root, task, seed, acc):
    _write(root / "smoke" / task / f"seed_{seed}" / "finetune" / "metrics.json",
           {"task": task, "seed": seed, "metrics": {"acc": acc}, "majority_baseline": MAJORITY,
            "reported_metric": "acc", "search_metric": "acc", "n_train": 64, "n_dev": N_DEV})


def _retrain(root, task, seed, stage, acc=None, preds=None, no_subnetwork=None):
    folder = root / "smoke" / task / f"seed_{seed}" / stage
    if no_subnetwork:
        _write(folder / "metrics.json", {"no_subnetwork": no_subnetwork})
        return
    _write(folder / "metrics.json", {"metrics": {"acc": acc}})
    if preds is not None:
        np.savez(folder / "predictions.npz", predictions=np.asarray(preds, dtype=np.int16))


def _search(root, task, seed, method, removed_nothing=False):
    folder = root / "smoke" / task / f"seed_{seed}" / f"prune_{method}"
    trace = [{"step": 1, "phase": "m", "metric": 0.5 if removed_nothing else 0.8, "passed": not removed_nothing}]
    _write(folder / "search.json", {"full_metric": 0.8, "threshold": 0.72, "accepted_steps": 0 if removed_nothing
                                    else 1, "n_steps": 1, "trace": trace})
    if removed_nothing:
        _write(folder / "pruned.json", {"full_metric": 0.8, "no_subnetwork": "removed nothing", "subnetworks": {}})
    else:
        _write(folder / "pruned.json", {"full_metric": 0.8, "subnetworks": {
            "good": {"metrics": {"acc": 0.75}, "weights_kept_share": 0.5}}})


@pytest.fixture
def tree(tmp_path, monkeypatch):
    """MRPC: seed 1337 an ordinary m search; seed 42's m search removed nothing. RTE: one constant good run
    with predictions, one without (inferred)."""
    monkeypatch.setenv("LOTTERY_RESULTS", str(tmp_path))
    for seed in (1337, 42):
        _finetune(tmp_path, "MRPC", seed, 0.80)
        _finetune(tmp_path, "RTE", seed, 0.80)
    _search(tmp_path, "MRPC", 1337, "m")
    _retrain(tmp_path, "MRPC", 1337, "retrain_m_good", acc=0.79, preds=[0, 1, 1, 0])
    _retrain(tmp_path, "MRPC", 1337, "retrain_m_random", acc=0.70)
    _search(tmp_path, "MRPC", 42, "m", removed_nothing=True)
    for sub in ("good", "random", "bad"):
        _retrain(tmp_path, "MRPC", 42, f"retrain_m_{sub}", no_subnetwork="removed nothing")
    _retrain(tmp_path, "RTE", 1337, "retrain_s_good", acc=0.61, preds=[1, 1, 1, 1])  # constant, seen
    _retrain(tmp_path, "RTE", 42, "retrain_s_good", acc=1 - MAJORITY["acc"])  # inferred: the minority class
    _retrain(tmp_path, "RTE", 42, "retrain_s_random", acc=0.60)
    return tmp_path


def test_is_constant_reads_class_ids_and_scores():
    assert predictions.is_constant(np.zeros(5, dtype=np.int16))
    assert not predictions.is_constant(np.array([0, 0, 1], dtype=np.int16))
    assert predictions.is_constant(np.full(4, 2.5, dtype=np.float32))
    assert not predictions.is_constant(np.array([2.5, 2.6], dtype=np.float32))
    with pytest.raises(ValueError, match="empty"):
        predictions.is_constant(np.array([], dtype=np.int16))


@pytest.mark.parametrize("task,metrics,expected", [
    ("MRPC", {"acc": 279 / 408}, True),  # the majority share exactly: every answer the majority class
    ("MRPC", {"acc": 129 / 408}, True),  # one minus it: every answer the other class
    ("MRPC", {"acc": 280 / 408}, False),  # one example more: not a class share
    ("CoLA", {"mcc": 0.0, "acc": 279 / 408}, True),
    ("CoLA", {"mcc": 0.01, "acc": 279 / 408}, False),
    ("STS-B", {"pearson": 0.0}, True),
    ("STS-B", {"pearson": float("nan")}, True),
    ("STS-B", {"pearson": 0.4}, False),
])
def test_inferred_from_metrics(task, metrics, expected):
    assert predictions.inferred_constant(task, metrics, {"acc": 279 / 408, "mcc": 0.0}, 408) is expected


def test_run_constancy_uses_predictions_where_present_and_labels_inferences(tree):
    runs = predictions.run_constancy("smoke").set_index(["task", "seed", "method", "subnetwork"])
    seen = runs.loc[("RTE", 1337, "s", "good")]
    assert seen["constant"] and seen["source"] == predictions.FROM_PREDICTIONS
    inferred = runs.loc[("RTE", 42, "s", "good")]
    assert inferred["constant"] and inferred["source"] == predictions.INFERRED
    assert not runs.loc[("MRPC", 1337, "m", "good"), "constant"]  # predictions vary
    assert ("MRPC", 42, "m", "good") not in runs.index  # no subnetwork: not a run
    counts = predictions.constant_counts(runs.reset_index()).set_index("task")
    assert counts.loc["RTE", "s good"] == "2 of 2 (inferred)" and counts.loc["MRPC", "m good"] == "0 of 1"
    assert counts.loc["MRPC", "s good"] == "no run yet"
    assert "seeds 1337, 42" in predictions.constant_good(runs.reset_index())["RTE"]


def test_a_task_with_constant_good_runs_is_not_testable(tree):
    data = sc.sides("smoke", with_paper=False)["ours"].testability.set_index("task")
    assert data.loc["MRPC", "testable"] and not data.loc["RTE", "testable"]
    assert "constant good re-fine-tunes: s good: 2 of 2" in data.loc["RTE", "why"]


def test_searches_that_removed_nothing_are_listed_and_never_averaged_in(tree):
    nothing = collect.no_subnetwork_runs("smoke")
    assert nothing[["task", "seed", "method"]].values.tolist() == [["MRPC", 42, "m"]]
    runs = sc.our_runs("smoke")
    m = runs[(runs["task"] == "MRPC") & (runs["method"] == "m")]
    assert set(m["seed"]) == {1337}  # neither the pruned nor the re-fine-tuned "subnetworks" of seed 42
    summary = sc.summarize_runs(runs).set_index(["task", "method", "subnetwork", "stage"])
    assert summary.loc[("MRPC", "m", "good", "retrained"), "n"] == 1
    assert summary.loc[("MRPC", "m", "good", "retrained"), "mean"] == pytest.approx(0.79)
    table = sc.comparisons(sc.summarize_runs(runs), sc.our_reference("smoke"), ("C2",), runs)
    assert table[table["task"] == "MRPC"]["n"].max() == 1  # only seed 1337 pairs
    cells = collect.cell_table(collect.subnetwork_scores("smoke"))
    assert "0.790 (n=1)" in cells.to_string() and "nan" not in cells.to_string()


def test_cell_tables_say_why_a_cell_is_empty():
    scores = pd.DataFrame({"task": "A", "method": "s", "subnetwork": ["good", "good", "random"],
                           "stage": ["pruned", "retrained", "retrained"], "score": [0.5, 0.6, 0.55]})
    row = collect.cell_table(scores).iloc[0]
    assert row["pruned: good"] == "0.500 (n=1)" and row["retrained: random"] == "0.550 (n=1)"
    scores = pd.concat([scores, scores.assign(subnetwork="bad", stage="retrained", score=np.nan)])
    assert collect.cell_table(scores).iloc[0]["retrained: bad"] == "no run yet"
