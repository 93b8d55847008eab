"""Tests for lotterylib.method.metrics against hand-checkable cases and the GLUE majority baselines."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from lotterylib.model.data import TASKS, load_glue
from lotterylib.method.metrics import compute_metrics, majority_baseline, reported_metric, search_metric

REPO = Path(__file__).resolve().parents[1]
GLUE_DIR = Path(os.environ.get("LOTTERY_GLUE_DIR", REPO.parent / "shared" / "glue_data"))
needs_glue = pytest.mark.skipif(
    not GLUE_DIR.is_dir(), reason=f"GLUE TSVs not found at {GLUE_DIR} (set LOTTERY_GLUE_DIR)"
)

KEYS = {
    "CoLA": {"mcc", "acc"},
    "SST-2": {"acc"},
    "MRPC": {"acc", "f1", "acc_and_f1"},
    "QQP": {"acc", "f1", "acc_and_f1"},
    "STS-B": {"pearson", "spearmanr", "corr"},
    "MNLI": {"acc"},
    "QNLI": {"acc"},
    "RTE": {"acc"},
    "WNLI": {"acc"},
}


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("task", list(TASKS))
def test_perfect_predictions_score_one(task):
    spec = TASKS[task]
    labels = np.linspace(0, 5, 12) if spec.is_regression else np.arange(12) % spec.num_labels
    out = compute_metrics(task, labels.copy(), labels)
    assert set(out) == KEYS[task]
    assert all(type(v) is float for v in out.values())
    assert out == pytest.approx({k: 1.0 for k in out})


def test_hand_checked_f1_and_mcc():
    # preds [1,1,1,0] vs labels [1,0,1,0]: tp=2 fp=1 fn=0 -> P=2/3 R=1 F1=0.8, acc 0.75
    out = compute_metrics("mrpc", np.array([1, 1, 1, 0]), np.array([1, 0, 1, 0]))
    assert out == pytest.approx({"acc": 0.75, "f1": 0.8, "acc_and_f1": 0.775})
    # preds [1,1,0,0] vs labels [1,1,0,1]: tp=2 tn=1 fp=0 fn=1 -> mcc = 2 / sqrt(2*3*1*2)
    out = compute_metrics("CoLA", [1, 1, 0, 0], [1, 1, 0, 1])
    assert out == pytest.approx({"mcc": 2 / np.sqrt(12), "acc": 0.75})


@pytest.mark.filterwarnings("error")
def test_constant_predictions_do_not_crash():
    labels = np.array([0, 1, 1, 0, 1])
    assert compute_metrics("CoLA", np.ones(5, dtype=int), labels)["mcc"] == 0.0
    assert compute_metrics("CoLA", np.zeros(5, dtype=int), np.zeros(5, dtype=int))["mcc"] == 0.0
    assert compute_metrics("QQP", np.zeros(5, dtype=int), labels)["f1"] == 0.0
    stsb = compute_metrics("STS-B", np.full(5, 2.5), np.array([0.0, 1.0, 2.0, 4.0, 5.0]))
    assert stsb == {"pearson": 0.0, "spearmanr": 0.0, "corr": 0.0}


def test_stsb_corr_is_mean_of_pearson_and_spearman():
    preds, labels = np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.0, 2.0, 3.0, 10.0])
    out = compute_metrics("stsb", preds, labels)
    assert out["spearmanr"] == pytest.approx(1.0)
    assert out["pearson"] == pytest.approx(np.corrcoef(preds, labels)[0, 1]) and out["pearson"] < 1
    assert out["corr"] == pytest.approx((out["pearson"] + out["spearmanr"]) / 2)


def test_input_errors():
    with pytest.raises(ValueError, match=r"argmax"):
        compute_metrics("RTE", np.zeros((4, 2)), np.zeros(4, dtype=int))
    with pytest.raises(ValueError, match="3 predictions but 4 labels"):
        compute_metrics("RTE", [0, 1, 0], [0, 1, 0, 1])
    with pytest.raises(ValueError, match=r"must be in \[0, 2\], found 3"):
        compute_metrics("MNLI", [0, 3], [0, 1])
    with pytest.raises(ValueError, match="nan or inf"):
        compute_metrics("STS-B", [0.0, np.nan], [0.0, 1.0])
    with pytest.raises(ValueError, match="Unknown GLUE task"):
        compute_metrics("squad", [0], [0])


def test_reported_and_search_metrics():
    assert {t: reported_metric(t) for t in TASKS} == {t: "acc" for t in TASKS} | {"CoLA": "mcc", "STS-B": "pearson"}
    assert {t: search_metric(t) for t in TASKS} == {t: reported_metric(t) for t in TASKS} | {"STS-B": "corr"}
    assert search_metric("sts-b") == "corr" and reported_metric("cola") == "mcc"
    for task in TASKS:  # the named metrics exist in compute_metrics' output
        assert {reported_metric(task), search_metric(task)} <= KEYS[task]


def test_majority_baseline_toy():
    out = majority_baseline("SST-2", [1, 1, 0], [0, 1, 1, 1])
    assert out == {"acc": 0.75}
    stsb = majority_baseline("STS-B", [1.0, 2.0, 3.0], [0.0, 5.0, 2.0])
    assert stsb == {"pearson": 0.0, "spearmanr": 0.0, "corr": 0.0}


# Majority-class row of the paper's Table 2 (GLUE test set); dev-set baselines land within 0.01.
PAPER_MAJORITY = {"CoLA": 0.00, "SST-2": 0.51, "MRPC": 0.68, "RTE": 0.53, "WNLI": 0.56}


@needs_glue
@pytest.mark.parametrize("task", list(PAPER_MAJORITY))
def test_majority_baseline_on_dev_matches_paper(task):
    train = load_glue(task, "train", GLUE_DIR, allow_hub=False)
    dev = load_glue(task, "dev", GLUE_DIR, allow_hub=False)
    out = majority_baseline(task, train.labels, dev.labels)
    assert out[reported_metric(task)] == pytest.approx(PAPER_MAJORITY[task], abs=0.01)
    if task == "MRPC":
        assert out["acc"] == pytest.approx(279 / 408)  # 0.684: 279 of 408 dev pairs are paraphrases
